"""A printable A4 poster per venue: its QR opens the declaration form for that venue.

Drawn with Pillow in the DejaVu fonts (every Vietnamese letter; Debian's fonts-dejavu-core)
at 150 dpi, written as PNG or PDF by the file's extension.

    >>> img = render("BV-CHORAY", "https://collector.example/d/BV-CHORAY", name="Bệnh viện Chợ Rẫy")
    >>> img.size
    (1240, 1754)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError

__all__ = ["render", "write", "A4_PX", "DPI", "FONT_DIRS"]

DPI = 150
A4_PX = (1240, 1754)  # 210 x 297 mm at 150 dpi
#: Where Debian (fonts-dejavu-core) and other systems put DejaVu.
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts/dejavu",
             "/usr/share/fonts/TTF")
GREEN = (11, 107, 47)
INK = (17, 17, 17)

STEPS = (
    "1. Mở camera hoặc Zalo trên điện thoại, quét mã QR này.",
    "2. Điền tờ khai y tế và bấm “Gửi tờ khai”.",
    "3. Đưa mã QR nhận được cho máy quét ở cửa (nếu có).",
)
ENGLISH = "Scan to declare your health; this also records your visit here."


def _font(bold: bool, size: int) -> Any:
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        path = Path(folder) / name
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    raise ConfigError(f"font {name} not found in {', '.join(FONT_DIRS)}: install fonts-dejavu-core")


def _wrap(draw: Any, text: str, font: Any, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    return lines + ([line] if line else [])


def _centred(draw: Any, y: int, text: str, font: Any, fill: tuple[int, int, int], width: int) -> int:
    for line in _wrap(draw, text, font, width - 160):
        w = draw.textlength(line, font=font)
        draw.text(((width - w) / 2, y), line, font=font, fill=fill)
        y += int(font.size * 1.3)
    return y


def render(venue: str, url: str, *, name: str | None = None) -> Any:
    """The poster as a Pillow image (A4 at 150 dpi)."""
    import segno
    from PIL import Image, ImageDraw

    width, height = A4_PX
    img = Image.new("RGB", A4_PX, "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width, 190), fill=GREEN)
    _centred(draw, 48, "KHAI BÁO Y TẾ", _font(True, 88), (255, 255, 255), width)
    y = _centred(draw, 230, name or venue, _font(True, 56), INK, width)
    y = _centred(draw, y + 10, f"Mã địa điểm: {venue}", _font(False, 36), INK, width)
    extra = {} if url.isascii() else {"mode": "byte", "encoding": "utf-8"}
    qr = segno.make(url, error="m", micro=False, **extra)
    buf = io.BytesIO()
    side_modules = qr.symbol_size(border=4)[0]
    qr.save(buf, kind="png", scale=max(1, 760 // side_modules), border=4)
    code = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    x = (width - code.width) // 2
    y += 30
    img.paste(code, (x, y))
    draw.rectangle((x - 6, y - 6, x + code.width + 6, y + code.height + 6), outline=GREEN, width=6)
    y += code.height + 40
    steps_font = _font(False, 38)
    for step in STEPS:
        for line in _wrap(draw, step, steps_font, width - 200):
            draw.text((100, y), line, font=steps_font, fill=INK)
            y += int(steps_font.size * 1.35)
        y += 8
    y = _centred(draw, y + 16, ENGLISH, _font(False, 30), (70, 70, 70), width)
    _centred(draw, height - 90, url, _font(False, 28), (70, 70, 70), width)
    return img


def write(path: str | Path, venue: str, url: str, *, name: str | None = None) -> Path:
    """Write the poster to `path`: PDF if it ends in .pdf, else PNG."""
    out = Path(path)
    img = render(venue, url, name=name)
    if out.suffix.lower() == ".pdf":
        img.save(out, "PDF", resolution=DPI)
    else:
        img.save(out, "PNG", dpi=(DPI, DPI))
    return out
