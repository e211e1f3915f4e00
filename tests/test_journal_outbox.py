"""The outbox without an index (SD wear, issue 21): the rows from a low-water mark up, kept
right through uploads, retention, a requeue and a second process sharing the file.

The promise a guard relies on: every committed entry leaves for the collector once, and
none is forgotten, whatever order recording, acknowledging and purging happen in."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.journal import Journal
from kiosk.model import Outcome, Reason, Scan, Verdict

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
PASS = Verdict(Outcome.PASS, Reason.OK, "dcc", "Trần T*** B")


def rec(j: Journal, i: int, at: datetime) -> str:
    return j.record(Scan(f"code {i}", at=at), PASS, venue="V1", device="D1").id


def test_entries_after_a_purge_of_the_newest_rows_still_leave(journal_path):
    """Retention can delete the newest rows (all uploaded, all old): SQLite then gives
    their seqs out again, below the mark. The next entries must still be in the outbox."""
    with Journal(journal_path) as j:
        ids = [rec(j, i, T0 + timedelta(seconds=i)) for i in range(5)]
        assert j.mark_sent(ids, now=T0) == 5 and j.pending() == []
        assert j.purge(now=T0 + timedelta(days=30), retention_days=21) == 5
        later = rec(j, 99, T0 + timedelta(days=30))
        assert [e.id for e in j.pending()] == [later] and j.pending_count() == 1


def test_a_second_process_sees_what_the_first_uploaded(journal_path):
    """The run loop and `kiosk sync` are two processes on one file: the mark is in it."""
    with Journal(journal_path) as run_loop, Journal(journal_path) as sync:
        ids = [rec(run_loop, i, T0 + timedelta(seconds=i)) for i in range(4)]
        assert sync.mark_sent(ids[:3], now=T0) == 3
        assert run_loop.pending_count() == 1 and [e.id for e in run_loop.pending()] == ids[3:]
        newer = rec(run_loop, 10, T0 + timedelta(seconds=10))
        assert [e.id for e in sync.pending()] == [ids[3], newer]


def test_requeue_puts_every_entry_back(journal_path):
    """The collector lost what it had acknowledged: everything still here goes again."""
    with Journal(journal_path) as j:
        ids = [rec(j, i, T0 + timedelta(seconds=i)) for i in range(3)]
        j.mark_sent(ids, now=T0)
        assert j.requeue() == 3
        assert [e.id for e in j.pending()] == ids


def test_an_entry_is_found_by_its_id_with_no_id_index(journal_path):
    with Journal(journal_path) as j:
        new = rec(j, 1, T0)
        old_style = j.record(Scan("v4", at=T0, id=str(uuid.uuid4())), PASS, venue="V1", device="D1").id
        assert j.get(new).id == new and j.get(old_style).id == old_style  # UUIDv7, then UUIDv4
        assert j.get(str(uuid.uuid4())) is None and j.get("not an id") is None
        again = j.record(Scan("other text", at=T0, id=new), PASS, venue="V1", device="D1")
        assert not again.logged and again.id == new  # the same scan recorded twice: once
        assert j.counts()["entries"] == 2


STEPS = st.lists(st.one_of(
    st.tuples(st.just("record"), st.integers(1, 4)),
    st.tuples(st.just("ack"), st.lists(st.integers(0, 60), max_size=6)),
    st.tuples(st.just("purge"), st.integers(0, 3)),
    st.tuples(st.just("requeue"), st.just(0)),
    st.tuples(st.just("reopen"), st.just(0)),
), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_the_outbox_is_exactly_the_committed_entries_not_yet_acknowledged(tmp_path_factory, steps):
    path = tmp_path_factory.mktemp("outbox") / "journal.db"
    j = Journal(path, repeat_window_s=0)
    model: dict[str, dict] = {}  # id -> {"day": int, "sent": bool}, in recording order
    day = 0
    n = 0
    try:
        for op, arg in steps:
            if op == "record":
                for _ in range(arg):
                    n += 1
                    model[rec(j, n, T0 + timedelta(days=day, seconds=n))] = {"day": day, "sent": False}
                day += 1
            elif op == "ack":  # acknowledge some waiting entries (and some already sent)
                ids = list(model)
                chosen = sorted({ids[i % len(ids)] for i in arg}) if ids else []
                changed = j.mark_sent(chosen, now=T0)
                assert changed == sum(not model[i]["sent"] for i in chosen)
                for i in chosen:
                    model[i]["sent"] = True
            elif op == "purge":  # forget uploaded entries older than `arg` days before today
                cut = day - arg
                j.purge(now=T0 + timedelta(days=cut), retention_days=0)
                model = {i: m for i, m in model.items()
                         if not (m["sent"] and T0 + timedelta(days=m["day"]) < T0 + timedelta(days=cut))}
            elif op == "requeue":
                j.requeue()
                for m in model.values():
                    m["sent"] = False
            else:
                j.close()
                j = Journal(path, repeat_window_s=0)
            waiting = [i for i, m in model.items() if not m["sent"]]
            assert [e.id for e in j.pending(limit=1000)] == waiting
            assert j.pending_count() == len(waiting)
    finally:
        j.close()
