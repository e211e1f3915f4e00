"""Pure parts of the uploader: backoff, Retry-After, the offline rule, deny list parsing."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from kiosk.errors import TrustError
from kiosk.journal import Journal
from kiosk.sync import status
from kiosk.sync.fetcher import parse_denylist
from kiosk.sync.state import OFFLINE_GRACE, STALE_AFTER, STATUS_KEY, is_offline, record
from kiosk.sync.uploader import (BASE_BACKOFF_S, MAX_BACKOFF_S, MAX_RETRY_AFTER_S, RETRYABLE_STATUS,
                                 next_backoff, parse_retry_after)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def test_backoff_with_a_fixed_seed_is_reproducible_and_grows_up_to_the_cap():
    waits = [next_backoff(a, None, random.Random(42)) for a in range(12)]
    assert waits == [next_backoff(a, None, random.Random(42)) for a in range(12)]
    # The same draw scaled by a doubling ceiling, until the ceiling hits MAX_BACKOFF_S.
    u = random.Random(42).uniform(0.0, 1.0)
    for attempt, wait in enumerate(waits):
        assert wait == pytest.approx(u * min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** attempt))
    assert waits[-1] <= MAX_BACKOFF_S


def test_full_jitter_spreads_a_fleet_of_kiosks():
    rng = random.Random(1)
    waits = [next_backoff(4, None, rng) for _ in range(200)]
    assert min(waits) < 4 < max(waits) < 16  # uniform over [0, 16): neither bunched nor fixed


def test_retry_after_is_a_floor_and_is_clamped():
    rng = random.Random(3)
    assert next_backoff(0, 30.0, rng) == 30.0
    assert next_backoff(0, 10 * 86400.0, rng) == MAX_RETRY_AFTER_S
    assert next_backoff(9, 0.0, random.Random(3)) == next_backoff(9, None, random.Random(3))


@given(attempt=st.integers(0, 10_000), retry_after=st.none() | st.floats(-1e9, 1e9),
       seed=st.integers(0, 2 ** 32))
def test_backoff_is_always_a_sane_wait(attempt, retry_after, seed):
    wait = next_backoff(attempt, retry_after, random.Random(seed))
    assert 0.0 <= wait <= max(MAX_BACKOFF_S, MAX_RETRY_AFTER_S)


def test_retry_after_in_seconds_and_as_an_http_date():
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after("Mon, 02 Mar 2026 08:01:00 GMT", NOW) == 60.0
    assert parse_retry_after("Mon, 02 Mar 2026 07:00:00 GMT", NOW) == 0.0  # in the past: now
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


@given(st.text(max_size=60))
def test_any_retry_after_header_parses_or_is_ignored(text):
    value = parse_retry_after(text, NOW)
    assert value is None or value >= 0.0


def test_retryable_statuses_are_the_transient_ones():
    assert {429, 503, 500, 408} <= RETRYABLE_STATUS
    assert not {400, 401, 403, 413, 422} & RETRYABLE_STATUS


@pytest.mark.parametrize("stored, offline", [
    (None, False),                                                            # never ran
    ({"consecutive_failures": 0, "pending": 0, "last_success": "2026-03-02T07:59:00Z",
      "last_attempt": "2026-03-02T07:59:00Z"}, False),
    ({"consecutive_failures": 1, "pending": 3, "last_success": "2026-03-02T07:59:30Z",
      "last_attempt": "2026-03-02T07:59:50Z"}, False),                       # one blip
    ({"consecutive_failures": 4, "pending": 3, "last_success": "2026-03-02T07:50:00Z",
      "last_attempt": "2026-03-02T07:59:50Z"}, True),                        # failing for 10 min
    ({"consecutive_failures": 2, "pending": 3, "last_success": None,
      "last_attempt": "2026-03-02T07:59:50Z"}, True),                        # never reached it
    ({"consecutive_failures": 0, "pending": 9, "last_success": "2026-03-02T07:00:00Z",
      "last_attempt": "2026-03-02T07:00:00Z"}, True),                        # sync not running
    ({"consecutive_failures": 0, "pending": 0, "last_success": "2026-03-02T01:00:00Z",
      "last_attempt": "2026-03-02T01:00:00Z"}, False),                       # idle, nothing to send
])
def test_offline_is_decided_from_the_stored_status_and_now(stored, offline):
    assert is_offline(stored, NOW) is offline


def test_status_round_trips_through_the_journal():
    with Journal.memory() as j:
        assert status(j, NOW).offline is False
        record(j, now=NOW - OFFLINE_GRACE * 2, ok=True, pending=0)
        record(j, now=NOW, ok=False, error="cannot reach the collector", pending=5)
        s = status(j, NOW)
        assert s.offline and s.consecutive_failures == 1 and s.pending == 5
        assert s.last_error == "cannot reach the collector"
        assert s.last_success == NOW - OFFLINE_GRACE * 2
        assert set(j.get_json(STATUS_KEY)) == {"last_success", "last_attempt", "pending",
                                              "last_error", "consecutive_failures", "refused"}
        record(j, now=NOW + timedelta(seconds=1), ok=True, pending=0)
        assert status(j, NOW + STALE_AFTER).offline is False


def test_deny_list_accepts_hashes_or_objects_and_rejects_the_rest():
    assert parse_denylist(b'{"entries": ["' + b"a" * 64 + b'"]}') == [("a" * 64, "")]
    for bad in (b"{", b'{"x": 1}', b'[1]', b'["not hex"]', b"\xff"):
        with pytest.raises(TrustError):
            parse_denylist(bad)


@given(st.binary(max_size=200))
def test_any_deny_list_body_is_parsed_or_refused_with_a_trust_error(body):
    try:
        parse_denylist(body)
    except TrustError:
        pass  # refused with a clear message: the expected outcome for junk


def test_the_sync_loop_survives_a_failing_round_and_stops_on_request():
    import threading

    from kiosk.errors import JournalError
    from kiosk.sync.service import run_forever

    stop = threading.Event()
    rounds = []

    class FlakyUploader:
        def drain(self, *, force):
            rounds.append(force)
            if len(rounds) == 1:
                raise JournalError("database is locked")
            stop.set()  # the second round ran: the loop outlived the failure
            from kiosk.sync.uploader import DrainResult
            return DrainResult(0, 0, 0, 0, 0, 0, True, None)

    run_forever(FlakyUploader(), None, stop=stop, interval_s=0.01, trust_refresh_s=60)
    assert rounds == [False, False]
