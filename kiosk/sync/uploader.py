"""Upload the journal's outbox to the collector, exactly once.

Entries leave in batches (`sync.batch_size`, or fewer once the oldest waiting entry is
`sync.batch_max_age_s` old), as gzip JSON with the device token. They are marked sent
only when the collector acknowledges the batch; the collector dedupes on each entry's
UUID, so a batch resent after a lost acknowledgement adds nothing there. Failures are
retried with full-jitter exponential backoff, honouring `Retry-After`; every wait is an
`Event.wait`, so shutdown (SIGTERM) interrupts it at once.

    >>> import random
    >>> round(next_backoff(3, None, random.Random(7)), 3)   # uniform in [0, 1 s * 2**3)
    2.591
    >>> next_backoff(0, 30.0, random.Random(7)) >= 30.0     # Retry-After wins when longer
    True
"""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import requests

from kiosk.backoff import backoff_delay
from kiosk.errors import SyncError, short_error
from kiosk.model import iso_utc, utcnow
from kiosk.sync import state

__all__ = [
    "Uploader", "DrainResult", "next_backoff", "parse_retry_after",
    "RETRYABLE_STATUS", "BASE_BACKOFF_S", "MAX_BACKOFF_S", "MAX_RETRY_AFTER_S", "MAX_ATTEMPTS",
    "RetryableError", "RejectedError",
]

log = logging.getLogger("kiosk.sync")

#: Statuses worth retrying: the request may succeed later unchanged.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Backoff before the first retry is drawn from [0, BASE_BACKOFF_S); it doubles per attempt...
BASE_BACKOFF_S = 1.0
#: ...up to this ceiling, so a long outage is probed every few minutes, not hammered.
MAX_BACKOFF_S = 300.0
#: A Retry-After longer than this is clamped: a bad header must not silence a kiosk for days.
MAX_RETRY_AFTER_S = 3600.0
#: Attempts per batch within one upload round; the next round starts again from 1.
MAX_ATTEMPTS = 8
#: gzip level: 6 is zlib's default, a good ratio at a cost a Pi barely notices.
GZIP_LEVEL = 6
BATCHES_PATH = "/v1/batches"


class RetryableError(SyncError):
    """A failure that may go away: network down, timeout, 5xx, 429."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RejectedError(SyncError):
    """The collector refused the batch itself (401, 403, 4xx): retrying will not help."""

    def __init__(self, message: str, *, status: int, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail  # the collector's JSON "detail", when it sent one


def next_backoff(attempt: int, retry_after: float | None, rng: random.Random, *,
                 base: float = BASE_BACKOFF_S, cap: float = MAX_BACKOFF_S) -> float:
    """Seconds to wait before retry number `attempt + 1` (attempt counts from 0).

    Full jitter (uniform in [0, min(cap, base * 2**attempt))) spreads a fleet of kiosks
    that lost the network together; a `Retry-After` from the server is a floor.
    """
    wait = backoff_delay(attempt, base=base, cap=cap, rng=rng)
    if retry_after is not None:
        wait = max(wait, min(max(retry_after, 0.0), MAX_RETRY_AFTER_S))
    return wait


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP-date; None if absent or bad.

    >>> parse_retry_after("120", datetime(2026, 1, 1, tzinfo=timezone.utc))
    120.0
    >>> parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", datetime(2026, 1, 1, tzinfo=timezone.utc))
    30.0
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "¹" or "٣": isdigit() alone accepts those
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class DrainResult:
    """What one upload round did."""

    sent: int            # entries acknowledged (new at the collector or already there)
    accepted: int        # of which new at the collector
    duplicates: int      # of which the collector already had (a lost acknowledgement)
    batches: int
    left: int            # entries still waiting
    attempts: int        # HTTP requests made
    stopped: bool        # shutdown interrupted the round
    error: str | None    # why the round ended early, if it did

    @property
    def complete(self) -> bool:
        return self.left == 0 and self.error is None


class Uploader:
    """Sends the outbox. One per process; a context manager (closes its HTTP session).

    Keyword arguments with backoff and attempt limits exist for tests and benchmarks;
    the defaults are the named constants above.
    """

    def __init__(self, journal: Any, *, url: str, device_id: str, token: str,
                 batch_size: int = 500, batch_max_age_s: float = 10.0, timeout_s: float = 10.0,
                 session: requests.Session | None = None, stop: threading.Event | None = None,
                 base_backoff_s: float = BASE_BACKOFF_S, max_backoff_s: float = MAX_BACKOFF_S,
                 max_attempts: int = MAX_ATTEMPTS, rng: random.Random | None = None,
                 clock: Callable[[], datetime] = utcnow, ca_file: str = "") -> None:
        self.journal = journal
        self.url = url.rstrip("/") + BATCHES_PATH
        self.verify = ca_file or None  # the pinned collector CA (sync.ca_file), per request
        self.device_id = device_id
        self.token = token
        self.batch_size = batch_size
        self.batch_max_age_s = batch_max_age_s
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self._own_session = session is None
        self.stop = stop or threading.Event()
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_attempts = max_attempts
        self.rng = rng or random.Random()
        self.clock = clock
        #: Called with (entries sent, entries sent + still pending) after each batch
        #: (`kiosk sync --once` shows it on a terminal).
        self.on_progress: Callable[[int, int], None] | None = None
        #: Every backoff actually waited, in seconds (for the summary and for tests).
        self.waits: list[float] = []

    @classmethod
    def from_config(cls, cfg: Any, journal: Any, *, token: str, **kwargs: Any) -> "Uploader":
        s = cfg.sync
        return cls(journal, url=s.collector_url, device_id=cfg.device.id, token=token,
                   batch_size=s.batch_size, batch_max_age_s=s.batch_max_age_s,
                   timeout_s=s.timeout_s, ca_file=s.ca_file, **kwargs)

    def __enter__(self) -> "Uploader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    # --- one request ----------------------------------------------------------------
    def post(self, body: bytes, *, batch_id: str, count: int) -> dict[str, Any]:
        """POST one gzip batch; return the acknowledgement or raise Retryable/RejectedError."""
        try:
            resp = self.session.post(self.url, data=body, timeout=self.timeout_s, verify=self.verify, headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                "Content-Encoding": "gzip", "Accept": "application/json"})
        except requests.Timeout as exc:
            raise RetryableError(f"collector did not answer within {self.timeout_s:g} s") from exc
        except requests.RequestException as exc:
            # Connection refused or cut, even mid-response: the batch may or may not have
            # been committed. Resending is safe because the collector dedupes on entry ids.
            raise RetryableError(f"cannot reach the collector: {short_error(exc, limit=200)}") from exc
        if resp.status_code in RETRYABLE_STATUS:
            raise RetryableError(f"collector answered {resp.status_code}",
                                 retry_after=parse_retry_after(resp.headers.get("Retry-After"), self.clock()))
        if resp.status_code != 200:
            raise RejectedError(f"collector refused the batch ({resp.status_code}): {_detail(resp)}",
                                status=resp.status_code, detail=_json_detail(resp))
        try:
            ack = resp.json()
            ok = (ack.get("batch_id") == batch_id
                  and int(ack["accepted"]) + int(ack["duplicates"]) == count)
        except (ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            # Not a real acknowledgement (a proxy's page, a garbled body): keep the entries.
            raise RetryableError("collector's answer is not an acknowledgement of this batch")
        return ack

    def encode(self, entries: Sequence[Any], batch_id: str) -> bytes:
        doc = {"device_id": self.device_id, "batch_id": batch_id,
               "entries": [e.as_upload() for e in entries]}
        raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)

    # --- rounds ---------------------------------------------------------------------
    def due(self, now: datetime) -> bool:
        """A full batch is waiting, or the oldest waiting entry is old enough to go alone."""
        if self.journal.pending_count() >= self.batch_size:
            return True
        oldest = self.journal.oldest_pending_at()
        return oldest is not None and (now - oldest).total_seconds() >= self.batch_max_age_s

    def drain(self, *, force: bool = True) -> DrainResult:
        """Upload until the outbox is empty (`force`) or nothing is due, a batch fails
        after its retries, the collector rejects a batch, or `stop` is set. Entries the
        collector names as invalid (422) stay in the journal and the others go on."""
        sent = accepted = duplicates = batches = attempts = 0
        error: str | None = None
        limit = self.batch_size
        refused: dict[str, str] = {}  # entry id -> why the collector refused it (kept pending)
        while not self.stop.is_set():
            if not force and not self.due(self.clock()):
                break
            batch = [e for e in self.journal.pending(limit + len(refused)) if e.id not in refused][:limit]
            if not batch:
                break
            batch_id = str(uuid.uuid4())
            body = self.encode(batch, batch_id)
            try:
                ack, tries = self._send(body, batch_id, len(batch))
            except RejectedError as exc:
                attempts += getattr(exc, "tries", 1)
                if exc.status == 413 and limit > 1:
                    limit = max(1, len(batch) // 2)  # too big for this collector: halve and go on
                    log.warning("batch of %d too large for the collector; trying %d", len(batch), limit)
                    continue
                # 422: entries the collector cannot read; 403: entries this device may not
                # upload (another venue, before its enrolment, far in the future).
                bad = _refused_entries(exc, batch) if exc.status in (403, 422) else {}
                if bad:
                    # Entries the collector cannot take (a corrupt row, a newer format): keep
                    # them in the outbox, say which, and let the rest of the log through.
                    refused.update(bad)
                    for entry_id, why in bad.items():
                        log.error("collector refused entry %s: %s (kept in the journal)", entry_id, why)
                    continue
                error = str(exc)
                break
            except SyncError as exc:
                attempts += getattr(exc, "tries", 0)
                error = str(exc)
                break
            attempts += tries
            if ack is None:  # stopped while waiting to retry
                break
            now = self.clock()
            self.journal.mark_sent([e.id for e in batch], now=now)
            sent += len(batch)
            accepted += int(ack["accepted"])
            duplicates += int(ack["duplicates"])
            batches += 1
            if self.on_progress is not None:
                self.on_progress(sent, sent + self.journal.pending_count())
            if isinstance(ack.get("new_token"), str) and ack["new_token"]:
                self.adopt_token(ack["new_token"])
            state.record(self.journal, now=now, ok=True)
            log.info("batch %s: %d new, %d already there", batch_id, ack["accepted"], ack["duplicates"])
        left = self.journal.pending_count()
        if refused and error is None:
            first, why = next(iter(refused.items()))
            error = (f"collector refused {len(refused)} entries, kept in the journal "
                     f"(first: {first}: {why})")
            state.record(self.journal, now=self.clock(), ok=False, error=error, pending=left, refused=len(refused))
        if batches == 0 and error is None and not self.stop.is_set():
            # Nothing was due: still refresh the pending count and the round's time for the
            # screen (entries waiting for their batch are not "sync stopped"), keeping any
            # failure streak as it is. Nothing is written while the outbox stays empty.
            stored = self.journal.get_json(state.STATUS_KEY) or {}
            if left or stored.get("pending") != left or not stored.get("last_attempt"):
                stored.update({"pending": left, "last_attempt": iso_utc(self.clock())})
                stored.setdefault("consecutive_failures", 0)
                self.journal.set_json(state.STATUS_KEY, stored, now=self.clock())
        return DrainResult(sent=sent, accepted=accepted, duplicates=duplicates, batches=batches,
                           left=left, attempts=attempts, stopped=self.stop.is_set(), error=error)

    def adopt_token(self, token: str) -> None:
        """The collector rotated this device's token (`collector device rotate`): keep the
        new one in the journal, where `resolve_token` finds it, and use it from now on."""
        from kiosk.sync.client import store_token

        store_token(self.journal, token, replaces=self.token)
        self.token = token
        log.warning("the collector rotated this device's token; the new one is in the journal")

    def _send(self, body: bytes, batch_id: str, count: int) -> tuple[dict[str, Any] | None, int]:
        """Send one batch with retries. Returns (ack, tries); ack None if stopped meanwhile."""
        attempt = 0
        while True:
            if self.stop.is_set():
                return None, attempt
            try:
                return self.post(body, batch_id=batch_id, count=count), attempt + 1
            except RejectedError as exc:
                exc.tries = attempt + 1  # type: ignore[attr-defined]
                state.record(self.journal, now=self.clock(), ok=False, error=str(exc),
                             refused=count if exc.status == 403 else 0)
                log.error("%s", exc)
                raise
            except RetryableError as exc:
                attempt += 1
                state.record(self.journal, now=self.clock(), ok=False, error=str(exc))
                if attempt >= self.max_attempts:
                    err = SyncError(f"gave up on this round after {attempt} attempts: {exc}")
                    err.tries = attempt  # type: ignore[attr-defined]
                    log.warning("%s", err)
                    raise err from exc
                wait = next_backoff(attempt - 1, exc.retry_after, self.rng,
                                    base=self.base_backoff_s, cap=self.max_backoff_s)
                log.warning("%s; retry %d in %.1f s", exc, attempt, wait)
                self.waits.append(wait)
                if self.stop.wait(wait):
                    return None, attempt


def _json_detail(resp: requests.Response) -> Any:
    try:
        return resp.json().get("detail")
    except (ValueError, AttributeError):
        return None


def _refused_entries(exc: RejectedError, batch: Sequence[Any]) -> dict[str, str]:
    """Entries a 422 names (FastAPI's `loc`: ["body", "entries", index, field])."""
    bad: dict[str, str] = {}
    if not isinstance(exc.detail, list):
        return bad
    for item in exc.detail:
        loc = item.get("loc") if isinstance(item, dict) else None
        if (isinstance(loc, list) and len(loc) >= 3 and loc[:2] == ["body", "entries"]
                and isinstance(loc[2], int) and 0 <= loc[2] < len(batch)):
            field = ".".join(str(p) for p in loc[3:]) or "entry"
            bad.setdefault(batch[loc[2]].id, f"{field}: {item.get('msg', 'invalid')}")
    return bad


def _detail(resp: requests.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if detail is None:
        detail = resp.text[:200]
    return detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)[:300]
