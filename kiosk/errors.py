"""One base error for the kiosk; each subclass also inherits the matching built-in."""

__all__ = [
    "KioskError",
    "ConfigError",
    "SourceError",
    "JournalError",
    "DecodeError",
    "TrustError",
    "SyncError",
    "DeviceClosed",
]


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
