"""Check-in kiosk: scan a QR code, decide pass/fail/review, journal it, signal it."""

__version__ = "0.1.0"
__all__ = ["__version__"]
