"""What the citizen sees: one full-screen picture per `ScreenState`.

`render_state()` is a pure function from a state to a pygame Surface, used by the real
window, by the headless display's screenshots and by `kiosk screens`. Layouts scale with
the screen height and every text is fitted into its box (smaller font, then wrapped,
never clipped), so 800x480, 1024x600 and 1920x1080 all work.

    >>> state = ScreenState("fail", venue_name="Siêu thị A", name="Nguyễn V*** A",
    ...                     reason=Reason.EXPIRED)
    >>> surface = render_state(state, (800, 480))      # doctest: +SKIP
    >>> with open_display(cfg, headless=True) as display:  # doctest: +SKIP
    ...     display.show(state)
    ...     display.history[-1].kind
    'fail'

pygame is imported inside the functions that draw, never at import time.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from kiosk.errors import ConfigError, KioskError
from kiosk.model import Reason, Verdict
from kiosk.display import texts
from kiosk.display.fonts import FontSet, find_fonts

if TYPE_CHECKING:  # pragma: no cover
    import pygame

    from kiosk.config import Config

__all__ = [
    "BLOCKING_FAULTS",
    "BadScreenState",
    "Display",
    "DisplayError",
    "FAULT_KINDS",
    "HeadlessDisplay",
    "KINDS",
    "PygameDisplay",
    "SIZES",
    "ScreenState",
    "VERDICT_KINDS",
    "display_available",
    "open_display",
    "parse_size",
    "render_state",
]

log = logging.getLogger(__name__)

VERDICT_KINDS = ("pass", "fail", "review")
#: Most severe first: the banner lists them in this order.
FAULT_KINDS = ("disk_full", "camera_fault", "scanner_fault", "clock_unsynced", "trust_stale", "offline")
KINDS = ("idle", "scanning", *VERDICT_KINDS, *FAULT_KINDS)
#: Faults that stop checking: an idle screen shows the fault instead of "scan here".
BLOCKING_FAULTS = frozenset({"disk_full", "camera_fault", "scanner_fault"})
SIZES = ((800, 480), (1024, 600), (1920, 1080))
DEFAULT_SIZE = (800, 480)

#: States a headless display remembers (a long headless run must not grow forever).
HISTORY_MAX = 1000
#: Smallest font, in pixels, before a text is cut with an ellipsis.
MIN_FONT_PX = 10
#: A text goes on fewer lines when that costs at most this much of its font size.
FEWER_LINES_MIN_SCALE = 0.9
#: An ID number is never shown: digit runs this long are masked out of names.
ID_DIGITS = 4

# Colours: full backgrounds readable from across a room; text contrast >= 4.5:1.
WHITE = (255, 255, 255)
INK = (20, 20, 20)
BACKGROUNDS = {
    "idle": (16, 42, 67),
    "scanning": (16, 42, 67),
    "pass": (0, 122, 51),
    "fail": (190, 22, 34),
    "review": (245, 166, 0),
    "fault": (48, 52, 58),
}
FOREGROUNDS = {"review": INK}
BANNER_BG = (255, 214, 0)
TARGET = (0, 220, 110)
QR_DARK = (0, 0, 0)


class DisplayError(KioskError, OSError):
    """The screen cannot be opened (no display, driver failed)."""


class BadScreenState(KioskError, ValueError):
    """A ScreenState with an unknown kind or fault."""


@dataclass(frozen=True)
class ScreenState:
    """Everything one screen shows. Build a new one for each change; it is immutable.

    `faults` are shown as a banner on any screen; `preview` (a greyscale numpy frame)
    is drawn under a target box on the scanning screen. `name` must already be masked
    (`kiosk.model.mask_name`); digit runs are masked again here, so an ID number never
    reaches the screen.
    """

    kind: str
    venue_name: str = ""
    checkin_url: str = ""
    today_count: int = 0
    name: str | None = None
    reason: Reason | None = None
    pending_uploads: int = 0
    faults: tuple[str, ...] = ()
    preview: Any = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BadScreenState(f"unknown screen kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        faults = tuple(self.faults)
        unknown = [f for f in faults if f not in FAULT_KINDS]
        if unknown:
            raise BadScreenState(f"unknown fault {unknown[0]!r}; expected one of {', '.join(FAULT_KINDS)}")
        # Sorted by severity and unique, so equal situations compare equal.
        object.__setattr__(self, "faults", tuple(k for k in FAULT_KINDS if k in faults))
        if self.reason is not None and not isinstance(self.reason, Reason):
            object.__setattr__(self, "reason", Reason(self.reason))

    @classmethod
    def from_verdict(cls, verdict: Verdict, **common: Any) -> "ScreenState":
        """The pass/fail/review screen for a verdict: `ScreenState.from_verdict(v, venue_name=...)`."""
        return cls(kind=verdict.outcome.value, name=verdict.name, reason=verdict.reason, **common)


def parse_size(text: str) -> tuple[int, int]:
    """`"800x480"` -> `(800, 480)`."""
    m = re.fullmatch(r"\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*", text or "")
    if not m:
        raise ConfigError(f"screen size {text!r}: expected WIDTHxHEIGHT, e.g. 800x480")
    return int(m.group(1)), int(m.group(2))


def safe_name(name: str | None) -> str | None:
    """The masked name as shown: NFC letters, and any run of digits masked.

    >>> safe_name("Nguyễn V*** A 012345678901")
    'Nguyễn V*** A ***'
    """
    if not name:
        return None
    text = unicodedata.normalize("NFC", name)
    return re.sub(r"\d{%d,}" % ID_DIGITS, "***", text).strip() or None


# --- drawing helpers --------------------------------------------------------------------

def _pygame():
    import pygame

    if not pygame.font.get_init():
        pygame.font.init()
    return pygame


@lru_cache(maxsize=256)
def _font(path: str, size: int):
    pygame = _pygame()
    return pygame.font.Font(path or None, size)


def _wrap(font, text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if current and font.size(trial)[0] > width:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


def _block_height(font, lines) -> int:
    # Per line: stacked Vietnamese accents (Ặ, Ễ) can make a line taller than get_height().
    return max((i * font.get_linesize() + font.size(line)[1] for i, line in enumerate(lines)), default=0)


def _ellipsize(font, line: str, width: int) -> str:
    if font.size(line)[0] <= width:
        return line
    while line and font.size(line + "…")[0] > width:
        line = line[:-1]
    return line.rstrip() + "…"


def _balance(font, text: str, width: int, lines: tuple[str, ...]) -> tuple[str, ...]:
    """Same number of lines, but as even as possible ("VUI LÒNG / GẶP BẢO VỆ", not a lone
    last word): the narrowest width that still wraps into that many lines."""
    if len(lines) < 2:
        return lines
    lo, hi = max(font.size(w)[0] for w in text.split()), width
    while lo < hi:
        mid = (lo + hi) // 2
        if len(_wrap(font, text, mid)) <= len(lines):
            hi = mid
        else:
            lo = mid + 1
    return tuple(_wrap(font, text, hi))


@lru_cache(maxsize=1024)
def _fit(path: str, text: str, width: int, height: int, max_size: int, max_lines: int) -> tuple[int, tuple[str, ...]]:
    """The largest font size <= max_size at which `text`, wrapped to `width`, fits the box."""
    lo, hi = MIN_FONT_PX, max(MIN_FONT_PX, max_size)
    best: tuple[int, tuple[str, ...]] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        font = _font(path, mid)
        lines = _wrap(font, text, width)
        if (len(lines) <= max_lines and all(font.size(line)[0] <= width for line in lines)
                and _block_height(font, lines) <= height):
            best = (mid, tuple(lines))
            lo = mid + 1
        else:
            hi = mid - 1
    if best is not None:
        # Fewer lines read faster: take them if the font shrinks only a little.
        for fewer in range(1, len(best[1])):
            size, lines = _fit(path, text, width, height, max_size, fewer)
            if len(lines) <= fewer and size >= FEWER_LINES_MIN_SCALE * best[0] and size > MIN_FONT_PX:
                return size, lines
        return best[0], _balance(_font(path, best[0]), text, width, best[1])
    # Nothing fits even at the smallest size: cut, never overflow the box.
    font = _font(path, MIN_FONT_PX)
    fit_lines = max(1, min(max_lines, (height - font.get_height()) // max(1, font.get_linesize()) + 1))
    lines = _wrap(font, text, width)
    kept = lines[:fit_lines]
    if len(lines) > fit_lines:
        kept[-1] = kept[-1] + " …"
    kept = [_ellipsize(font, line, width) for line in kept]
    while len(kept) > 1 and _block_height(font, kept) > height:
        kept = kept[:-1]
        kept[-1] = _ellipsize(font, kept[-1] + " …", width)
    return MIN_FONT_PX, tuple(kept)


def draw_text(surface, text: str, rect, path: Path | None, *, max_size: int, color, align: str = "left",
              valign: str = "center", max_lines: int = 2):
    """Draw `text` as large as fits in `rect` (up to `max_size` px); returns the drawn rect."""
    pygame = _pygame()
    rect = pygame.Rect(rect)
    text = unicodedata.normalize("NFC", text or "").strip()
    if not text or rect.w <= 0 or rect.h <= 0:
        return pygame.Rect(rect.x, rect.y, 0, 0)
    size, lines = _fit(str(path or ""), text, rect.w, rect.h, int(max_size), max_lines)
    font = _font(str(path or ""), size)
    block = _block_height(font, lines)
    y = {"top": rect.y, "bottom": rect.bottom - block}.get(valign, rect.y + (rect.h - block) // 2)
    drawn = pygame.Rect(rect.x, y, 0, block)
    for line in lines:
        img = font.render(line, True, color)
        x = {"center": rect.x + (rect.w - img.get_width()) // 2,
             "right": rect.right - img.get_width()}.get(align, rect.x)
        surface.blit(img, (x, y))
        drawn.union_ip(pygame.Rect(x, y, img.get_width(), img.get_height()))
        y += font.get_linesize()
    return drawn


@lru_cache(maxsize=32)
def _icon(kind: str, diameter: int, fg: tuple, bg: tuple):
    """A round symbol (check, cross, exclamation), drawn 4x and scaled down for smooth edges.
    The symbol repeats the colour's meaning for colour-blind visitors."""
    pygame = _pygame()
    s = 4
    d = max(8, diameter) * s
    img = pygame.Surface((d, d), pygame.SRCALPHA)
    r = d / 2
    pygame.draw.circle(img, bg, (r, r), r)
    stroke = max(2, int(r * 0.2))

    def pt(x: float, y: float) -> tuple[float, float]:
        return r + x * r, r + y * r

    def thick_line(a, b):
        pygame.draw.line(img, fg, pt(*a), pt(*b), stroke)
        for p in (a, b):
            pygame.draw.circle(img, fg, pt(*p), stroke / 2)

    if kind == "pass":
        thick_line((-0.45, 0.02), (-0.14, 0.34))
        thick_line((-0.14, 0.34), (0.46, -0.30))
    elif kind == "fail":
        thick_line((-0.36, -0.36), (0.36, 0.36))
        thick_line((-0.36, 0.36), (0.36, -0.36))
    else:
        pygame.draw.rect(img, fg, pygame.Rect(r - stroke / 2, r - 0.58 * r, stroke, 0.78 * r), border_radius=stroke // 2)
        pygame.draw.circle(img, fg, pt(0, 0.46), stroke * 0.62)
    return pygame.transform.smoothscale(img, (diameter, diameter))


@lru_cache(maxsize=8)
def _qr(url: str, side: int):
    """The venue's check-in QR as a surface about `side` px, whole pixels per module."""
    import numpy as np
    import segno

    pygame = _pygame()
    # Non-ASCII text must go in byte mode as UTF-8: left to itself segno may pick Kanji
    # mode for short Vietnamese text, which every reader then shows as Japanese.
    text = url or " "
    extra = {} if text.isascii() else {"mode": "byte", "encoding": "utf-8"}
    qr = segno.make(text, error="m", micro=False, **extra)
    rows = [list(row) for row in qr.matrix_iter(scale=1, border=2)]
    modules = np.array(rows, dtype=bool)
    n = modules.shape[0]
    scale = max(1, side // n)
    rgb = np.where(modules[..., None], np.array(QR_DARK, np.uint8), np.array(WHITE, np.uint8)).astype(np.uint8)
    small = pygame.surfarray.make_surface(rgb.swapaxes(0, 1))
    return pygame.transform.scale(small, (n * scale, n * scale))


GREY_PALETTE = [(i, i, i) for i in range(256)]


def _preview_surface(frame, size: tuple[int, int]):
    """A camera frame (greyscale, or BGR as OpenCV gives it) scaled to fit `size`.
    Runs on every preview frame, so it avoids full-size copies: rows and columns are
    dropped first, and greyscale goes in as 8-bit with a grey palette."""
    import numpy as np

    pygame = _pygame()
    arr = np.asarray(frame)
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1 or (arr.ndim == 3 and arr.shape[2] < 3):
        return None
    step = max(1, int(min(arr.shape[1] / size[0], arr.shape[0] / size[1])))
    arr = arr[::step, ::step]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    h, w = arr.shape[:2]
    if arr.ndim == 2:
        small = pygame.image.frombuffer(np.ascontiguousarray(arr).tobytes(), (w, h), "P")
        small.set_palette(GREY_PALETTE)
        rgb = pygame.Surface((w, h))
        rgb.blit(small, (0, 0))
    else:
        rgb = pygame.image.frombuffer(np.ascontiguousarray(arr[..., 2::-1]).tobytes(), (w, h), "RGB")
    k = min(size[0] / w, size[1] / h)
    return pygame.transform.smoothscale(rgb, (max(1, int(w * k)), max(1, int(h * k))))


def _target_box(surface, rect, color, width: int) -> None:
    """Corner brackets around the area where the code should be held."""
    pygame = _pygame()
    arm = rect.w // 4
    for x, y in ((rect.left, rect.top), (rect.right - arm, rect.top),
                 (rect.left, rect.bottom - width), (rect.right - arm, rect.bottom - width)):
        pygame.draw.rect(surface, color, pygame.Rect(x, y, arm, width))
    for x, y in ((rect.left, rect.top), (rect.right - width, rect.top),
                 (rect.left, rect.bottom - arm), (rect.right - width, rect.bottom - arm)):
        pygame.draw.rect(surface, color, pygame.Rect(x, y, width, arm))


# --- layouts ----------------------------------------------------------------------------

class _Layout:
    def __init__(self, surface, fonts: FontSet, state: ScreenState, shown_kind: str) -> None:
        pygame = _pygame()
        self.pg = pygame
        self.s = surface
        self.fonts = fonts
        self.state = state
        self.w, self.h = surface.get_size()
        self.m = max(6, round(self.h * 0.04))
        self.kind = shown_kind
        colour_key = "fault" if shown_kind in FAULT_KINDS else shown_kind
        self.bg = BACKGROUNDS[colour_key]
        self.fg = FOREGROUNDS.get(colour_key, WHITE)
        surface.fill(self.bg)
        self.top = self._banner()
        self.area = pygame.Rect(self.m, self.top + self.m, self.w - 2 * self.m, self.h - self.top - 2 * self.m)

    def text(self, text, rect, *, size_frac: float, bold: bool = False, color=None, **kw):
        path = self.fonts.bold if bold else self.fonts.regular
        return draw_text(self.s, text, rect, path, max_size=max(MIN_FONT_PX, int(self.h * size_frac)),
                         color=color or self.fg, **kw)

    def _banner(self) -> int:
        # A fault shown full screen is not repeated in the banner.
        faults = [f for f in self.state.faults if f != self.kind]
        if not faults:
            return 0
        pg = self.pg
        bh = max(28, round(self.h * 0.11))
        pg.draw.rect(self.s, BANNER_BG, pg.Rect(0, 0, self.w, bh))
        icon_d = int(bh * 0.7)
        pad = (bh - icon_d) // 2
        self.s.blit(_icon("review", icon_d, BANNER_BG, INK), (pad + self.m // 2, pad))
        parts = []
        for kind in faults:
            title, _ = texts.fault_text(kind, pending=self.state.pending_uploads)
            extra = f" ({self.state.pending_uploads})" if kind == "offline" and self.state.pending_uploads else ""
            parts.append(f"{title.vi}{extra} · {title.en}")
        x = pad + icon_d + self.m
        draw_text(self.s, "   •   ".join(parts), pg.Rect(x, 2, self.w - x - self.m // 2, bh - 4),
                  self.fonts.bold, max_size=int(bh * 0.42), color=INK, max_lines=2)
        return bh

    def footer(self, text: str) -> Any:
        """Small venue line at the bottom; returns the y where the body must end."""
        fh = round(self.area.h * 0.08)
        rect = self.pg.Rect(self.area.x, self.area.bottom - fh, self.area.w, fh)
        self.text(text, rect, size_frac=0.045, max_lines=1, valign="bottom")
        return rect.y


def _render_verdict(L: _Layout) -> None:
    pg, st, a = L.pg, L.state, L.area
    words = texts.VERDICT_TEXTS[L.kind]
    header_h = int(a.h * 0.46)
    icon_d = int(min(header_h * 0.92, L.w * 0.2))
    L.s.blit(_icon(L.kind, icon_d, L.bg, L.fg), (a.x, a.y + (header_h - icon_d) // 2))
    tx = a.x + icon_d + L.m
    tw = a.right - tx
    L.text(words.vi, pg.Rect(tx, a.y, tw, int(header_h * 0.7)), size_frac=0.2, bold=True, valign="bottom")
    L.text(words.en, pg.Rect(tx, a.y + int(header_h * 0.72), tw, header_h - int(header_h * 0.72)),
           size_frac=0.085, max_lines=1, valign="top")
    end = L.footer(st.venue_name)
    y = a.y + header_h + L.m // 2
    body = end - y - L.m // 2
    name = safe_name(st.name)
    if name:
        nh = int(body * 0.36)
        L.text(name, pg.Rect(a.x, y, a.w, nh), size_frac=0.11, bold=True, max_lines=1)
        y += nh
    reason = texts.reason_text(st.reason)
    if reason is not None:
        rest = end - y
        L.text(reason.vi, pg.Rect(a.x, y, a.w, int(rest * 0.55)), size_frac=0.075, bold=True)
        L.text(reason.en, pg.Rect(a.x, y + int(rest * 0.55), a.w, rest - int(rest * 0.55)),
               size_frac=0.06, valign="top")


def _render_idle(L: _Layout) -> None:
    pg, st, a = L.pg, L.state, L.area
    caption_h = int(a.h * 0.2)
    qr_side = int(min(a.h - caption_h, L.w * 0.36))
    col_w = qr_side
    col_x = a.right - col_w
    qr = _qr(st.checkin_url or "", qr_side)
    # White quiet zone behind the code so phones read it on the dark background.
    pg.draw.rect(L.s, WHITE, pg.Rect(col_x, a.y, col_w, qr_side), border_radius=max(2, L.m // 3))
    L.s.blit(qr, (col_x + (col_w - qr.get_width()) // 2, a.y + (qr_side - qr.get_height()) // 2))
    cap_y = a.y + qr_side + L.m // 3
    cap_h = a.bottom - cap_y
    L.text(texts.IDLE_PHONE.vi, pg.Rect(col_x, cap_y, col_w, cap_h // 2), size_frac=0.045, bold=True,
           align="center", valign="top")
    L.text(texts.IDLE_PHONE.en, pg.Rect(col_x, cap_y + cap_h // 2, col_w, cap_h - cap_h // 2), size_frac=0.04,
           align="center", valign="top")
    lw = col_x - a.x - L.m
    y = a.y
    vh = int(a.h * 0.3)
    L.text(st.venue_name, pg.Rect(a.x, y, lw, vh), size_frac=0.12, bold=True, valign="top")
    y += vh + L.m
    L.text(texts.IDLE_HOW.vi, pg.Rect(a.x, y, lw, int(a.h * 0.2)), size_frac=0.085, bold=True, valign="top")
    y += int(a.h * 0.2) + L.m // 2
    L.text(texts.IDLE_HOW.en, pg.Rect(a.x, y, lw, int(a.h * 0.14)), size_frac=0.06, valign="top")
    count_h = int(a.h * 0.1)
    L.text(texts.IDLE_TODAY.vi.format(count=st.today_count),
           pg.Rect(a.x, a.bottom - 2 * count_h, lw, count_h), size_frac=0.06, bold=True, max_lines=1)
    L.text(texts.IDLE_TODAY.en.format(count=st.today_count),
           pg.Rect(a.x, a.bottom - count_h, lw, count_h), size_frac=0.05, max_lines=1)


def _render_scanning(L: _Layout) -> None:
    pg, st, a = L.pg, L.state, L.area
    pw = int(a.w * 0.6)
    view = pg.Rect(a.x, a.y, pw, a.h)
    preview = _preview_surface(st.preview, view.size) if st.preview is not None else None
    if preview is not None:
        view = preview.get_rect(center=view.center)
        L.s.blit(preview, view)
    else:
        pg.draw.rect(L.s, (0, 0, 0), view)
    side = int(min(view.w, view.h) * 0.7)
    _target_box(L.s, pg.Rect(0, 0, side, side).move(view.centerx - side // 2, view.centery - side // 2),
                TARGET, max(3, L.h // 80))
    tx = view.right + L.m if preview is not None else a.x + pw + L.m
    tx = max(tx, a.x + pw + L.m)
    tw = a.right - tx
    y = a.y + int(a.h * 0.12)
    L.text(texts.SCANNING.vi, pg.Rect(tx, y, tw, int(a.h * 0.24)), size_frac=0.1, bold=True, valign="bottom")
    y += int(a.h * 0.25)
    L.text(texts.SCANNING.en, pg.Rect(tx, y, tw, int(a.h * 0.14)), size_frac=0.065, valign="top")
    y += int(a.h * 0.22)
    L.text(texts.SCANNING_HOLD.vi, pg.Rect(tx, y, tw, int(a.h * 0.18)), size_frac=0.055, bold=True, valign="top")
    y += int(a.h * 0.19)
    L.text(texts.SCANNING_HOLD.en, pg.Rect(tx, y, tw, int(a.h * 0.15)), size_frac=0.045, valign="top")


def _render_fault(L: _Layout) -> None:
    pg, st, a = L.pg, L.state, L.area
    title, detail = texts.fault_text(L.kind, pending=st.pending_uploads)
    header_h = int(a.h * 0.42)
    icon_d = int(min(header_h * 0.85, L.w * 0.18))
    L.s.blit(_icon("fault", icon_d, L.bg, BANNER_BG), (a.x, a.y + (header_h - icon_d) // 2))
    tx = a.x + icon_d + L.m
    tw = a.right - tx
    L.text(title.vi, pg.Rect(tx, a.y, tw, int(header_h * 0.66)), size_frac=0.13, bold=True, valign="bottom")
    L.text(title.en, pg.Rect(tx, a.y + int(header_h * 0.68), tw, header_h - int(header_h * 0.68)),
           size_frac=0.075, max_lines=1, valign="top")
    end = L.footer(st.venue_name)
    y = a.y + header_h + L.m
    rest = end - y
    L.text(detail.vi, pg.Rect(a.x, y, a.w, int(rest * 0.5)), size_frac=0.08, bold=True)
    L.text(detail.en, pg.Rect(a.x, y + int(rest * 0.5), a.w, rest - int(rest * 0.5)), size_frac=0.06,
           valign="top")


def shown_kind(state: ScreenState) -> str:
    """What the screen really shows: an idle screen with a fault that stops checking
    shows that fault instead of inviting people to scan."""
    if state.kind == "idle":
        for kind in state.faults:  # already most severe first
            if kind in BLOCKING_FAULTS:
                return kind
    return state.kind


def _fontset(font: Any) -> FontSet:
    if font is None:
        return find_fonts("")
    if isinstance(font, FontSet):
        return font
    return find_fonts(str(font))


def render_state(state: ScreenState, size: tuple[int, int] = DEFAULT_SIZE, font: Any = None):
    """Draw `state` on a new Surface of `size`. `font`: None (DejaVu/Noto found on the
    system), a TTF path, or a FontSet. Needs no display (works before set_mode)."""
    pygame = _pygame()
    surface = pygame.Surface(tuple(size))
    kind = shown_kind(state)
    layout = _Layout(surface, _fontset(font), state, kind)
    if kind in VERDICT_KINDS:
        _render_verdict(layout)
    elif kind == "idle":
        _render_idle(layout)
    elif kind == "scanning":
        _render_scanning(layout)
    else:
        _render_fault(layout)
    return surface


# --- displays ---------------------------------------------------------------------------

class Display(Protocol):
    """What the run loop needs from a screen."""

    size: tuple[int, int]

    def show(self, state: ScreenState) -> None: ...
    def poll(self) -> list[str]: ...
    def screenshot(self, path: str | os.PathLike) -> None: ...
    def close(self) -> None: ...


class _Closable:
    _closed = False

    def _check_open(self) -> None:
        if self._closed:
            from kiosk.errors import DeviceClosed

            raise DeviceClosed(f"{type(self).__name__} is closed")

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed


class HeadlessDisplay(_Closable):
    """Renders nothing; remembers the states shown (`history`) for tests and logs.
    `inject("guard")` queues an event for the next `poll()`; `screenshot()` still
    draws the last state, so a headless kiosk can be looked at afterwards."""

    def __init__(self, size: tuple[int, int] = DEFAULT_SIZE, *, font: str = "") -> None:
        self.size = tuple(size)
        self.font = font
        self.history: list[ScreenState] = []
        self._events: list[str] = []

    def show(self, state: ScreenState) -> None:
        self._check_open()
        self.history.append(state)
        if len(self.history) > HISTORY_MAX:
            del self.history[:len(self.history) - HISTORY_MAX]

    @property
    def last(self) -> ScreenState | None:
        return self.history[-1] if self.history else None

    def inject(self, event: str) -> None:
        self._events.append(event)

    def poll(self) -> list[str]:
        self._check_open()
        events, self._events = self._events, []
        return events

    def screenshot(self, path: str | os.PathLike) -> None:
        pygame = _pygame()
        state = self.last or ScreenState("idle")
        pygame.image.save(render_state(state, self.size, self.font or None), str(path))

    def close(self) -> None:
        self._closed = True


class PygameDisplay(_Closable):
    """A real pygame window (or the whole screen under KMS/DRM on a Pi)."""

    def __init__(self, cfg: "Config") -> None:
        import pygame

        from kiosk.display.tones import Sound

        _prepare_video_driver()
        try:
            pygame.display.init()
            pygame.font.init()
            driver = pygame.display.get_driver()
            desktop = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
            if cfg.display.fullscreen and not desktop and driver not in ("dummy", "offscreen"):
                self._screen = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
                pygame.mouse.set_visible(False)
            else:
                self._screen = pygame.display.set_mode(parse_size(cfg.display.size))
            pygame.display.set_caption(f"Kiosk · {cfg.venue.name}")
        except pygame.error as exc:
            pygame.display.quit()
            raise DisplayError(f"cannot open the screen ({os.environ.get('SDL_VIDEODRIVER') or 'SDL default'} "
                               f"driver): {exc}; use --headless or display.backend = \"headless\"") from exc
        self.size = self._screen.get_size()
        self.fonts = find_fonts(cfg.display.font)
        self.sound = Sound(enabled=cfg.display.sound)
        self.last: ScreenState | None = None
        self._frame = None

    def show(self, state: ScreenState) -> None:
        import pygame

        self._check_open()
        self._frame = render_state(state, self.size, self.fonts)
        self._screen.blit(self._frame, (0, 0))
        pygame.display.flip()
        if state.kind in VERDICT_KINDS and state != self.last:
            self.sound.play(state.kind)
        self.last = state

    def poll(self) -> list[str]:
        import pygame

        self._check_open()
        out: list[str] = []
        redraw = False
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                out.append("quit")
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
                out.append("quit")
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_g:
                out.append("guard")  # stands in for the guard button on a desktop
            elif event.type in (pygame.VIDEOEXPOSE, getattr(pygame, "WINDOWEXPOSED", -1)):
                redraw = True
        if redraw and self._frame is not None:
            self._screen.blit(self._frame, (0, 0))
            pygame.display.flip()
        return out

    def screenshot(self, path: str | os.PathLike) -> None:
        import pygame

        self._check_open()
        pygame.image.save(self._screen, str(path))

    def close(self) -> None:
        if self._closed:
            return
        import pygame

        self._closed = True
        self.sound.close()
        pygame.display.quit()


def _dri_cards() -> list[Path]:
    return sorted(Path("/dev/dri").glob("card*")) if Path("/dev/dri").is_dir() else []


def display_available(env: os._Environ | dict | None = None, *, dri_cards: Iterable[Path] | None = None,
                      on_pi: bool | None = None) -> bool:
    """True where a window can appear: a desktop session, an explicit SDL video driver
    (including `dummy` in tests), or a DRM card on a Raspberry Pi with no desktop."""
    env = os.environ if env is None else env
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("SDL_VIDEODRIVER"):
        return True
    if on_pi is None:
        from kiosk.display.pins import pi_model

        on_pi = bool(pi_model())
    cards = list(_dri_cards() if dri_cards is None else dri_cards)
    return bool(on_pi and cards)


def _prepare_video_driver() -> None:
    # With no desktop, SDL must draw straight to the DRM/KMS device.
    if os.environ.get("SDL_VIDEODRIVER") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if _dri_cards():
        os.environ["SDL_VIDEODRIVER"] = "kmsdrm"


def open_display(cfg: "Config", *, headless: bool = False) -> HeadlessDisplay | PygameDisplay:
    """The screen chosen by `display.backend`: "headless", "pygame" (fails loudly), or
    "auto" (a window where a display exists, headless otherwise or if it cannot open)."""
    backend = cfg.display.backend
    size = parse_size(cfg.display.size)
    if headless or backend == "headless":
        return HeadlessDisplay(size, font=cfg.display.font)
    if backend == "auto" and not display_available():
        log.info("no display found: running headless")
        return HeadlessDisplay(size, font=cfg.display.font)
    try:
        return PygameDisplay(cfg)
    except DisplayError as exc:
        if backend == "pygame":
            raise
        log.warning("%s; running headless", exc)
        return HeadlessDisplay(size, font=cfg.display.font)
