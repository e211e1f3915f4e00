"""The daily report's rollup (issue 22): counts kept at ingest give the same report as a
GROUP BY over the entries, exactly once (resends, racing uploads), at any cut-off, for
an old database filled once on open, and forgotten with the days retention drops."""

from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, time, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from collector import report
from collector.declarations import FORM_DEVICE
from collector.storage import ROLLUP_MARK, entries, ingests, report_counts, settings as settings_table
from collector_helpers import ENGINES, open_store

DAY = date(2026, 3, 2)
START = datetime(2026, 3, 1, 17, 0, tzinfo=timezone.utc)  # 00:00 on 2 March in Vietnam
OUTCOMES = [("pass", "ok"), ("fail", "bad_signature"), ("review", "cccd_manual"), ("pass", "override")]


@pytest.fixture(params=ENGINES)
def store(request, tmp_path):
    s = open_store(request.param, tmp_path)
    yield s
    s.close()


def _rows(minutes: list[int], *, device: str = "kiosk-1", venue: str = "V1") -> list[dict]:
    out = []
    for i, m in enumerate(minutes):
        outcome, reason = OUTCOMES[i % len(OUTCOMES)]
        out.append({"id": str(uuid.uuid4()), "scanned_at": START + timedelta(minutes=m, seconds=i % 60),
                    "device_id": device, "venue_code": venue, "outcome": outcome, "reason": reason,
                    "scheme": "dcc"})
    return out


def _bare(store, day: date, cutoff: datetime | None) -> list[tuple]:
    """The report's counts the way they were made before the rollup: a GROUP BY."""
    c = entries.c
    web = (c.device_id == FORM_DEVICE).label("self_declared")
    q = sa.select(c.venue_code, c.outcome, c.reason, c.hour_local, web, sa.func.count()).where(
        c.day_local == day.isoformat())
    if cutoff is not None:
        q = q.where(c.scanned_at < cutoff.astimezone(timezone.utc).replace(tzinfo=None))
    q = q.group_by(c.venue_code, c.outcome, c.reason, c.hour_local, web)
    with store.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(q))


def _rolled(store, day: date, cutoff: datetime | None) -> list[tuple]:
    merged: dict[tuple, int] = {}
    for r in report._counts(store, day, cutoff):
        key = (r["venue_code"], r["outcome"], r["reason"], r["hour_local"], bool(r["self_declared"]))
        merged[key] = merged.get(key, 0) + int(r["n"])
    return sorted((*k, n) for k, n in merged.items())


def _norm(rows: list[tuple]) -> list[tuple]:
    return sorted((v, o, r, int(h), bool(w), int(n)) for v, o, r, h, w, n in rows)


CUTOFFS = [None, report.cutoff_for(DAY, time(16, 30)), report.cutoff_for(DAY, time(9, 17, 41)),
           report.cutoff_for(DAY, time(0, 0)), report.cutoff_for(DAY - timedelta(days=1), time(16, 30)),
           report.cutoff_for(DAY + timedelta(days=1), time(1, 0))]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.integers(min_value=-90, max_value=24 * 60 + 90), min_size=1, max_size=30),
                        min_size=1, max_size=5),
       resend=st.lists(st.integers(min_value=0, max_value=4), max_size=3))
def test_the_rollup_gives_the_group_by_counts_at_every_cutoff(store, batches, resend):
    with store.engine.begin() as conn:  # each example starts empty
        for table in (entries, report_counts, ingests):
            conn.execute(table.delete())
    sent = []
    for i, minutes in enumerate(batches):
        rows = _rows(minutes, device=FORM_DEVICE if i == 1 else "kiosk-1", venue=f"V{i % 2}")
        store.insert_batch(rows, batch_id=f"b{i}", now=START + timedelta(days=1))
        sent.append(rows)
    for j in resend:  # the same batch again: all duplicates, nothing counted twice
        result = store.insert_batch(sent[j % len(sent)], batch_id="again", now=START + timedelta(days=1))
        assert result.accepted == 0
    for day in (DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)):
        for cutoff in CUTOFFS:
            assert _norm(_rolled(store, day, cutoff)) == _norm(_bare(store, day, cutoff)), (day, cutoff)
            # The CSV's counts, summed over the hours in the database, are the same totals.
            with_hours = report.collect(store, day, now=START + timedelta(days=2), cutoff=cutoff)
            without = report.collect(store, day, now=START + timedelta(days=2), cutoff=cutoff, hourly=False)
            assert report.table(without) == report.table(with_hours)


def test_racing_uploads_of_one_batch_are_counted_once(store):
    rows = _rows(list(range(0, 600, 3)))
    barrier = threading.Barrier(4)
    results = []

    def upload() -> None:
        barrier.wait()
        results.append(store.insert_batch(rows, batch_id="b", now=START + timedelta(hours=12)).accepted)

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == len(rows)
    assert sum(n for *_, n in _rolled(store, DAY, None)) == len(rows)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(ingests.c.accepted))).scalar() == len(rows)


def test_an_old_database_is_counted_into_the_rollup_once_on_open(store, tmp_path):
    store.insert_batch(_rows([10, 70, 130]), batch_id="b", now=START + timedelta(hours=3))
    before = report.collect(store, DAY, now=START + timedelta(hours=20))
    with store.engine.begin() as conn:  # as a database from before the rollup
        conn.execute(report_counts.delete())
        conn.execute(ingests.delete())
        conn.execute(settings_table.delete().where(settings_table.c.name == ROLLUP_MARK))
    assert report.collect(store, DAY, now=START + timedelta(hours=20)).total().entries == 0
    from collector.storage import Store

    for _ in range(2):  # the upgraded collector opens it; then a second process does
        Store(store.url).close()
    after = report.collect(store, DAY, now=START + timedelta(hours=20))
    assert after.total().entries == before.total().entries == 3
    assert [k.uploads for k in after.kiosks] == [k.uploads for k in before.kiosks]


def test_retention_forgets_the_counts_of_dropped_days(store):
    store.insert_batch(_rows([10, 20]), batch_id="b", now=START + timedelta(hours=1))
    from collector import partitions

    partitions.drop_days_before(store.engine, entries, DAY + timedelta(days=1))
    store.forget_rollup_before(DAY + timedelta(days=1))
    assert report.collect(store, DAY, now=START + timedelta(hours=20)).total().entries == 0
