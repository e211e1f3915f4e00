"""Text stream source: one payload per line from stdin, a pipe or any file-like object
(a keyboard-wedge scanner, `kiosk run` fed by a script, tests). Lines are read by a
background thread so `read(timeout)` works on any stream. Binary streams (stdin's buffer)
are decoded as UTF-8 with the same rule as the serial source."""

from __future__ import annotations

import logging
import queue
import threading
from typing import IO

from kiosk.model import utcnow
from kiosk.scanner.base import EndOfStream, Line, Source
from kiosk.scanner.serialport import MAX_LINE_BYTES, decode_line

__all__ = ["TextStreamSource"]

log = logging.getLogger(__name__)

_EOF = object()


class TextStreamSource(Source):
    """Lines from a text or binary stream; raises EndOfStream once the stream ends.

    >>> import io
    >>> with TextStreamSource(io.StringIO("HC1:ABC\\n\\nNguyễn\\n")) as src:
    ...     [src.read(1.0).text, src.read(1.0).text]
    ['HC1:ABC', 'Nguyễn']
    """

    kind = "stdin"

    def __init__(self, stream: IO, *, name: str = "stream") -> None:
        super().__init__(name=name)
        # Prefer the raw bytes of a text stream (sys.stdin) so the UTF-8 rule is ours.
        self._stream = getattr(stream, "buffer", stream)
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ended = False

    def _open(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._pump, name=f"kiosk-{self.name}", daemon=True)
            self._thread.start()

    def _pump(self) -> None:
        try:
            while not self._closed:
                raw = self._stream.readline()
                if not raw:  # b"" or "": end of stream
                    break
                self._queue.put(raw)
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed under us
            log.warning("%s: stream ended with an error: %s", self.name, exc)
        finally:
            self._queue.put(_EOF)

    def _read_item(self, timeout: float) -> Line | None:
        if self._ended:
            raise EndOfStream(f"{self.name}: end of input")
        while True:
            try:
                raw = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                return None
            if raw is _EOF:
                self._ended = True
                raise EndOfStream(f"{self.name}: end of input")
            if isinstance(raw, bytes):
                if len(raw) > MAX_LINE_BYTES:
                    log.warning("%s: %d-byte line dropped", self.name, len(raw))
                    continue
                text = decode_line(raw.rstrip(b"\r\n"), where=self.name)
            else:
                text = raw.rstrip("\r\n")
            text = text.strip("\r")
            if text:
                return Line(text=text, at=utcnow())
            timeout = 0.0  # an empty line: look for the next one without waiting again

    def _release(self) -> None:
        # The reader thread may be blocked in readline(); it is a daemon and stops at EOF.
        pass
