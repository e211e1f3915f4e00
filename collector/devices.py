"""Devices are bound to their venue and their time: what a device token may upload.

An enrolment code is minted for one device at one venue (`collector enrol-code --device
kiosk-01 --venue BV-CHORAY`); the device's entries must name that venue and lie between
its enrolment and a little after the collector received them. A stolen kiosk cannot plant
visits at another venue, in the past before it existed, or in the future.

    >>> from datetime import datetime, timezone
    >>> from collector.storage import DeviceAuth
    >>> t = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)
    >>> auth = DeviceAuth("kiosk-01", "V1", enrolled_at=t, rotate=False)
    >>> class E: venue_code, scanned_at = "V2", t
    >>> [r["msg"] for r in binding_refusals([E], auth, now=t)]
    ["entry for venue 'V2': device 'kiosk-01' is bound to venue 'V1'"]
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable

__all__ = ["binding_refusals", "MAX_AHEAD_OF_RECEIPT", "ENROLMENT_SLACK"]

#: An entry may be stamped at most this far after the collector received it (kiosk
#: clocks drift; more is a planted or impossible time).
MAX_AHEAD_OF_RECEIPT = timedelta(minutes=10)
#: ... and at most this far before the device was enrolled (the kiosk's clock against the
#: collector's, during the minute of enrolment).
ENROLMENT_SLACK = timedelta(minutes=1)


def binding_refusals(entries: Iterable[Any], auth: Any, *, now: datetime) -> list[dict[str, Any]]:
    """One error per entry the device may not upload, in FastAPI's error shape with `loc`
    `["body", "entries", i, field]`, so the kiosk keeps exactly those (and says why)."""
    out: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        if auth.venue_code is None:
            msg, field = (f"device {auth.device_id!r} is not bound to a venue; mint a new enrolment "
                          "code with `collector enrol-code --venue` and enrol again"), "venue_code"
        elif e.venue_code != auth.venue_code:
            msg, field = (f"entry for venue {e.venue_code!r}: device {auth.device_id!r} is bound "
                          f"to venue {auth.venue_code!r}"), "venue_code"
        elif e.scanned_at < auth.enrolled_at - ENROLMENT_SLACK:
            msg, field = (f"scanned_at {e.scanned_at.isoformat()} is before device {auth.device_id!r} "
                          f"was enrolled ({auth.enrolled_at.isoformat()})"), "scanned_at"
        elif e.scanned_at > now + MAX_AHEAD_OF_RECEIPT:
            msg, field = (f"scanned_at {e.scanned_at.isoformat()} is more than "
                          f"{MAX_AHEAD_OF_RECEIPT.total_seconds() / 60:g} minutes after the collector "
                          f"received it ({now.isoformat()})"), "scanned_at"
        else:
            continue
        out.append({"type": "forbidden", "loc": ["body", "entries", i, field], "msg": msg})
    return out
