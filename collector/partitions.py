"""Entries partitioned by day on PostgreSQL (declarative RANGE partitioning); SQLite keeps
one plain table.

A province writes about 2.5 million entries a day. One partition per Vietnam-local day
(`entries_p20260302` holds scanned_at from 2026-03-01 17:00 UTC to 2026-03-02 17:00 UTC)
keeps each day's indexes small, lets the daily report and tracing windows read only the
days they ask for (partition pruning on scanned_at), and makes retention a `DROP TABLE`
of whole days instead of a `DELETE` of millions of rows.

PostgreSQL wants the partition key in every unique index, so on PostgreSQL the entries'
primary key is (id, scanned_at). A kiosk resends an entry with the scanned_at it was
journalled with (both are fixed at scan time), so the dedupe is the same.

Partitions are made when an upload needs them (`ensure_days`: a catalogue lookup, at most
once a minute per day and process), so any number of server processes can insert.

    >>> partition_name("2026-03-02")
    'entries_p20260302'
    >>> local_day_bounds(date(2026, 3, 2))
    (datetime.datetime(2026, 3, 1, 17, 0), datetime.datetime(2026, 3, 2, 17, 0))
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

__all__ = ["create_entries", "ensure_time_index", "ensure_days", "drop_days_before", "partition_name", "local_day_bounds",
           "is_partitioned", "list_partitions", "day_bounds_clause", "forget_known",
           "is_missing_partition", "PARTITION_PREFIX"]

PARTITION_PREFIX = "entries_p"
#: A partition seen to exist is not looked up again for this long. Only a hint that saves
#: a catalogue lookup per upload: nothing depends on it (an insert into a day dropped
#: meanwhile fails with "no partition", and the Store forgets the hint and retries).
KNOWN_FOR_S = 60.0
_KNOWN: dict[str, dict[str, float]] = {}
#: Vietnam's offset (no daylight saving since 1975): local days are the report days.
LOCAL_OFFSET = timedelta(hours=7)


def partition_name(day_local: str) -> str:
    return PARTITION_PREFIX + day_local.replace("-", "")


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The naive-UTC [start, end) of a Vietnam-local day, clamped to datetime's range."""
    try:
        start = datetime(day.year, day.month, day.day) - LOCAL_OFFSET
    except OverflowError:
        start = datetime.min
    try:
        end = datetime(day.year, day.month, day.day) + timedelta(days=1) - LOCAL_OFFSET
    except OverflowError:
        end = datetime.max
    return start, end


def create_entries(engine: sa.Engine, entries: sa.Table) -> bool:
    """On PostgreSQL, create `entries` partitioned by scanned_at with its indexes, unless a
    table of that name exists (an older plain table stays as it is). True if created."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.begin() as conn:
        if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": entries.name}).scalar() is not None:
            return False
        ddl = str(CreateTable(entries).compile(dialect=engine.dialect)).rstrip()
        pk = "PRIMARY KEY (id)"
        if pk not in ddl or not ddl.endswith(")"):
            raise RuntimeError(f"unexpected DDL for {entries.name}: {ddl}")
        ddl = ddl.replace(pk, "PRIMARY KEY (id, scanned_at)") + " PARTITION BY RANGE (scanned_at)"
        conn.execute(sa.text(ddl))
        for index in entries.indexes:
            conn.execute(CreateIndex(index))
    return True


def ensure_time_index(engine: sa.Engine) -> None:
    """A BRIN index on scanned_at (PostgreSQL): a few pages per partition, next to free at
    ingest since entries arrive in time order; it finds the minutes of a report's cut-off
    hour without reading the day's partition."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        if conn.execute(sa.text("SELECT to_regclass('entries_time_brin')")).scalar() is None:
            conn.execute(sa.text("CREATE INDEX IF NOT EXISTS entries_time_brin ON entries USING brin (scanned_at)"))


def is_partitioned(conn: sa.Connection, table: str = "entries") -> bool:
    return conn.execute(sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"),
                        {"t": table}).scalar() == "p"


def ensure_days(engine: sa.Engine, days: Iterable[str]) -> list[str]:
    """Make the partitions of these local days (YYYY-MM-DD) that do not exist yet; returns
    the names made. A no-op on SQLite and on an unpartitioned table."""
    if engine.dialect.name != "postgresql":
        return []
    names = {partition_name(d): d for d in days}
    known = _KNOWN.setdefault(_key(engine), {})
    now = time.monotonic()
    names = {n: d for n, d in names.items() if known.get(n, -KNOWN_FOR_S) < now - KNOWN_FOR_S}
    if not names:
        return []
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT n, to_regclass(n) IS NOT NULL, "
            "(SELECT relkind FROM pg_class WHERE oid = to_regclass('entries')) "
            "FROM unnest(CAST(:names AS text[])) AS n"), {"names": list(names)}).all()
    missing = [n for n, exists, kind in rows if not exists and kind == "p"]
    known.update({n: now for n, exists, _ in rows if exists})
    made = []
    for name in missing:
        start, end = local_day_bounds(date.fromisoformat(names[name]))
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(
                    f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF entries '
                    f"FOR VALUES FROM ('{start.isoformat(' ')}') TO ('{end.isoformat(' ')}')"))
            made.append(name)
            known[name] = now
        except sa.exc.DBAPIError:
            # Another process made it between our lookup and our CREATE: it exists now.
            with engine.connect() as conn:
                if conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": name}).scalar() is None:
                    raise
    return made


def is_missing_partition(exc: BaseException) -> bool:
    """PostgreSQL's "no partition of relation ... found for row" (SQLSTATE 23514)."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == "23514" and "no partition" in str(orig)


def forget_known(engine: sa.Engine) -> None:
    """Drop the hint of which partitions exist (after a 'no partition for row' error)."""
    _KNOWN.pop(_key(engine), None)


def _key(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def list_partitions(engine: sa.Engine) -> list[str]:
    """The day partitions of `entries`, oldest first (empty on SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass('entries')")).scalars())


def drop_days_before(engine: sa.Engine, entries: sa.Table, day: date) -> int:
    """Retention: forget every entry of local days before `day`. PostgreSQL drops whole
    partitions (instant, no vacuum); SQLite deletes the rows. Returns partitions dropped
    (PostgreSQL) or rows deleted (SQLite)."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            return conn.execute(entries.delete().where(entries.c.day_local < day.isoformat())).rowcount
    with engine.connect() as conn:
        partitioned = is_partitioned(conn)
    if not partitioned:
        with engine.begin() as conn:
            return conn.execute(entries.delete().where(entries.c.day_local < day.isoformat())).rowcount
    cutoff = partition_name(day.isoformat())
    old = [n for n in list_partitions(engine) if n.startswith(PARTITION_PREFIX) and n < cutoff]
    with engine.begin() as conn:
        for name in old:
            conn.execute(sa.text(f'DROP TABLE "{name}"'))
    forget_known(engine)
    return len(old)


def day_bounds_clause(column: Any, day: date) -> Any:
    """`start <= column < end` for a local day: lets PostgreSQL read one partition."""
    start, end = local_day_bounds(day)
    return sa.and_(column >= start, column < end)
