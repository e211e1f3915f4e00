"""Contact tracing: who was at a venue within a window of a given time.

Two questions, one function:
- `trace(store, venue="V1", at=t, window=timedelta(minutes=30))`: everyone logged at V1
  between t-30min and t+30min.
- `trace(store, venue="V1", subject_hash=h, window=...)`: every visit of the case `h`
  to V1 (or to any venue when `venue` is None), and everyone logged within the window
  of each visit. `at`, if given, limits the case's visits to the day around it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

__all__ = ["trace", "opened_fields", "TraceResult", "MAX_WINDOW", "CASE_LOOKBACK", "person_key", "DEFAULT_RETENTION_DAYS"]

log = logging.getLogger("collector.tracing")
_warned_no_key = False  # said once per process, not once per entry

#: The longest window a query may ask for: tracing is targeted, not a data export.
MAX_WINDOW = timedelta(hours=24)
#: With a subject and no time, look this far back for the case's visits (incubation period).
CASE_LOOKBACK = timedelta(days=21)
#: With a subject and a time, the case's visits are searched this far around it.
CASE_AROUND = timedelta(hours=12)
#: Personal fields are kept this long for tracing, then purged (`collector retention`).
DEFAULT_RETENTION_DAYS = 21


def person_key(entry: Mapping[str, Any], *, seal_private_key: str, tracing_key: str) -> str | None:
    """The cross-kiosk person key of an uploaded entry, derived here from the identifier
    inside its (sealed) personal fields; kiosks never hold the tracing key, and what a
    device claims as `subject_hash` is ignored. None: no identifier, or sealed and this
    collector has no seal key (the entry is kept; it cannot be traced).

    >>> person_key({"personal": '{"subject": "cccd:079201001234"}', "sealed": False},
    ...            seal_private_key="", tracing_key="00" * 32)[:16]
    '33075f76aaf7a76f'
    """
    from kiosk.seal import SUBJECT_FIELD, SealError, open_sealed, subject_hash

    raw = entry.get("personal")
    if not raw:
        return None
    if entry.get("sealed"):
        if not seal_private_key:
            global _warned_no_key
            if not _warned_no_key:
                _warned_no_key = True
                log.warning("sealed entries arrive but this collector has no seal_private_key: "
                            "they are kept, but cannot be traced (set seal_private_key)")
            return None
        try:
            raw = open_sealed(seal_private_key, raw).decode("utf-8")
        except (SealError, UnicodeDecodeError):
            log.warning("entry %s: sealed fields do not open with this collector's seal key", entry.get("id"))
            return None
    try:
        fields = json.loads(raw)
    except ValueError:
        return None
    subject = fields.get(SUBJECT_FIELD) if isinstance(fields, dict) else None
    if not isinstance(subject, str) or not subject:
        return None
    return subject_hash(tracing_key, subject)


@dataclass(frozen=True)
class TraceResult:
    venue: str | None
    windows: list[tuple[datetime, datetime, str | None]]  # (start, end, venue)
    people: list[dict[str, Any]]


def trace(store: Any, *, venue: str | None, at: datetime | None, window: timedelta,
          subject_hash: str | Sequence[str] | None = None, now: datetime) -> TraceResult:
    """`subject_hash`: the case's person key, or every key one person can have (the chip
    ID a kiosk read, the web form's declaration): visits under any of them are the case's."""
    if isinstance(subject_hash, str):
        subject_hash = [subject_hash]
    cases = set(subject_hash or ())
    subject_hash = sorted(cases) or None
    if window <= timedelta(0) or window > MAX_WINDOW:
        raise ValueError(f"window must be between 1 minute and {MAX_WINDOW}")
    if subject_hash is None:
        if venue is None or at is None:
            raise ValueError("give a venue and a time, or a subject_hash")
        windows = [(at - window, at + window, venue)]
    else:
        start, end = ((at - CASE_AROUND, at + CASE_AROUND) if at is not None
                      else (now - CASE_LOOKBACK, now))
        visits = store.visits(venue=venue, start=start, end=end, subject_hash=subject_hash)
        windows = [(v["scanned_at"] - window, v["scanned_at"] + window, v["venue_code"]) for v in visits]
    seen: dict[str, dict[str, Any]] = {}
    # Everyone in any of the windows, in a few queries (one per WINDOWS_PER_QUERY windows)
    # rather than one per visit: a 21-day trace of a busy person was 149 round trips.
    for row in store.visits_in(windows):
        row["is_case"] = row["subject_hash"] in cases
        seen.setdefault(row["id"], row)
    people = sorted(seen.values(), key=lambda r: (r["scanned_at"], r["id"]))
    return TraceResult(venue, windows, people)


def opened_fields(row: Mapping[str, Any], private_key: str) -> dict[str, Any]:
    """The person's tracing fields opened with the collector's seal key, where they were
    sealed and the key is configured; otherwise as stored."""
    if not (row["sealed"] and row["personal"] and private_key):
        return {"opened": False}
    from kiosk.seal import SealError, open_sealed

    try:
        return {"personal": open_sealed(private_key, row["personal"]).decode("utf-8"), "opened": True}
    except (SealError, UnicodeDecodeError):
        return {"opened": False}
