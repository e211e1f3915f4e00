"""Which signed documents a kiosk holds are past their valid-until time, and which
schemes can therefore no longer pass on their own (issue 23 item 7).

A document past its valid-until is still the best the kiosk has, so for a grace
period (`trust.grace_hours`, default 24 h) it stays in use with only the banner. After
that, a pass that relied on it goes to the guard instead: `review` with reason
`data_expired`, the detail naming the documents. A fail stays a fail (a bad signature
is bad whatever the age of the list), and schemes that do not read a document are not
touched by its age:

- `dcc`: the trust list (signer keys), the revocation list and the deny list;
- `hd1`: the trust list (issuer keys) and the deny list;
- `cccd`, `opaque`: the deny list (both go to review under the venue rules anyway).

Documents come from `kiosk sync` (journal state `sync.documents`, each with its signed
`exp`); a trust list imported by hand has no valid-until and lapses when it is older
than `trust.max_age_hours` plus the grace period. A document the kiosk never held
cannot lapse (there is no age to judge; an empty trust list fails signed codes with
`unknown_key` already).

    >>> from datetime import datetime, timedelta, timezone
    >>> now = datetime(2026, 12, 6, tzinfo=timezone.utc)
    >>> held = {"revocations": {"exp": "2026-12-04T00:00:00Z"}, "denylist": {"exp": "2026-12-10T00:00:00Z"}}
    >>> sorted(lapsed_documents(held, now=now, grace=timedelta(hours=24)))
    ['revocations']
    >>> blocking("dcc", {"revocations"}), blocking("hd1", {"revocations"})
    (['revocations'], [])
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any, Collection, Mapping

__all__ = ["HELD_KEY", "DEPENDS", "DEFAULT_GRACE", "lapsed_documents", "blocking", "Freshness"]

#: Journal state: {name: {"version", "iat", "exp"}} of each signed document held
#: (written by kiosk.sync.fetcher).
HELD_KEY = "sync.documents"
#: The documents each scheme's pass relies on.
DEPENDS: dict[str, tuple[str, ...]] = {
    "dcc": ("trust", "revocations", "denylist"),
    "hd1": ("trust", "denylist"),
    "cccd": ("denylist",),
    "opaque": ("denylist",),
}
#: How long past its valid-until a document still lets codes pass (config trust.grace_hours).
DEFAULT_GRACE = timedelta(hours=24)
#: The journal is read at most this often by the run loop's Freshness (a sync lands
#: within this of being written; a scan costs no extra query meanwhile).
RECHECK_S = 5.0


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def lapsed_documents(held: Mapping[str, Any], *, now: datetime, grace: timedelta,
                     trust_imported_at: datetime | None = None,
                     trust_max_age: timedelta | None = None) -> frozenset[str]:
    """Names of the documents past valid-until + `grace` at `now`. `held` is the
    journal's `sync.documents`; `trust_imported_at`/`trust_max_age` judge a trust list
    imported by hand (no signed valid-until)."""
    out = set()
    for name, meta in held.items():
        until = _parse(meta.get("exp")) if isinstance(meta, Mapping) else None
        if until is not None and now >= until + grace:
            out.add(name)
    if "trust" not in held and trust_imported_at is not None and trust_max_age is not None:
        if now >= trust_imported_at + trust_max_age + grace:
            out.add("trust")
    return frozenset(out)


def blocking(scheme: str, lapsed: Collection[str]) -> list[str]:
    """The lapsed documents a pass of `scheme` relies on (empty: it may pass)."""
    return [name for name in DEPENDS.get(scheme, ()) if name in lapsed]


class Freshness:
    """The run loop's view: `lapsed(now)` from the journal, read at most every
    RECHECK_S seconds (monotonic), so each scan costs a set lookup."""

    def __init__(self, journal: Any, *, grace: timedelta = DEFAULT_GRACE,
                 trust_max_age: timedelta | None = None) -> None:
        self.journal = journal
        self.grace = grace
        self.trust_max_age = trust_max_age
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._held: dict[str, Any] = {}
        self._trust_imported_at: datetime | None = None

    def lapsed(self, now: datetime) -> frozenset[str]:
        mono = time.monotonic()
        with self._lock:
            if mono - self._read_at >= RECHECK_S:
                from kiosk.checks.trust import TrustStore

                self._held = dict(self.journal.get_json(HELD_KEY) or {})
                self._trust_imported_at = TrustStore(self.journal).imported_at()
                self._read_at = mono
            held, imported = self._held, self._trust_imported_at
        return lapsed_documents(held, now=now, grace=self.grace, trust_imported_at=imported,
                                trust_max_age=self.trust_max_age)

    def refresh(self) -> None:
        """Read the journal again at the next scan (after a sync in this process)."""
        with self._lock:
            self._read_at = float("-inf")
