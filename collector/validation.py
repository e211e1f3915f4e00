"""Hostile values in requests: names, times and strings the collector refuses with a 422.

- Venue codes are letters (any script, NFC), digits, `-` and `_`, starting with a letter
  or digit: `HOSPITAL\\u200b-B` (a zero-width space) or `=HYPERLINK(...)` are refused, so a
  venue cannot look like another one or start a spreadsheet formula.
- Device ids may be free text but hold no control, format (zero-width) or separator
  characters other than a plain space.
- Times must lie in a sane window: not before the system existed (2020) and not more than
  a day ahead of the collector's clock. `9999-12-31T23:59:59Z` or
  `0001-01-01T00:00:00+14:00` get a 422 naming the entry, so the kiosk keeps that entry
  and sends the rest (kiosk.sync.uploader reads FastAPI's `loc`).

    >>> check_venue_code("HOSPITAL-B")
    'HOSPITAL-B'
    >>> check_venue_code("HOSPITAL\\u200b-B")
    Traceback (most recent call last):
    ...
    ValueError: venue code may hold only letters, digits, '-' and '_' (found U+200B at 8)
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Iterable

from fastapi.exceptions import RequestValidationError
from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

# One rule for venue codes, on the kiosk (its config) and here (every request).
from kiosk.model import NAME_MAX, char_at, check_venue_code

__all__ = [
    "VenueCode", "DeviceId", "check_venue_code", "check_device_id", "time_window",
    "check_time", "check_entry_times", "ROW_NUMBER", "IsoDateTime", "IsoDate", "MIN_TIME", "MAX_AHEAD", "NAME_MAX",
]

#: Nothing was scanned before this: a time before it is a kiosk clock that never synced.
MIN_TIME = datetime(2020, 1, 1, tzinfo=timezone.utc)
#: Kiosk clocks may run a little ahead; more than this is a wrong clock or a forgery.
MAX_AHEAD = timedelta(days=1)
#: A row number in a path (`/v1/revocations/chunks/{seq}`): what a database INTEGER holds.
ROW_NUMBER = Path(ge=0, le=2**31 - 1)


def check_device_id(value: str) -> str:
    for i, ch in enumerate(value):
        cat = unicodedata.category(ch)
        if cat[0] == "C" or (cat[0] == "Z" and ch != " "):
            raise ValueError(f"device id holds a control, invisible or separator character ({char_at(ch, i)})")
    if value != value.strip():
        raise ValueError("device id starts or ends with a space")
    return value


_NAME_DOC = "letters, digits, '-' and '_', starting with a letter or digit (NFC)"
VenueCode = Annotated[str, Field(min_length=1, max_length=NAME_MAX, description=_NAME_DOC),
                      AfterValidator(check_venue_code)]
DeviceId = Annotated[str, Field(min_length=1, max_length=NAME_MAX,
                                description="free text without control or invisible characters"),
                     AfterValidator(check_device_id)]


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_text(pattern: re.Pattern, example: str) -> Any:
    """A BeforeValidator: times and days arrive as ISO 8601 text, never as a number
    (pydantic would read `0` as 1970-01-01 and `1e10` as a time in 2286)."""
    def check(value: Any) -> Any:
        if isinstance(value, (date, datetime)):
            return value
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"expected ISO 8601 text such as {example}")
        return value
    return BeforeValidator(check)


IsoDateTime = Annotated[AwareDatetime, _iso_text(_ISO_DATETIME, "2026-03-02T08:15:00+07:00")]
IsoDate = Annotated[date, _iso_text(_ISO_DATE, "2026-03-02")]


def time_window(now: datetime) -> tuple[datetime, datetime]:
    """The times the collector takes: from MIN_TIME to MAX_AHEAD after `now`."""
    return MIN_TIME, now + MAX_AHEAD


def _error(loc: tuple[Any, ...], msg: str, value: Any) -> dict[str, Any]:
    return {"type": "value_error", "loc": loc, "msg": msg, "input": str(value)}


def _outside(value: datetime, now: datetime) -> str | None:
    lo, hi = time_window(now)
    # Aware datetimes compare without conversion, so even 0001-01-01T00:00:00+14:00
    # (before datetime.min in UTC) is compared, never converted into an OverflowError.
    if value < lo or value > hi:
        return (f"time {value.isoformat()} is outside the window the collector takes "
                f"({lo.isoformat()} to {hi.isoformat()})")
    return None


def check_time(loc: tuple[Any, ...], value: datetime | None, now: datetime) -> None:
    """Raise a 422 (FastAPI's shape) when `value` is outside time_window(now)."""
    if value is not None and (msg := _outside(value, now)):
        raise RequestValidationError([_error(loc, msg, value.isoformat())])


def check_entry_times(entries: Iterable[Any], now: datetime) -> None:
    """One 422 naming every entry whose `scanned_at` is outside the window, at
    `["body", "entries", i, "scanned_at"]`, so the kiosk keeps exactly those."""
    errors = [_error(("body", "entries", i, "scanned_at"), msg, e.scanned_at.isoformat())
              for i, e in enumerate(entries) if (msg := _outside(e.scanned_at, now))]
    if errors:
        raise RequestValidationError(errors)
