"""Entries partitioned by Vietnam-local day on PostgreSQL (a plain table on SQLite): the
partitions an upload needs are made on the way, from any number of processes; a resent
batch still adds nothing; the daily report reads only its day; retention drops whole days."""

from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from collector import partitions
from collector.storage import Store, entries
from collector_helpers import ENGINES, open_store

T0 = datetime(2026, 3, 1, 16, 30, tzinfo=timezone.utc)  # 23:30 in Vietnam on 1 March


def _rows(n: int, start: datetime, step: timedelta, venue: str = "V1") -> list[dict]:
    return [{"id": str(uuid.uuid4()), "scanned_at": start + i * step, "device_id": "kiosk-1", "venue_code": venue,
             "outcome": "pass", "reason": "ok", "scheme": "dcc"} for i in range(n)]


@pytest.fixture(params=ENGINES)
def store(request, tmp_path):
    s = open_store(request.param, tmp_path)
    yield s
    s.close()


def test_an_upload_spanning_local_midnight_lands_in_two_days_and_resending_adds_nothing(store):
    rows = _rows(4, T0, timedelta(minutes=20))  # 23:30, 23:50, 00:10, 00:30 local
    assert store.insert_batch(rows, batch_id="b", now=T0).accepted == 4
    assert store.insert_batch(rows, batch_id="b", now=T0).duplicates == 4
    counts = {d: sum(r["n"] for r in store.day_counts(date.fromisoformat(d))) for d in ("2026-03-01", "2026-03-02")}
    assert counts == {"2026-03-01": 2, "2026-03-02": 2}
    if store.dialect == "postgresql":
        assert partitions.list_partitions(store.engine) == ["entries_p20260301", "entries_p20260302"]
    else:
        assert partitions.list_partitions(store.engine) == []


def test_retention_forgets_whole_days(store):
    for day in range(5):
        store.insert_batch(_rows(3, T0 + timedelta(days=day, hours=2), timedelta(minutes=1)), batch_id=f"b{day}", now=T0)
    dropped = partitions.drop_days_before(store.engine, entries, date(2026, 3, 4))
    assert dropped == (2 if store.dialect == "postgresql" else 6)
    assert store.count_entries() == 9
    assert store.day_counts(date(2026, 3, 2)) == [] and store.day_counts(date(2026, 3, 4))


def test_the_daily_report_reads_one_partition():
    store = open_store("postgresql", None)
    try:
        for day in range(3):
            store.insert_batch(_rows(2, T0 + timedelta(days=day, hours=2), timedelta(minutes=1)), batch_id=f"b{day}", now=T0)
        c = entries.c
        q = sa.select(sa.func.count()).where(c.day_local == "2026-03-03",
                                             partitions.day_bounds_clause(c.scanned_at, date(2026, 3, 3)))
        with store.engine.connect() as conn:
            plan = "\n".join(conn.execute(sa.text("EXPLAIN " + str(q.compile(
                dialect=store.engine.dialect, compile_kwargs={"literal_binds": True})))).scalars())
        assert "entries_p20260303" in plan
        assert "entries_p20260302" not in plan and "entries_p20260304" not in plan
    finally:
        store.close()


def test_processes_racing_to_make_one_new_day_all_succeed():
    """Eight uploads (as from eight server processes: one engine each) of the same new day."""
    base = open_store("postgresql", None)
    try:
        stores = [Store(base.url, create=False) for _ in range(8)]
        results, errors = [], []

        def upload(s) -> None:
            try:
                results.append(s.insert_batch(_rows(5, T0 + timedelta(days=10), timedelta(seconds=1)),
                                              batch_id="race", now=T0).accepted)
            except Exception as exc:  # noqa: BLE001 - the assertion reports it
                errors.append(exc)

        threads = [threading.Thread(target=upload, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in stores:
            s.close()
        assert errors == [] and results == [5] * 8
        assert "entries_p20260311" in partitions.list_partitions(base.engine)
    finally:
        base.close()


def test_a_report_for_a_far_day_is_empty_not_an_error(store):
    assert store.day_counts(date(9999, 12, 31)) == [] and store.day_counts(date(1, 1, 1)) == []


def test_collector_retention_drop_days_drops_old_partitions(capsys):
    from collector import cli

    store = open_store("postgresql", None)
    try:
        now = datetime.now(timezone.utc)
        for days_ago in (40, 35, 3):
            noon_local = (now - timedelta(days=days_ago)).replace(hour=5, minute=0)  # 12:00 in Vietnam
            store.insert_batch(_rows(2, noon_local, timedelta(minutes=1)),
                               batch_id=f"b{days_ago}", now=now)
        assert len(partitions.list_partitions(store.engine)) == 3
        assert cli.main(["retention", "--days", "21", "--drop-days", "30", "--db", store.url]) == 0
        assert "dropped 2 day partitions" in capsys.readouterr().out
        assert len(partitions.list_partitions(store.engine)) == 1 and store.count_entries() == 2
    finally:
        store.close()


def test_an_upload_for_a_day_dropped_by_another_process_makes_the_day_again():
    """Process A has seen day D's partition; process B drops it (retention); A's next
    upload for D still lands (the missing partition is made again)."""
    a = open_store("postgresql", None)
    b = Store(a.url, create=False)
    try:
        at = datetime(2026, 3, 5, 5, 0, tzinfo=timezone.utc)
        assert a.insert_batch(_rows(2, at, timedelta(minutes=1)), batch_id="1", now=at).accepted == 2
        with b.engine.begin() as conn:  # as another process's retention would, unseen by this one
            conn.execute(sa.text('DROP TABLE "entries_p20260305"'))
        assert a.insert_batch(_rows(3, at, timedelta(minutes=1)), batch_id="2", now=at).accepted == 3
        assert a.count_entries() == 3
    finally:
        b.close()
        a.close()
