"""Display backends, chosen by `display.backend` (as gpiozero's pin factories are):
`window.PygameDisplay` (a window, or KMS/DRM on a Pi) and `headless.HeadlessDisplay`
(draws nothing, records the states). Both implement `base.Display`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kiosk.display.backends.base import Display, DisplayError
from kiosk.display.backends.headless import HISTORY_MAX, HeadlessDisplay
from kiosk.display.backends import window
from kiosk.display.backends.window import PygameDisplay, display_available
from kiosk.display.screen import parse_size

if TYPE_CHECKING:  # pragma: no cover
    from kiosk.config import Config

__all__ = ["Display", "DisplayError", "HISTORY_MAX", "HeadlessDisplay", "PygameDisplay", "display_available",
           "open_display"]

log = logging.getLogger(__name__)


def open_display(cfg: "Config", *, headless: bool = False) -> HeadlessDisplay | PygameDisplay:
    """The screen chosen by `display.backend`: "headless", "pygame" (fails loudly), or
    "auto" (a window where a display exists, headless otherwise or if it cannot open)."""
    backend = cfg.display.backend
    size = parse_size(cfg.display.size)
    if headless or backend == "headless":
        return HeadlessDisplay(size, font=cfg.display.font)
    if backend == "auto" and not window.display_available():
        log.info("no display found: running headless")
        return HeadlessDisplay(size, font=cfg.display.font)
    try:
        return PygameDisplay(cfg)
    except DisplayError as exc:
        if backend == "pygame":
            raise
        log.warning("%s; running headless", exc)
        return HeadlessDisplay(size, font=cfg.display.font)
