"""What citizens and guards see and hear: the screen, lights, buzzer, door relay and
guard button.

- `ScreenState`, `render_state()`, `open_display()`: the pygame screen (or a headless
  twin that records the states shown).
- `kiosk.display.signals.Signals`: lights, buzzer, relay and guard button on gpiozero.
- `kiosk.display.guard.admit_last()`: the guard button's journal action.

Nothing here imports pygame or a GPIO library at import time.
"""

import os

# pygame greets on stdout when imported; the kiosk's stdout carries JSON and file lists.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from kiosk.display.screen import (  # noqa: E402 - after the environment is set
    FAULT_KINDS,
    KINDS,
    SIZES,
    VERDICT_KINDS,
    Display,
    DisplayError,
    HeadlessDisplay,
    ScreenState,
    open_display,
    render_state,
)

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
