"""Find a TrueType font that covers Vietnamese.

pygame's built-in font draws letters such as `ễ`, `ờ`, `ự` as boxes, so the screen uses
DejaVu Sans (Debian package `fonts-dejavu-core`) or Noto Sans (`fonts-noto-core`),
found through fontconfig or at their usual places, unless `display.font` names a file.

    >>> fonts = find_fonts("")          # needs fonts-dejavu-core (or Noto Sans) installed
    >>> fonts.covers_vietnamese
    True
    >>> missing_glyphs(fonts.bold, "Nguyễn Văn Ứng")    # every letter has a glyph
    ''
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kiosk.errors import ConfigError

__all__ = ["FontSet", "VIETNAMESE_SAMPLE", "find_fonts", "missing_glyphs"]

log = logging.getLogger(__name__)

#: Letters a Vietnamese font must have (a few of each tone mark and hook).
VIETNAMESE_SAMPLE = "ẮẰẲẴẶắằẳẵặẤẦẨẪẬấầẩẫậĐđỂỄỆểễệỜỞỠỢờởỡợỨỪỬỮỰứừửữựỳỵỷỹ"

#: Where Debian / Raspberry Pi OS put the fonts we know cover Vietnamese, best first.
KNOWN_FONTS: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf", "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"),
    ("/usr/share/fonts/opentype/noto/NotoSans-Regular.otf", "/usr/share/fonts/opentype/noto/NotoSans-Bold.otf"),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),
)
FC_MATCH_TIMEOUT_S = 5.0
FONT_PACKAGE = "fonts-dejavu-core"


@dataclass(frozen=True)
class FontSet:
    """A regular and a bold face. `None` means pygame's built-in font (no Vietnamese)."""

    regular: Path | None
    bold: Path | None

    @property
    def covers_vietnamese(self) -> bool:
        return self.regular is not None and not missing_glyphs(self.regular, VIETNAMESE_SAMPLE)


def missing_glyphs(path: str | Path | None, text: str) -> str:
    """The characters of `text` (other than spaces) that the font has no glyph for.

    Uses pygame.freetype, which (unlike pygame.font) reports a missing glyph as None
    instead of the metrics of the fallback box.
    """
    import pygame.freetype

    if not pygame.freetype.get_init():
        pygame.freetype.init()
    face = _freetype_face(str(path) if path is not None else "")
    chars = [c for c in dict.fromkeys(text) if not c.isspace()]
    metrics = face.get_metrics("".join(chars))
    return "".join(c for c, m in zip(chars, metrics) if m is None)


@lru_cache(maxsize=8)
def _freetype_face(path: str):
    import pygame.freetype

    return pygame.freetype.Font(path or None, 24)


def _fc_match(pattern: str) -> Path | None:
    if shutil.which("fc-match") is None:
        return None
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}", pattern], capture_output=True, text=True,
                             timeout=FC_MATCH_TIMEOUT_S, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("fc-match failed: %s", exc)
        return None
    return Path(out) if out and Path(out).is_file() else None


@lru_cache(maxsize=4)
def find_fonts(override: str = "") -> FontSet:
    """The fonts to draw with. `override` (config `display.font`) must exist; it is used
    for both faces. Otherwise: known DejaVu/Noto paths, then fontconfig asked for a
    font with Vietnamese, then pygame's built-in font with a warning."""
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ConfigError(f"display.font = {override!r}: no such font file; "
                              f"leave it empty to use DejaVu Sans (apt install {FONT_PACKAGE})")
        return FontSet(path, path)
    for regular, bold in KNOWN_FONTS:
        if Path(regular).is_file():
            return FontSet(Path(regular), Path(bold) if Path(bold).is_file() else Path(regular))
    regular = _fc_match("sans-serif:lang=vi")
    if regular is not None and not missing_glyphs(regular, VIETNAMESE_SAMPLE):
        bold = _fc_match("sans-serif:lang=vi:bold") or regular
        return FontSet(regular, bold)
    log.warning("no font covering Vietnamese found; accents will show as boxes "
                "(apt install %s, or set display.font)", FONT_PACKAGE)
    return FontSet(None, None)
