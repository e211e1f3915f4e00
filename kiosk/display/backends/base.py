"""The interface every display backend implements (as gpiozero's devices talk only to
an abstract pin factory): show a `ScreenState`, report events, take a screenshot, close.

A display is a context manager; `close()` is idempotent and a closed display raises
`DeviceClosed` when used.
"""

from __future__ import annotations

import abc
import os

from kiosk.display.screen import ScreenState
from kiosk.errors import DeviceClosed, KioskError

__all__ = ["Display", "DisplayError"]


class DisplayError(KioskError, OSError):
    """The screen cannot be opened (no display, driver failed)."""


class Display(abc.ABC):
    """What the run loop needs from a screen. Subclasses implement `show`, `poll`,
    `screenshot` and, when they hold a resource, `_release`."""

    size: tuple[int, int]
    _closed = False

    @abc.abstractmethod
    def show(self, state: ScreenState) -> None:
        """Put `state` on the screen (replacing what was there)."""

    @abc.abstractmethod
    def poll(self) -> list[str]:
        """Events since the last poll: "quit", "guard"."""

    @abc.abstractmethod
    def screenshot(self, path: str | os.PathLike) -> None:
        """Save what the screen shows as a PNG."""

    def _release(self) -> None:
        """Free what the backend holds; called once, by the first `close()`."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._release()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceClosed(f"{type(self).__name__} is closed")

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
