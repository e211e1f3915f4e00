"""The guard button's action: admit the last person who failed or was sent to review.

The guard looks at the person's papers, then presses the button; the journal gets an
`override` pass that points at the original entry (the collector's daily report counts
overrides). Only a recent entry can be admitted, so a press long after the person left
does nothing.

    >>> from datetime import timezone
    >>> from kiosk.model import Outcome, Reason, Scan, Verdict
    >>> at = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
    >>> with Journal.memory() as journal:
    ...     failed = journal.record(Scan("HC1:...", at=at), Verdict(Outcome.FAIL, Reason.EXPIRED, "dcc"),
    ...                             venue="V1", device="D1")
    ...     entry = admit_last(journal, now=at + timedelta(seconds=30))
    ...     late = admit_last(journal, now=at + timedelta(seconds=GUARD_WINDOW_S + 1))
    >>> entry.reason, entry.override_of == failed.id, late
    ('override', True, None)
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from kiosk.journal import Entry, Journal

__all__ = ["GUARD_WINDOW_S", "admit_last"]

log = logging.getLogger(__name__)

#: How long after a fail or review the guard button may still admit that person.
GUARD_WINDOW_S = 120.0


def admit_last(journal: Journal, *, now: datetime, within_s: float = GUARD_WINDOW_S) -> Entry | None:
    """Turn the newest failed or reviewed entry of the last `within_s` seconds, not yet
    overridden, into an `override` entry, and return that. None when there is none."""
    original = journal.last(outcomes=("fail", "review"), since=now - timedelta(seconds=within_s))
    if original is None:
        log.info("guard button: no failed or reviewed entry in the last %.0fs", within_s)
        return None
    entry = journal.override(original.id, now=now)
    log.info("guard admitted entry %s (%s/%s) as %s", original.id, original.outcome, original.reason, entry.id)
    return entry
