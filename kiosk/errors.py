"""One base error for the kiosk; each subclass also inherits the matching built-in.

`short_error()` turns any exception into one short line for a log, a fault text or a
`kiosk doctor` detail.
"""

import errno as _errno
import os

__all__ = [
    "KioskError",
    "ConfigError",
    "SourceError",
    "JournalError",
    "DecodeError",
    "TrustError",
    "SyncError",
    "DeviceClosed",
    "short_error",
]

#: What went wrong, found inside the long messages requests and urllib3 build around it.
KNOWN_CAUSES = ("Connection refused", "Name or service not known", "timed out", "No route to host",
                "Temporary failure in name resolution", "certificate verify failed")
#: Longest error text shown; longer ones are cut with "...".
SHORT_ERROR_MAX = 160


class KioskError(Exception):
    """Base of every error the kiosk raises on purpose."""


class ConfigError(KioskError, ValueError):
    """A config file or value is wrong. The message names the file, the key and what is allowed."""


class SourceError(KioskError, OSError):
    """A frame or line source cannot deliver (camera unplugged, serial port gone)."""


class JournalError(KioskError, OSError):
    """The journal cannot be opened or written (disk full, corrupt file)."""


class DecodeError(KioskError, ValueError):
    """An image cannot be read as an image at all (not: no QR code found)."""


class TrustError(KioskError, ValueError):
    """A trust list, revocation list or key cannot be imported."""


class SyncError(KioskError, OSError):
    """Upload or fetch failed after its retries."""


class DeviceClosed(KioskError, RuntimeError):
    """A device or resource was used after close()."""


def short_error(exc: BaseException, *, limit: int = SHORT_ERROR_MAX) -> str:
    """One short line: a known cause buried in a library's message, else the OS's words
    for the exception's errno, else its message cut to `limit` characters.

    >>> short_error(OSError(_errno.ENOENT, "could not open port /dev/ttyACM0: [Errno 2] ..."))
    'No such file or directory'
    >>> short_error(OSError("HTTPConnectionPool(host='c', port=80): ... [Errno 111] Connection refused"))
    'connection refused'
    >>> short_error(OSError(_errno.EAGAIN, "lock held"))     # the exclusive lock of a tty
    'in use by another program'
    """
    text = str(exc)
    for known in KNOWN_CAUSES:
        if known in text:
            return known.lower()
    code = getattr(exc, "errno", None)
    if code in (_errno.EAGAIN, _errno.EWOULDBLOCK):
        return "in use by another program"
    if isinstance(code, int) and not isinstance(code, bool) and code > 0:
        return os.strerror(code)
    return text if len(text) <= limit else text[:limit - 3] + "..."
