"""Drawing primitives for the layouts: text fitted into a box, round verdict icons, the
venue's QR code, the camera preview and the target brackets.

Every text is fitted (the largest font that fits, then wrapped, then cut with an
ellipsis), never clipped, so one layout serves 800x480 to 1920x1080. pygame is imported
inside the functions that draw, never at import time.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

__all__ = ["MIN_FONT_PX", "draw_text", "icon", "load_pygame", "preview_surface", "qr_surface", "target_box"]

#: Smallest font, in pixels, before a text is cut with an ellipsis.
MIN_FONT_PX = 10
#: A text goes on fewer lines when that costs at most this much of its font size.
FEWER_LINES_MIN_SCALE = 0.9
#: The venue QR's modules: black on white, whatever the screen's colours.
QR_DARK = (0, 0, 0)
QR_LIGHT = (255, 255, 255)


def load_pygame():
    """pygame, with its font module ready (works before any window is opened)."""
    import pygame

    if not pygame.font.get_init():
        pygame.font.init()
    return pygame


@lru_cache(maxsize=256)
def _font(path: str, size: int):
    pygame = load_pygame()
    return pygame.font.Font(path or None, size)


def _words(text: str) -> list[str]:
    """Words at the spaces a line may break at: a no-break space (U+00A0) keeps a pair
    such as "bình\u00a0thường" on one line (str.split() would break there too)."""
    return [w for w in re.split(r"[ \t\n]+", text) if w]


def _wrap(font, text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in _words(text):
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
    lo, hi = max(font.size(w)[0] for w in _words(text)), width
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
    pygame = load_pygame()
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
def icon(kind: str, diameter: int, fg: tuple, bg: tuple):
    """A round symbol (check, cross, exclamation), drawn 4x and scaled down for smooth edges.
    The symbol repeats the colour's meaning for colour-blind visitors."""
    pygame = load_pygame()
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
def qr_surface(url: str, side: int):
    """The venue's check-in QR as a surface about `side` px, whole pixels per module."""
    import numpy as np
    import segno

    pygame = load_pygame()
    # Non-ASCII text must go in byte mode as UTF-8: left to itself segno may pick Kanji
    # mode for short Vietnamese text, which every reader then shows as Japanese.
    text = url or " "
    extra = {} if text.isascii() else {"mode": "byte", "encoding": "utf-8"}
    qr = segno.make(text, error="m", micro=False, **extra)
    rows = [list(row) for row in qr.matrix_iter(scale=1, border=2)]
    modules = np.array(rows, dtype=bool)
    n = modules.shape[0]
    scale = max(1, side // n)
    rgb = np.where(modules[..., None], np.array(QR_DARK, np.uint8), np.array(QR_LIGHT, np.uint8)).astype(np.uint8)
    small = pygame.surfarray.make_surface(rgb.swapaxes(0, 1))
    return pygame.transform.scale(small, (n * scale, n * scale))


GREY_PALETTE = [(i, i, i) for i in range(256)]


def preview_surface(frame, size: tuple[int, int]):
    """A camera frame (greyscale, or BGR as OpenCV gives it) scaled to fit `size`.
    Runs on every preview frame, so it avoids full-size copies: rows and columns are
    dropped first, and greyscale goes in as 8-bit with a grey palette."""
    import numpy as np

    pygame = load_pygame()
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


def target_box(surface, rect, color, width: int) -> None:
    """Corner brackets around the area where the code should be held."""
    pygame = load_pygame()
    arm = rect.w // 4
    for x, y in ((rect.left, rect.top), (rect.right - arm, rect.top),
                 (rect.left, rect.bottom - width), (rect.right - arm, rect.bottom - width)):
        pygame.draw.rect(surface, color, pygame.Rect(x, y, arm, width))
    for x, y in ((rect.left, rect.top), (rect.right - width, rect.top),
                 (rect.left, rect.bottom - arm), (rect.right - width, rect.bottom - arm)):
        pygame.draw.rect(surface, color, pygame.Rect(x, y, width, arm))

