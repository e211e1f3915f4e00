"""The headless display: draws nothing, records the states shown.

Used by tests, `kiosk run --headless` and kiosks without a screen. It records a bounded
history (`HISTORY_MAX` states) and never keeps a camera frame in it: a recorded
scanning state holds its preview's `PreviewShape`, so a headless kiosk showing 30
preview frames a second keeps a flat memory footprint (issue 16: 67 MB -> 534 MB in
five minutes when the frames were kept).

    >>> with HeadlessDisplay((800, 480)) as display:
    ...     display.show(ScreenState("idle", venue_name="Siêu thị A"))
    ...     display.last.kind
    'idle'
"""

from __future__ import annotations

import os
from collections import deque

from kiosk.display.backends.base import Display
from kiosk.display.draw import load_pygame
from kiosk.display.layouts import render_state
from kiosk.display.screen import DEFAULT_SIZE, ScreenState

__all__ = ["HISTORY_MAX", "HeadlessDisplay"]

#: States a headless display remembers (a long headless run must not grow forever).
HISTORY_MAX = 1000


class HeadlessDisplay(Display):
    """Renders nothing; remembers the last `HISTORY_MAX` states shown (`history`, oldest
    first, preview frames replaced by their shape) for tests and logs.
    `inject("guard")` queues an event for the next `poll()`; `screenshot()` still
    draws the last state (its camera preview as an empty box), so a headless kiosk can
    be looked at afterwards."""

    def __init__(self, size: tuple[int, int] = DEFAULT_SIZE, *, font: str = "") -> None:
        self.size = tuple(size)
        self.font = font
        self.history: deque[ScreenState] = deque(maxlen=HISTORY_MAX)
        self._events: list[str] = []

    def show(self, state: ScreenState) -> None:
        self._check_open()
        self.history.append(state.without_frame())

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
        pygame = load_pygame()
        state = self.last or ScreenState("idle")
        pygame.image.save(render_state(state, self.size, self.font or None), str(path))
