"""Text stream source: one payload per line from stdin, a pipe or any file-like object
(a keyboard-wedge scanner, `kiosk run` fed by a script, tests). A stream with a file
descriptor (stdin, a pipe) is read with select() and os.read() in the caller's thread, so
nothing is left blocked in a read when the kiosk stops (a daemon thread in a buffered
read aborts the interpreter at exit: "_enter_buffered_busy"); other streams (StringIO)
by a background thread. Bytes are decoded as UTF-8 with the same rule as the serial
source."""

from __future__ import annotations

import logging
import os
import queue
import select
import threading
from typing import IO

from kiosk.model import utcnow
from kiosk.scanner.base import EndOfStream, Line, Source
from kiosk.scanner.serialport import MAX_LINE_BYTES, decode_line, split_lines

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
        self._fd = _fileno(self._stream)
        self._rest = b""       # an unfinished line read from the fd
        self._lines: list[bytes] = []

    def _open(self) -> None:
        if self._fd is None and self._thread is None:
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

    def _next_raw(self, timeout: float) -> object:
        """The next raw line, `_EOF`, or None when nothing came within `timeout`."""
        if self._fd is None:
            try:
                return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                return None
        while not self._lines:
            if self._rest is None:
                return _EOF
            ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
            if not ready:
                return None
            chunk = os.read(self._fd, READ_CHUNK_BYTES)
            if not chunk:  # end of input: the unfinished rest is the last line
                self._lines, self._rest = [self._rest] if self._rest.strip(b"\r\n") else [], None
                break
            done, rest = split_lines(self._rest + chunk)
            if len(rest) > MAX_LINE_BYTES:
                log.warning("%s: %d-byte line dropped", self.name, len(rest))
                rest = b""
            self._lines, self._rest = done, rest
            timeout = 0.0
        return self._lines.pop(0) if self._lines else _EOF

    def _read_item(self, timeout: float) -> Line | None:
        if self._ended:
            raise EndOfStream(f"{self.name}: end of input")
        while True:
            raw = self._next_raw(timeout)
            if raw is None:
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
        # A fd stream has no thread to stop; a StringIO's reader ends with its stream.
        pass


#: Bytes asked of os.read at once: more than the longest code a scanner sends.
READ_CHUNK_BYTES = 65536


def _fileno(stream: IO) -> int | None:
    """The stream's file descriptor, or None (StringIO, BytesIO)."""
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both
        return None
