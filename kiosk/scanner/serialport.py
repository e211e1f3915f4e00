"""Serial scanner source (pyserial): a GM65-style QR module that sends one code per line,
terminated by CR, LF or CRLF.

Text decoding: lines are UTF-8 (what these modules send for Vietnamese names when set to
UTF-8 output). Bytes that are not valid UTF-8 are never guessed as latin-1: they become
U+FFFD replacement characters and a warning with the raw bytes is logged, so the code
fails its checks visibly instead of passing with a silently wrong name.

An unplugged port (the device node vanishes or reports hang-up) becomes a fault; the port
is reopened with backoff and the fault clears when it opens again.
"""

from __future__ import annotations

import logging
import re

from kiosk.errors import short_error
from kiosk.model import utcnow
from kiosk.scanner.base import Line, Source

__all__ = ["SerialSource", "MAX_LINE_BYTES", "split_lines"]

log = logging.getLogger(__name__)

# The largest QR code holds 2953 bytes; a longer run without a line end is noise or a
# scanner left in the wrong mode, so it is dropped instead of growing without bound.
MAX_LINE_BYTES = 4096
_LINE_END = re.compile(rb"\r\n|\r|\n")


def split_lines(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without their CR/LF/CRLF, empty ones dropped) and the unfinished rest.

    A CR ends a line at once (CR-only scanners); when its LF arrives in the next chunk it
    makes an empty line, which is dropped.

    >>> split_lines(b"A\\r\\nB\\rC\\n\\nD")
    ([b'A', b'B', b'C'], b'D')
    """
    parts = _LINE_END.split(buffer)
    rest = parts.pop()
    return [p for p in parts if p], rest


def decode_line(raw: bytes, *, where: str = "serial") -> str:
    """UTF-8 text of one scanned line; invalid bytes become U+FFFD, with a warning."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Never the bytes themselves: a scanned ID card line is a person's ID, name and address.
        log.warning("%s: a %d-byte line is not valid UTF-8, kept with replacement characters",
                    where, len(raw))
        return raw.decode("utf-8", errors="replace")


class SerialSource(Source):
    """Lines from a serial QR scanner.

    >>> with SerialSource("/dev/qrscanner", baud=9600) as src:   # doctest: +SKIP
    ...     line = src.read(timeout=0.5)
    """

    kind = "serial"

    def __init__(self, port: str, *, baud: int = 9600, backoff_max_s: float = 30.0) -> None:
        super().__init__(name=port, backoff_max_s=backoff_max_s)
        self.port = port
        self.baud = baud
        self._serial = None
        self._buffer = b""
        self._pending: list[bytes] = []

    def _open(self) -> None:
        import serial

        try:
            # exclusive: a second reader (kiosk doctor while kiosk runs) would steal half the codes.
            self._serial = serial.Serial(self.port, self.baud, timeout=0, exclusive=True)
        except serial.SerialException as exc:
            raise OSError(getattr(exc, "errno", None) or 5, short_error(exc)) from None
        self._buffer = b""
        self._recovered()

    def _read_item(self, timeout: float) -> Line | None:
        import serial

        if not self._pending:
            try:
                self._serial.timeout = timeout
                chunk = self._serial.read(1)
                if chunk:
                    self._serial.timeout = 0
                    chunk += self._serial.read(max(0, self._serial.in_waiting))
            except serial.SerialException as exc:
                raise OSError(5, short_error(exc)) from None
            except OSError as exc:  # termios calls on a vanished device
                raise OSError(exc.errno or 5, exc.strerror or "I/O error") from None
            lines, self._buffer = split_lines(self._buffer + chunk)
            if len(self._buffer) > MAX_LINE_BYTES:
                log.warning("serial %s: %d bytes without a line end dropped", self.port, len(self._buffer))
                self._buffer = b""
            self._pending.extend(lines)
        if not self._pending:
            return None
        return Line(text=decode_line(self._pending.pop(0), where=f"serial {self.port}"), at=utcnow())

    def _release(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except OSError as exc:  # closing a port whose device is gone
                log.debug("serial %s: close failed: %s", self.port, exc)
            self._serial = None
