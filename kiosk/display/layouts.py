"""The layouts: one full-screen picture per `ScreenState`.

`render_state()` is a pure function from a state to a pygame Surface, used by the real
window, by the headless display's screenshots and by `kiosk screens`. Layouts scale with
the screen height and every text is fitted into its box, so 800x480, 1024x600 and
1920x1080 all work.

    >>> from kiosk.model import Reason
    >>> state = ScreenState("fail", venue_name="Siêu thị A", name="Nguyễn V*** A",
    ...                     reason=Reason.EXPIRED)
    >>> render_state(state, (800, 480)).get_size()
    (800, 480)
"""

from __future__ import annotations

from typing import Any

from kiosk.display import texts
from kiosk.display.draw import (MIN_FONT_PX, draw_text, icon, load_pygame, preview_surface, qr_surface,
                                target_box)
from kiosk.display.fonts import FontSet, find_fonts
from kiosk.display.screen import DEFAULT_SIZE, FAULT_KINDS, VERDICT_KINDS, ScreenState, safe_name, shown_kind

__all__ = ["BACKGROUNDS", "BANNER_BG", "TARGET", "render_state"]

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


class _Layout:
    def __init__(self, surface, fonts: FontSet, state: ScreenState, shown_kind: str) -> None:
        pygame = load_pygame()
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
        self.s.blit(icon("review", icon_d, BANNER_BG, INK), (pad + self.m // 2, pad))
        parts = []
        for kind in faults:
            title, _ = texts.fault_text(kind, pending=self.state.pending_uploads)
            if kind == "offline" and self.state.pending_uploads:
                count = texts.PENDING_COUNT
                n = self.state.pending_uploads
                parts.append(f"{title.vi} ({count.vi.format(pending=n)}) · {title.en} ({count.en.format(pending=n)})")
            else:
                parts.append(f"{title.vi} · {title.en}")
        x = pad + icon_d + self.m
        draw_text(self.s, "   •   ".join(parts), pg.Rect(x, 2, self.w - x - self.m // 2, bh - 4),
                  self.fonts.bold, max_size=int(bh * 0.42), color=INK, max_lines=2)
        return bh

    def header(self, symbol: str, disc, words, *, share: float, icon_fill: float, icon_max_w: float,
               vi: tuple[float, float], en: tuple[float, float]) -> int:
        """The round symbol on a `disc` at the left, the Vietnamese title (bottom-aligned)
        and the English one under it, in the top `share` of the area; returns its height.
        `vi`: (share of the header's height, font size as a share of the screen's);
        `en`: (where it starts as a share of the header's height, font size)."""
        pg, a = self.pg, self.area
        header_h = int(a.h * share)
        icon_d = int(min(header_h * icon_fill, self.w * icon_max_w))
        self.s.blit(icon(symbol, icon_d, self.bg, disc), (a.x, a.y + (header_h - icon_d) // 2))
        tx = a.x + icon_d + self.m
        tw = a.right - tx
        self.text(words.vi, pg.Rect(tx, a.y, tw, int(header_h * vi[0])), size_frac=vi[1], bold=True,
                  valign="bottom")
        self.text(words.en, pg.Rect(tx, a.y + int(header_h * en[0]), tw, header_h - int(header_h * en[0])),
                  size_frac=en[1], max_lines=1, valign="top")
        return header_h

    def footer(self, text: str) -> Any:
        """Small venue line at the bottom; returns the y where the body must end."""
        fh = round(self.area.h * 0.08)
        rect = self.pg.Rect(self.area.x, self.area.bottom - fh, self.area.w, fh)
        self.text(text, rect, size_frac=0.045, max_lines=1, valign="bottom")
        return rect.y


def _render_verdict(L: _Layout) -> None:
    pg, st, a = L.pg, L.state, L.area
    header_h = L.header(L.kind, L.fg, texts.VERDICT_TEXTS[L.kind], share=0.46, icon_fill=0.92, icon_max_w=0.2,
                        vi=(0.7, 0.2), en=(0.72, 0.085))
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
    qr = qr_surface(st.checkin_url or "", qr_side)
    # White quiet zone behind the code so phones read it on the dark background.
    pg.draw.rect(L.s, WHITE, pg.Rect(col_x, a.y, col_w, qr_side), border_radius=max(2, L.m // 3))
    L.s.blit(qr, (col_x + (col_w - qr.get_width()) // 2, a.y + (qr_side - qr.get_height()) // 2))
    # Text at the bottom edge keeps half a margin more than the area's: on a 480 px panel
    # the bezel hides ~20 px, and the English lines sat right there.
    low = a.bottom - L.m // 2
    cap_y = a.y + qr_side + L.m // 3
    cap_h = low - cap_y
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
           pg.Rect(a.x, low - 2 * count_h, lw, count_h), size_frac=0.06, bold=True, max_lines=1)
    L.text(texts.IDLE_TODAY.en.format(count=st.today_count),
           pg.Rect(a.x, low - count_h, lw, count_h), size_frac=0.05, max_lines=1)


def _render_scanning(L: _Layout) -> None:
    pg, st, a = L.pg, L.state, L.area
    pw = int(a.w * 0.6)
    view = pg.Rect(a.x, a.y, pw, a.h)
    preview = preview_surface(st.frame, view.size) if st.frame is not None else None
    if preview is not None:
        view = preview.get_rect(center=view.center)
        L.s.blit(preview, view)
    else:
        pg.draw.rect(L.s, (0, 0, 0), view)
    side = int(min(view.w, view.h) * 0.7)
    target_box(L.s, pg.Rect(0, 0, side, side).move(view.centerx - side // 2, view.centery - side // 2),
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
    header_h = L.header("fault", BANNER_BG, title, share=0.42, icon_fill=0.85, icon_max_w=0.18,
                        vi=(0.66, 0.13), en=(0.68, 0.075))
    end = L.footer(st.venue_name)
    y = a.y + header_h + L.m
    rest = end - y
    L.text(detail.vi, pg.Rect(a.x, y, a.w, int(rest * 0.5)), size_frac=0.08, bold=True)
    L.text(detail.en, pg.Rect(a.x, y + int(rest * 0.5), a.w, rest - int(rest * 0.5)), size_frac=0.06,
           valign="top")


def _fontset(font: Any) -> FontSet:
    if font is None:
        return find_fonts("")
    if isinstance(font, FontSet):
        return font
    return find_fonts(str(font))


def render_state(state: ScreenState, size: tuple[int, int] = DEFAULT_SIZE, font: Any = None):
    """Draw `state` on a new Surface of `size`. `font`: None (DejaVu/Noto found on the
    system), a TTF path, or a FontSet. Needs no display (works before set_mode)."""
    pygame = load_pygame()
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

