"""Sync status kept in the journal (key `sync.status`) for the screen's offline banner.

The uploader writes it after every attempt; the screen reads it with `status(journal, now)`.
Whether the kiosk is "offline" is a pure function of the stored status and `now`:

    >>> t = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
    >>> is_offline({"consecutive_failures": 3, "last_success": None, "pending": 4,
    ...             "last_attempt": "2026-03-01T07:59:50Z"}, t)
    True
    >>> is_offline({"consecutive_failures": 0, "last_success": "2026-03-01T07:59:00Z",
    ...             "pending": 0, "last_attempt": "2026-03-01T07:59:00Z"}, t)
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from kiosk.model import iso_utc

__all__ = ["SyncStatus", "status", "is_offline", "STATUS_KEY", "TOKEN_KEY", "ETAGS_KEY", "ENROLLED_VENUE_KEY",
           "RULES_KEY", "FETCH_KEY", "OFFLINE_GRACE", "STALE_AFTER"]

STATUS_KEY = "sync.status"
#: The venue the collector bound this device to at enrolment: the kiosk refuses to run
#: for another (its entries would all be refused).
ENROLLED_VENUE_KEY = "sync.enrolled_venue"
TOKEN_KEY = "sync.token"
ETAGS_KEY = "sync.etags"
FETCH_KEY = "sync.fetch"
RULES_KEY = "rules.fetched"

#: A failing upload shows "offline" only once the last success is this old: one lost
#: request on a busy network should not flash the banner.
OFFLINE_GRACE = timedelta(seconds=60)
#: With entries waiting and no attempt for this long, `kiosk sync` is not running:
#: the log is not leaving the kiosk, which is "offline" for the guard.
STALE_AFTER = timedelta(minutes=10)


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class SyncStatus:
    last_success: datetime | None
    last_attempt: datetime | None
    pending: int
    last_error: str | None
    consecutive_failures: int
    offline: bool
    #: entries the collector refused outright in the last round (fault `uploads_refused`)
    refused: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"last_success": iso_utc(self.last_success) if self.last_success else None,
                "last_attempt": iso_utc(self.last_attempt) if self.last_attempt else None,
                "pending": self.pending, "last_error": self.last_error,
                "consecutive_failures": self.consecutive_failures, "offline": self.offline,
                "refused": self.refused}


def is_offline(stored: Mapping[str, Any] | None, now: datetime) -> bool:
    """True when the log is not reaching the collector (see the module docstring)."""
    if not stored:
        return False
    failures = int(stored.get("consecutive_failures") or 0)
    pending = int(stored.get("pending") or 0)
    last_success = _parse(stored.get("last_success"))
    last_attempt = _parse(stored.get("last_attempt"))
    if failures > 0 and (last_success is None or now - last_success > OFFLINE_GRACE):
        return True
    if pending > 0 and (last_attempt is None or now - last_attempt > STALE_AFTER):
        return True
    return False


def status(journal: Any, now: datetime) -> SyncStatus:
    """The sync status as last stored by `kiosk sync`, and whether to show "offline"."""
    stored = journal.get_json(STATUS_KEY) or {}
    return SyncStatus(
        last_success=_parse(stored.get("last_success")),
        last_attempt=_parse(stored.get("last_attempt")),
        pending=int(stored.get("pending") or 0),
        last_error=stored.get("last_error"),
        consecutive_failures=int(stored.get("consecutive_failures") or 0),
        offline=is_offline(stored, now),
        refused=int(stored.get("refused") or 0),
    )


def record(journal: Any, *, now: datetime, ok: bool, error: str | None = None,
           pending: int | None = None, refused: int = 0) -> dict[str, Any]:
    """Store the outcome of one upload attempt and return the new status. `refused`: how
    many entries the collector refused outright (another venue's, before enrolment): they
    cannot leave the kiosk, which the screen says (fault `uploads_refused`)."""
    stored = journal.get_json(STATUS_KEY) or {}
    new = {
        "last_success": iso_utc(now) if ok else stored.get("last_success"),
        "last_attempt": iso_utc(now),
        "pending": journal.pending_count() if pending is None else pending,
        "last_error": None if ok else error,
        "consecutive_failures": 0 if ok else int(stored.get("consecutive_failures") or 0) + 1,
        "refused": int(refused),
    }
    journal.set_json(STATUS_KEY, new, now=now)
    return new
