"""Fault tests: the real uploader against the real collector (uvicorn on loopback) through
a fault-injecting proxy, on SQLite and on PostgreSQL. After recovery every entry is at
the collector exactly once: same count, same ids, nothing left in the outbox."""

from __future__ import annotations

import random
import threading

import pytest

from collector_helpers import DEVICE, ENGINES, RunningCollector, fill_journal, open_store
from faultproxy import FaultProxy
from kiosk.journal import Journal
from kiosk.sync import Uploader, status
from kiosk.sync.state import STATUS_KEY

N = 120
BATCH = 50
# Short backoffs so the fault tests stay quick; the policy itself is tested in test_sync_backoff.
FAST = {"base_backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 2.0}


@pytest.fixture(params=ENGINES)
def collector(request, tmp_path):
    store = open_store(request.param, tmp_path)
    with RunningCollector(store) as running:
        yield running
    store.close()


@pytest.fixture
def proxy(collector):
    with FaultProxy(collector.port) as p:
        yield p


@pytest.fixture
def journal(journal_path):
    with Journal(journal_path) as j:
        yield j


def _uploader(journal, url, token, **kw):
    args = dict(FAST, batch_size=BATCH, rng=random.Random(5))
    args.update(kw)
    return Uploader(journal, url=url, device_id=DEVICE, token=token, **args)


def _assert_exactly_once(collector, journal, ids):
    assert journal.pending_count() == 0
    assert collector.store.count_entries() == len(ids)
    assert sorted(collector.store.entry_ids()) == sorted(ids)


@pytest.mark.parametrize("faults", [
    ["down", "down", "down"],                 # collector unreachable for a while
    ["500", "502", "503"],                    # collector errors
    ["hang"],                                 # no answer: the client times out
    ["cut", "pass", "cut"],                   # connection cut mid-response (after commit)
    ["drop_ack", "pass", "drop_ack"],         # acknowledgement lost after the commit
    ["200", "pass", "200"],                   # a 200 that is not an acknowledgement (a captive portal)
    ["drop_ack", "500", "down", "cut", "429:0", "hang", "drop_ack"],
], ids=["down", "5xx", "timeout", "cut", "lost_ack", "bogus_200", "everything"])
def test_after_faults_every_entry_is_at_the_collector_exactly_once(collector, proxy, journal, faults):
    ids = fill_journal(journal, N)
    proxy.queue(*faults)
    with _uploader(journal, proxy.url, collector.token(), max_attempts=20) as up:
        result = up.drain()
    assert result.complete and result.sent == N
    _assert_exactly_once(collector, journal, ids)
    # A lost acknowledgement shows up as duplicates on the resend, never as new rows.
    assert result.accepted + result.duplicates == N
    assert result.accepted <= N
    assert status(journal, up.clock()).offline is False


def test_a_lost_acknowledgement_leaves_the_batch_pending_and_the_resend_adds_nothing(collector, proxy, journal):
    ids = fill_journal(journal, 30)
    token = collector.token()
    proxy.queue("drop_ack")
    with _uploader(journal, proxy.url, token, max_attempts=1) as up:
        first = up.drain()
    assert first.sent == 0 and first.error
    assert collector.store.count_entries() == 30   # the collector did commit...
    assert journal.pending_count() == 30           # ...but the kiosk never heard so
    with _uploader(journal, proxy.url, token) as up:
        second = up.drain()
    assert (second.accepted, second.duplicates) == (0, 30)
    _assert_exactly_once(collector, journal, ids)


def test_retry_after_is_honoured(collector, proxy, journal):
    ids = fill_journal(journal, 10)
    proxy.queue("429:1", "503:2")
    with _uploader(journal, proxy.url, collector.token()) as up:
        result = up.drain()
    assert result.complete
    assert up.waits[0] >= 1.0 and up.waits[1] >= 2.0  # the server's wish, not our tiny backoff
    _assert_exactly_once(collector, journal, ids)


def test_a_collector_that_stays_down_leaves_everything_pending_and_shows_offline(collector, journal):
    fill_journal(journal, 10)
    with FaultProxy(collector.port) as p:
        p.default = "down"
        with _uploader(journal, p.url, collector.token(), max_attempts=3) as up:
            result = up.drain()
    assert result.sent == 0 and result.left == 10 and result.attempts == 3
    assert "cannot reach the collector" in result.error
    assert collector.store.count_entries() == 0
    stored = journal.get_json(STATUS_KEY)
    assert stored["consecutive_failures"] == 3 and stored["pending"] == 10
    assert status(journal, up.clock()).offline is True


def test_stop_interrupts_a_backoff_wait(collector, journal):
    fill_journal(journal, 5)
    with FaultProxy(collector.port) as p:
        p.default = "503:3600"  # the collector asks for an hour
        stop = threading.Event()
        up = _uploader(journal, p.url, collector.token(), stop=stop, max_attempts=5)
        results = []
        worker = threading.Thread(target=lambda: results.append(up.drain()))
        worker.start()
        while not up.waits:
            stop.wait(0.02)
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert results[0].stopped and results[0].left == 5
    up.close()


def test_a_bad_token_is_refused_without_retries_and_nothing_is_marked_sent(collector, proxy, journal):
    fill_journal(journal, 5)
    with _uploader(journal, proxy.url, "wrong-token") as up:
        result = up.drain()
    assert result.attempts == 1 and result.left == 5
    assert "401" in result.error
    assert journal.get_json(STATUS_KEY)["last_error"].startswith("collector refused the batch (401)")


def test_another_devices_token_is_refused_with_403(collector, proxy, journal):
    fill_journal(journal, 5)
    other = collector.token("kiosk-2")
    with _uploader(journal, proxy.url, other) as up:
        result = up.drain()
    assert "403" in result.error and result.left == 5
    assert collector.store.count_entries() == 0


def test_a_batch_too_large_for_the_collector_is_split(tmp_path, journal):
    store = open_store("sqlite", tmp_path)
    ids = fill_journal(journal, 60)
    # 60 entries gzip to about 2.5 KB (random UUIDs; no subject hash is uploaded any more)
    with RunningCollector(store, max_body_bytes=1200) as small:
        with _uploader(journal, small.url, small.token(), batch_size=60) as up:
            result = up.drain()
    assert result.complete and result.batches > 1
    assert sorted(store.entry_ids()) == sorted(ids)
    store.close()


def test_partial_batches_wait_for_the_age_limit(collector, journal):
    from datetime import timedelta

    ids = fill_journal(journal, 5)
    oldest = journal.oldest_pending_at()
    young = lambda: oldest + timedelta(seconds=1)   # noqa: E731
    old = lambda: oldest + timedelta(seconds=11)    # noqa: E731
    token = collector.token()
    with _uploader(journal, collector.url, token, batch_max_age_s=10, clock=young) as up:
        assert up.drain(force=False).sent == 0      # 5 < batch size and only 1 s old
    with _uploader(journal, collector.url, token, batch_max_age_s=10, clock=old) as up:
        assert up.drain(force=False).sent == 5
    _assert_exactly_once(collector, journal, ids)


def test_an_entry_the_collector_refuses_stays_in_the_journal_and_the_rest_goes_through(collector, journal):
    ids = fill_journal(journal, 12)
    poison = ids[4]
    # A corrupt row (or one from a newer kiosk the collector does not know yet).
    journal.db.conn.execute("UPDATE entries SET outcome='maybe' WHERE id=?", (poison,))
    with _uploader(journal, collector.url, collector.token(), batch_size=5) as up:
        result = up.drain()
    assert result.sent == 11 and result.left == 1
    assert poison in result.error and "outcome" in result.error
    assert sorted(collector.store.entry_ids()) == sorted(i for i in ids if i != poison)
    assert [e.id for e in journal.pending()] == [poison]
    assert journal.get_json(STATUS_KEY)["last_error"] == result.error


def test_entries_waiting_for_their_batch_do_not_show_offline(collector, journal):
    from datetime import timedelta

    from kiosk.sync.state import STALE_AFTER

    fill_journal(journal, 3)
    now = [journal.oldest_pending_at() + timedelta(seconds=1)]
    later = now[0] + STALE_AFTER * 2
    with _uploader(journal, collector.url, collector.token(), batch_max_age_s=3600,
                   clock=lambda: now[0]) as up:
        assert up.drain(force=False).sent == 0  # not due: 3 < batch size, younger than an hour
        now[0] = later                          # rounds go on; still nothing due
        assert up.drain(force=False).sent == 0
    assert status(journal, later + timedelta(seconds=1)).offline is False
    assert status(journal, later + STALE_AFTER * 2).offline is True  # but a stopped sync does
