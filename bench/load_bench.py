"""Province load benchmark: 200 simulated kiosks against a real `collector serve --workers 2`
on PostgreSQL, over 30 days of preloaded entries, each figure beside a baseline measured
in the same run on the same table.

    python bench/load_bench.py                                  # $KIOSK_TEST_PG_URL, defaults below
    python bench/load_bench.py --entries-per-day 2500000        # Hà Tĩnh's full day (slow preload)

Parts:
1. preload: 30 Vietnam-local days of entries (5,000 venues, 1.3 million people, the
   morning peak) by COPY into the partitioned `entries` table: the COPY rate is the
   ingest floor of this machine.
2. peak: every kiosk uploads a batch every `--interval` seconds (the kiosk's
   `sync.batch_max_age_s` is 10 s), sized so the fleet offers `--peak-rate` entries/s
   (Hà Tĩnh's 7-8 am peak is 300/s); latency from send to acknowledgement per batch.
3. saturation: every kiosk sends its next batch as soon as the last is acknowledged.
4. ingest in process, at each batch size of parts 2 and 3: `Store.insert_batch()` (COPY
   into a stage, dedupe, rollup) beside a bare COPY of the same batches into the same
   table, and a plain `executemany` INSERT.
5. the daily report (GET /v1/reports/daily.csv for a preloaded day) beside its bare SQL
   GROUP BY; a tracing query (GET /v1/trace?subject_hash=...: 21 days of one person's
   visits and everyone near each) beside the bare SQL of both its steps (and of the first).

The benchmark runs in its own PostgreSQL schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import time as dt_time, date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from collector import partitions  # noqa: E402
from collector.storage import REPORT_TZ, Store, entries, local_day, normalise_url  # noqa: E402

PG_ENV = "KIOSK_TEST_PG_URL"
ADMIN_TOKEN = "bench-admin-token-" + "x" * 32
VENUES = 5_000
PEOPLE = 1_300_000
DAYS = 30
#: Share of a day's entries in each local hour: quiet nights, the 7-8 am peak, a lunch bump.
HOUR_WEIGHTS = [1, 1, 1, 1, 2, 4, 10, 16, 12, 8, 7, 8, 9, 7, 6, 6, 7, 8, 7, 5, 4, 3, 2, 1]
OUTCOMES = [("pass", "ok", "dcc")] * 7 + [("fail", "expired", "dcc"), ("fail", "bad_signature", "dcc"),
                                          ("review", "identity_only", "cccd")]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def person_hash(i: int) -> str:
    return f"{i:064x}"


def _libpq_url(store: Store) -> str:
    """The store's URL as psycopg.connect takes it (for COPY, below SQLAlchemy)."""
    return normalise_url(store.url).replace("postgresql+psycopg://", "postgresql://")


# --- 1. preload ----------------------------------------------------------------------

def preload(store: Store, *, per_day: int, days: int, today: date, full_day: date, full_day_entries: int,
            seed: int = 7) -> tuple[int, float, str]:
    """COPY `days` local days ending yesterday (`full_day` with `full_day_entries`); returns
    (rows, seconds, a traced person's hash)."""
    import psycopg

    rng = random.Random(seed)
    day_list = [today - timedelta(days=d) for d in range(days, 0, -1)]
    partitions.ensure_days(store.engine, [d.isoformat() for d in day_list])
    hours = [h for h, w in enumerate(HOUR_WEIGHTS) for _ in range(w)]
    traced = rng.randrange(PEOPLE)
    url = _libpq_url(store)
    cols = ("id", "device_id", "venue_code", "scanned_at", "day_local", "hour_local", "outcome", "reason",
            "scheme", "subject_hash", "name_masked", "personal", "sealed", "batch_id", "received_at")
    t0 = time.perf_counter()
    n = 0
    with psycopg.connect(url, autocommit=False) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY entries ({', '.join(cols)}) FROM STDIN") as copy:
            for day in day_list:
                base = datetime(day.year, day.month, day.day) - timedelta(hours=7)  # local midnight, UTC
                for i in range(full_day_entries if day == full_day else per_day):
                    venue = rng.randrange(VENUES)
                    at = base + timedelta(hours=rng.choice(hours), seconds=rng.random() * 3600)
                    outcome, reason, scheme = OUTCOMES[i % len(OUTCOMES)]
                    person = traced if i % 50_000 == 0 else rng.randrange(PEOPLE)
                    d, h = local_day(at)
                    copy.write_row((str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"kiosk-{venue}",
                                    f"V{venue:04d}", at, d, h, outcome, reason, scheme,
                                    person_hash(person) if outcome == "pass" else None, "Nguyễn V*** A",
                                    None, False, "preload", at))
                    n += 1
        conn.commit()
    return n, time.perf_counter() - t0, person_hash(traced)


# --- 2./3. the fleet -----------------------------------------------------------------

def batch_body(device: str, venue: str, size: int, now: datetime) -> bytes:
    at = now.isoformat()
    rows = [{"id": str(uuid.uuid4()), "scanned_at": at, "device_id": device, "venue_code": venue,
             "outcome": "pass", "reason": "ok", "scheme": "dcc", "subject_hash": None,
             "name_masked": "Nguyễn V*** A", "personal": None, "sealed": False, "override_of": None}
            for _ in range(size)]
    return gzip.compress(json.dumps({"device_id": device, "batch_id": str(uuid.uuid4()), "entries": rows}).encode())


async def fleet(url: str, kiosks: list[tuple[str, str, str]], *, size: int, seconds: float,
                interval: float | None) -> dict:
    """Each kiosk posts batches of `size` for `seconds`: every `interval` s (open loop), or
    back to back (interval None). Returns entries, seconds, latencies, errors."""
    latencies: list[float] = []
    errors: list[str] = []
    accepted = 0
    limits = httpx.Limits(max_connections=len(kiosks) + 10, max_keepalive_connections=len(kiosks) + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        start = time.perf_counter()
        stop_at = start + seconds

        async def kiosk(device: str, venue: str, token: str, phase: float) -> None:
            nonlocal accepted
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                       "Content-Encoding": "gzip"}
            next_at = start + phase
            while True:
                if interval is not None:
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                    next_at += interval
                if time.perf_counter() >= stop_at:
                    return
                body = batch_body(device, venue, size, datetime.now(timezone.utc))
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/batches", content=body, headers=headers)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    continue
                latencies.append(time.perf_counter() - t0)
                if r.status_code == 200:
                    accepted += r.json()["accepted"]
                else:
                    errors.append(f"{r.status_code} {r.text[:200]}")

        phases = [(interval or 0) * i / len(kiosks) for i in range(len(kiosks))]
        await asyncio.gather(*(kiosk(d, v, t, p) for (d, v, t), p in zip(kiosks, phases)))
        elapsed = time.perf_counter() - start
    return {"entries": accepted, "seconds": elapsed, "latencies": latencies, "errors": errors}


# --- 4. baselines --------------------------------------------------------------------

def baseline_rows(n: int, venue: str, device: str) -> list[dict]:
    now = datetime.now(timezone.utc)
    return [{"id": str(uuid.uuid4()), "scanned_at": now, "device_id": device, "venue_code": venue,
             "outcome": "pass", "reason": "ok", "scheme": "dcc", "name_masked": "Nguyễn V*** A"}
            for _ in range(n)]


def insert_batch_rate(store: Store, *, batches: int, size: int) -> float:
    t0 = time.perf_counter()
    for i in range(batches):
        store.insert_batch(baseline_rows(size, "V0001", "kiosk-1"), batch_id=f"base-{i}", now=datetime.now(timezone.utc))
    return batches * size / (time.perf_counter() - t0)


def copy_batches_rate(store: Store, *, batches: int, size: int) -> float:
    """The baseline of ingest: the same batches COPYed straight into entries, one
    transaction each, with no dedupe and no rollup (what a bulk load would do)."""
    import psycopg

    url = _libpq_url(store)
    cols = ("id", "device_id", "venue_code", "scanned_at", "day_local", "hour_local", "outcome", "reason",
            "scheme", "name_masked", "sealed", "batch_id", "received_at")
    batch_rows = [baseline_rows(size, "V0001", "kiosk-1") for _ in range(batches)]
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        for i, rows in enumerate(batch_rows):
            now = datetime.now(timezone.utc).replace(tzinfo=None)
            with conn.cursor() as cur, cur.copy(f"COPY entries ({', '.join(cols)}) FROM STDIN") as copy:
                for r in rows:
                    d, h = local_day(r["scanned_at"])
                    copy.write_row((r["id"], r["device_id"], r["venue_code"], r["scanned_at"].replace(tzinfo=None),
                                    d, h, r["outcome"], r["reason"], r["scheme"], r["name_masked"], False,
                                    f"copy-{i}", now))
            conn.commit()
        return batches * size / (time.perf_counter() - t0)


def executemany_rate(store: Store, *, batches: int, size: int) -> float:
    t0 = time.perf_counter()
    for i in range(batches):
        now = datetime.now(timezone.utc)
        rows = []
        for r in baseline_rows(size, "V0001", "kiosk-1"):
            d, h = local_day(r["scanned_at"])
            rows.append({**r, "scanned_at": r["scanned_at"].replace(tzinfo=None), "day_local": d, "hour_local": h,
                         "sealed": False, "received_at": now.replace(tzinfo=None), "batch_id": f"em-{i}"})
        with store.engine.begin() as conn:
            conn.execute(entries.insert(), rows)
    return batches * size / (time.perf_counter() - t0)


# --- 5. report and tracing -----------------------------------------------------------

def timed(fn, repeat: int = 5, warm: int = 2) -> float:
    """The median of `repeat` runs after `warm` unmeasured ones: over HTTP each of the
    server's worker processes compiles its queries on its first request."""
    for _ in range(warm):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg-url", default=os.environ.get(PG_ENV), help=f"PostgreSQL URL (default ${PG_ENV})")
    ap.add_argument("--kiosks", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--entries-per-day", type=int, default=250_000,
                    help="preloaded entries per day (Hà Tĩnh: 2,500,000)")
    ap.add_argument("--days", type=int, default=DAYS)
    ap.add_argument("--report-day-entries", type=int, default=2_500_000,
                    help="entries of the reported day (two days ago): a whole province's day")
    ap.add_argument("--peak-rate", default="300,5000",
                    help="entries/s offered in the peak parts, comma separated (Hà Tĩnh's peak: 300; issue 22: 5,000)")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between a kiosk's batches (peak part)")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the peak and saturation parts")
    ap.add_argument("--saturation-batch", type=int, default=500,
                    help="entries per batch when saturating (the kiosk's sync.batch_size: a backlog's batches)")
    args = ap.parse_args(argv)
    if not args.pg_url:
        print(f"load_bench: set {PG_ENV} or --pg-url (eval \"$(.ci/start-postgres)\")", file=sys.stderr)
        return 2

    base = normalise_url(args.pg_url)
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    store = Store(url)
    server = None
    rows: list[tuple[str, str, str, str]] = []
    try:
        today = datetime.now(REPORT_TZ).date()
        print(f"preloading {args.days} days x {args.entries_per_day:,} entries by COPY "
              f"({args.report_day_entries:,} on the reported day) ...", file=sys.stderr)
        day = today - timedelta(days=2)
        n, copy_s, traced = preload(store, per_day=args.entries_per_day, days=args.days, today=today,
                                    full_day=day, full_day_entries=args.report_day_entries)
        # COPY bypasses ingest, so the report's rollup (kept at ingest) is counted once here.
        t0 = time.perf_counter()
        store.rebuild_rollup()
        rollup_s = time.perf_counter() - t0
        with store.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE entries"))
        copy_rate = n / copy_s

        kiosks = []
        now = datetime.now(timezone.utc) - timedelta(minutes=5)
        for i in range(args.kiosks):
            device, venue = f"kiosk-{i}", f"V{i:04d}"
            kiosks.append((device, venue, store.enrol(device, store.create_enrol_code(device, now=now, venue=venue),
                                                      now=now)))
        from collector_process import ServerProcess

        server = ServerProcess(url, "--workers", str(args.workers), env={"COLLECTOR_ADMIN_TOKEN": ADMIN_TOKEN})

        peaks = []
        for offered in (float(r) for r in args.peak_rate.split(",")):
            size = max(1, round(offered * args.interval / args.kiosks))
            print(f"peak: {args.kiosks} kiosks x {size} entries every {args.interval:g} s ...", file=sys.stderr)
            peaks.append((offered, size, asyncio.run(fleet(server.url, kiosks, size=size, seconds=args.seconds,
                                                           interval=args.interval))))
        print("saturation ...", file=sys.stderr)
        sat = asyncio.run(fleet(server.url, kiosks, size=args.saturation_batch, seconds=args.seconds, interval=None))

        # In process, at the fleet's batch sizes: insert_batch beside a bare COPY (and a
        # plain executemany INSERT) of the same batches, one right after the other.
        ingest = {}
        for size in sorted({psize for _, psize, _ in peaks} | {args.saturation_batch}):
            batches = max(20, 20_000 // size)
            ingest[size] = {"copy": copy_batches_rate(store, batches=batches, size=size),
                            "insert_batch": insert_batch_rate(store, batches=batches, size=size),
                            "executemany": executemany_rate(store, batches=batches, size=size)}

        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=server.url, timeout=300, headers=auth) as client:
            report_http = timed(lambda: client.get("/v1/reports/daily.csv", params={"date": day.isoformat()})
                                .raise_for_status())
            trace_http = timed(lambda: client.get("/v1/trace", params={"subject_hash": traced}).raise_for_status())
            trace_answer = client.get("/v1/trace", params={"subject_hash": traced}).json()
        c = entries.c
        group_by = (sa.select(c.venue_code, c.outcome, c.reason, c.hour_local, sa.func.count())
                    .where(c.day_local == day.isoformat(), partitions.day_bounds_clause(c.scanned_at, day))
                    .group_by(c.venue_code, c.outcome, c.reason, c.hour_local))
        start = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=21)
        visits_sql = sa.select(entries).where(c.subject_hash == traced, c.scanned_at >= start)
        hour = timedelta(minutes=60)

        def whole_trace_sql() -> None:
            # The trace's two steps as bare SQL: the person's visits, then everyone at
            # those venues within an hour of each, in one OR query.
            with store.engine.connect() as conn:
                visits = conn.execute(visits_sql).mappings().all()
                if visits:
                    conn.execute(sa.select(entries).where(sa.or_(*[
                        sa.and_(c.venue_code == v["venue_code"], c.scanned_at >= v["scanned_at"] - hour,
                                c.scanned_at <= v["scanned_at"] + hour) for v in visits]))).all()

        from collector import tracing

        trace_fn = timed(lambda: tracing.trace(store, venue=None, at=None, window=hour, subject_hash=traced,
                                               now=datetime.now(timezone.utc)))
        trace_full_sql = timed(whole_trace_sql)

        def per_visit() -> None:  # how the trace ran before: one query per visit window
            for v in store.visits(venue=None, start=datetime.now(timezone.utc) - timedelta(days=21),
                                  end=datetime.now(timezone.utc), subject_hash=traced):
                store.visits(venue=v["venue_code"], start=v["scanned_at"] - hour, end=v["scanned_at"] + hour)

        trace_before = timed(per_visit)
        from collector import report as report_mod

        cut = report_mod.cutoff_for(day, dt_time(16, 30))  # the delivered report's cut-off
        report_cut = timed(lambda: report_mod.collect(store, day, now=datetime.now(timezone.utc), cutoff=cut))
        with store.engine.connect() as conn:
            report_sql = timed(lambda: conn.execute(group_by).all())
            trace_sql = timed(lambda: conn.execute(visits_sql).all())
            day_rows = conn.execute(sa.select(sa.func.count()).where(c.day_local == day.isoformat())).scalar()

        lat_s = [x * 1000 for x in sat["latencies"]]
        sat_rate = sat["entries"] / sat["seconds"]
        rows = [("preload: COPY into entries", f"{copy_rate:,.0f} entries/s", f"{n:,} rows, {args.days} partitions",
                 "baseline")]
        for offered, psize, peak in peaks:
            lat_p = [x * 1000 for x in peak["latencies"]]
            # Entries acknowledged over the part's length: the last batches are sent before
            # its end, so this is the sustained rate, not a burst.
            rate = peak["entries"] / args.seconds
            rows.append((f"peak: {args.kiosks} kiosks, {psize}/batch every {args.interval:g} s (offered {offered:g}/s)",
                         f"{rate:,.0f} entries/s", f"p50 {percentile(lat_p, 50):.0f} ms, p99 "
                         f"{percentile(lat_p, 99):.0f} ms, {len(peak['errors'])} errors",
                         f"{rate / copy_rate:.3f}x COPY"))
        sat_copy = ingest[args.saturation_batch]["copy"]
        rows.append((f"saturation over HTTP: {args.kiosks} kiosks, {args.saturation_batch}/batch back to back",
                     f"{sat_rate:,.0f} entries/s", f"p50 {percentile(lat_s, 50):.0f} ms, p99 "
                     f"{percentile(lat_s, 99):.0f} ms, {len(sat['errors'])} errors",
                     f"{sat_rate / sat_copy:.2f}x COPY of {args.saturation_batch}/batch"))
        for size, r in ingest.items():
            rows += [
                (f"Store.insert_batch(), {size}/batch, 1 thread, no HTTP", f"{r['insert_batch']:,.0f} entries/s",
                 "dedupe + rollup, exactly once", f"{r['insert_batch'] / r['copy']:.2f}x COPY"),
                (f"  COPY of the same batches into entries, {size}/batch", f"{r['copy']:,.0f} entries/s",
                 "no dedupe, no rollup", "baseline"),
                (f"  plain executemany INSERT, {size}/batch", f"{r['executemany']:,.0f} entries/s",
                 "no dedupe, no rollup", f"{r['executemany'] / r['copy']:.2f}x COPY"),
            ]
        rows += [
            (f"daily report CSV over HTTP ({day_rows:,} entries that day)", f"{report_http * 1000:,.0f} ms", "",
             f"{report_http / report_sql:.2f}x SQL"),
            ("  bare SQL GROUP BY of that day", f"{report_sql * 1000:,.0f} ms", "one partition", "baseline"),
            ("  in process, cut off at 16:30 (rollup + that hour's entries)", f"{report_cut * 1000:,.0f} ms", "",
             f"{report_cut / report_sql:.2f}x SQL"),
            ("  rollup counted from the preload", f"{rollup_s:,.1f} s", f"{n:,} rows", "once, after COPY"),
            (f"trace by subject over 21 days over HTTP ({trace_answer['count']} people, "
             f"{len(trace_answer['windows'])} visits)", f"{trace_http * 1000:,.0f} ms", "",
             f"{trace_http / trace_full_sql:.1f}x the bare SQL of both steps"),
            ("  the same in process (collector.tracing.trace, no HTTP)", f"{trace_fn * 1000:,.1f} ms", "",
             f"{trace_fn / trace_full_sql:.1f}x"),
            ("  in process, one query per visit (before issue 22)", f"{trace_before * 1000:,.1f} ms", "",
             f"{trace_before / trace_full_sql:.1f}x"),
            ("  bare SQL of both steps: the visits, then one query for everyone near them",
             f"{trace_full_sql * 1000:,.1f} ms", "", "baseline"),
            ("  bare SQL of the first step: that person's visits", f"{trace_sql * 1000:,.1f} ms", "", ""),
        ]
        print(f"\nProvince load: PostgreSQL, collector serve --workers {args.workers}, {args.kiosks} kiosks, "
              f"{args.days} days x {args.entries_per_day:,} entries preloaded, {args.report_day_entries:,} "
              f"on the reported day\n")
        print("| part | rate or time | detail | ratio |\n|---|---:|---|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        errors = [e for _, _, p in peaks for e in p["errors"]] + sat["errors"]
        if errors:
            print("\nfirst errors:", *errors[:5], sep="\n  ")
        return 0
    finally:
        if server is not None:
            server.close()
        store.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
