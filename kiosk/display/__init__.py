"""What citizens and guards see and hear: the screen, lights, buzzer, door relay and
guard button.

- `kiosk.display.screen.ScreenState`: what one screen shows (the run loop's side).
- `kiosk.display.layouts.render_state()`: draws a state (on `kiosk.display.draw`).
- `kiosk.display.backends.open_display()`: the pygame window / KMS screen, or a
  headless twin that records the states shown (`backends.base.Display` is the interface).
- `kiosk.display.signals.Signals`: lights, buzzer, relay and guard button on gpiozero.
- `kiosk.display.guard.admit_last()`: the guard button's journal action.

Nothing here imports pygame or a GPIO library at import time.
"""

import os

# pygame greets on stdout when imported; the kiosk's stdout carries JSON and file lists.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from kiosk.display.backends import (  # noqa: E402 - after the environment is set
    Display,
    DisplayError,
    HeadlessDisplay,
    open_display,
)
from kiosk.display.layouts import render_state  # noqa: E402
from kiosk.display.screen import FAULT_KINDS, KINDS, SIZES, VERDICT_KINDS, ScreenState  # noqa: E402

__all__ = [
    "Display",
    "DisplayError",
    "FAULT_KINDS",
    "HeadlessDisplay",
    "KINDS",
    "SIZES",
    "ScreenState",
    "VERDICT_KINDS",
    "open_display",
    "render_state",
]
