"""The pygame display: a window on a desktop, or the whole screen through KMS/DRM on a
Raspberry Pi without a desktop (SDL's `dummy` driver in tests). pygame is imported
inside the methods, never at import time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from kiosk.display.backends.base import Display, DisplayError
from kiosk.display.fonts import find_fonts
from kiosk.display.layouts import render_state
from kiosk.display.screen import VERDICT_KINDS, ScreenState, parse_size

if TYPE_CHECKING:  # pragma: no cover
    from kiosk.config import Config

__all__ = ["PygameDisplay", "display_available"]

log = logging.getLogger(__name__)


class PygameDisplay(Display):
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
        from kiosk.display.voice import Voice, voice_dir

        self.voice = Voice(voice_dir(cfg), enabled=cfg.display.voice)
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
            self.voice.play(state.kind)
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

    def _release(self) -> None:
        import pygame

        self.voice.close()
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

