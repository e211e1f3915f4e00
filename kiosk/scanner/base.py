"""The source interface: something that yields camera frames or scanner lines.

Every source is a context manager with an idempotent `close()`; using a closed source
raises `DeviceClosed`. A source never raises on a failing device: it reports the fault
through `fault`, keeps returning None, and reopens the device by itself with exponential
backoff (capped at `cfg.scanner.reopen_backoff_max_s`). Only a finite source (a replay
folder without loop, a text stream) ends, by raising `EndOfStream`.

    >>> from kiosk.config import load_config
    >>> cfg = load_config(None, overrides={"scanner.kind": "stdin"}, search=False)
    >>> from kiosk.scanner.sources import open_source
    >>> with open_source(cfg) as source:          # doctest: +SKIP
    ...     item = source.read(timeout=0.5)        # Frame, Line or None
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from kiosk.backoff import Backoff
from kiosk.errors import DeviceClosed, KioskError
from kiosk.model import utcnow

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Frame", "Line", "Source", "EndOfStream", "Backoff"]

log = logging.getLogger(__name__)

# First wait after a device fails; it doubles on each failed reopen up to the configured cap.
REOPEN_BACKOFF_START_S = 0.25
# Longest single sleep while waiting, so close() from another thread is noticed promptly.
MAX_SLEEP_SLICE_S = 0.05


class EndOfStream(KioskError, EOFError):
    """A finite source (replay without loop, a text stream) has no more items."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One greyscale image (uint8, 2-D) from a camera or replay, with when it was taken."""

    image: "np.ndarray"
    at: datetime
    index: int


@dataclass(frozen=True)
class Line:
    """One payload from a line-based scanner (serial module, stdin)."""

    text: str
    at: datetime


class Source(abc.ABC):
    """Base of every source. Subclasses implement `_open()`, `_read_item(timeout)` and
    `_release()`; this class owns the closed state, the fault text and the reopen backoff.

    `_open()` raises OSError (or SourceError) when the device is not there; `_read_item`
    returns an item or None, raises OSError when the device fails while open, and raises
    EndOfStream when a finite source is done.
    """

    kind = "source"

    def __init__(self, *, name: str, backoff_max_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self._backoff = Backoff(REOPEN_BACKOFF_START_S, backoff_max_s)
        self._closed = False
        self._is_open = False
        self._fault: str | None = None
        self._retry_at = 0.0
        self._lock = threading.RLock()
        self._index = 0  # frames delivered so far

    # -- public ---------------------------------------------------------------------

    @property
    def fault(self) -> str | None:
        """Why the device is failing right now ("camera fault: ... cannot be opened"), or None."""
        return self._fault

    @property
    def closed(self) -> bool:
        return self._closed

    def read(self, timeout: float) -> Any:
        """The next Frame or Line, or None if nothing arrived within `timeout` seconds."""
        self._check_open()
        deadline = self._clock() + max(0.0, timeout)
        while True:
            self._check_open()
            now = self._clock()
            if not self._is_open:
                if now >= self._retry_at:
                    self._try_open()
                    continue
                wait = min(self._retry_at, deadline) - now
                if wait <= 0:
                    return None
                time.sleep(min(wait, MAX_SLEEP_SLICE_S))
                continue
            remaining = max(0.0, deadline - now)
            try:
                with self._lock:
                    # close() from another thread may have released the device meanwhile.
                    self._check_open()
                    if not self._is_open:
                        continue
                    item = self._read_item(remaining)
            except OSError as exc:
                self._failed(self._describe_read_error(exc))
                if self._clock() >= deadline:
                    return None
                continue
            if item is not None or self._clock() >= deadline:
                return item

    def close(self) -> None:
        """Release the device. Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._is_open:
                self._is_open = False
                self._release()

    def __enter__(self) -> "Source":
        """Opens the device at once (a missing one becomes `fault`, never an exception)."""
        self._check_open()
        if not self._is_open and self._clock() >= self._retry_at:
            self._try_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("fault" if self._fault else "ok")
        return f"<{type(self).__name__} {self.name!r} {state}>"

    # -- for subclasses --------------------------------------------------------------

    @abc.abstractmethod
    def _open(self) -> None: ...

    @abc.abstractmethod
    def _read_item(self, timeout: float) -> Any: ...

    @abc.abstractmethod
    def _release(self) -> None: ...

    def _describe_open_error(self, exc: OSError) -> str:
        return f"{self.kind} fault: {self.name} cannot be opened ({exc.strerror or exc})"

    def _describe_read_error(self, exc: OSError) -> str:
        return f"{self.kind} fault: {self.name} stopped delivering ({exc.strerror or exc})"

    def _recovered(self) -> None:
        """Call when the device delivered again: clears the fault and the backoff."""
        if self._fault is not None:
            log.warning("%s recovered", self.name)
        self._fault = None
        self._backoff.reset()

    def _wait_until(self, due: float, timeout: float) -> bool:
        """Sleep until `due` (this source's clock) if that comes within `timeout`; False,
        after sleeping `timeout`, when it does not (the read then returns nothing)."""
        wait = due - self._clock()
        if wait > timeout:
            time.sleep(timeout)
            return False
        if wait > 0:
            time.sleep(wait)
        return True

    def _frame(self, image: Any) -> "Frame":
        """A delivered image as the next greyscale Frame; the device works again."""
        if image.ndim == 3:
            import cv2

            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        self._recovered()
        frame = Frame(image=image, at=utcnow(), index=self._index)
        self._index += 1
        return frame

    def _failed(self, message: str) -> None:
        """Record a fault, release the device and schedule the next reopen."""
        with self._lock:
            if self._is_open:
                self._is_open = False
                self._release()
            delay = self._backoff.next()
            self._retry_at = self._clock() + delay
        if message != self._fault:
            log.warning("%s; retrying in %.2fs", message, delay)
        self._fault = message

    # -- internals ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceClosed(f"{self.kind} source {self.name} is closed")

    def _try_open(self) -> None:
        with self._lock:
            self._check_open()
            try:
                self._open()
            except OSError as exc:
                self._failed(self._describe_open_error(exc))
                return
            self._is_open = True
