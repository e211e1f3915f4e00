"""Benchmark: drain a 100,000-entry journal backlog to the collector, and the collector's
ingest rate, on SQLite and (if reachable) PostgreSQL, beside a baseline.

    python bench/sync_bench.py                       # SQLite, plus PostgreSQL from $KIOSK_TEST_PG_URL
    python bench/sync_bench.py --entries 20000 --engines sqlite

Columns:
- drain: `Uploader.drain()` of the whole backlog to `collector serve` (its own process)
  over loopback HTTP: gzip JSON, auth, validation, ON CONFLICT insert, mark sent.
- ingest: the collector's `Store.insert_batch()` alone (ON CONFLICT DO NOTHING RETURNING,
  one transaction per batch), same batches, no HTTP.
- baseline: a plain executemany INSERT of the same rows and batches into the same
  database (no conflict handling, no RETURNING): the floor for this hardware.
- resend: the whole backlog uploaded again (every entry a duplicate): the cost of a
  fleet-wide retry storm after lost acknowledgements.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from collector.storage import Store, entries as entries_table, local_day  # noqa: E402
from kiosk.journal import Journal  # noqa: E402
from kiosk.sync import Uploader  # noqa: E402

DEVICE = "bench-kiosk"
START_TIMEOUT_S = 60
PG_ENV = "KIOSK_TEST_PG_URL"


def fill(journal: Journal, n: int) -> None:
    """n realistic entries straight into the journal's outbox (one transaction)."""
    start = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)
    outcomes = [("pass", "ok", "dcc"), ("fail", "expired", "dcc"), ("review", "identity_only", "cccd")]
    rows = []
    for i in range(n):
        outcome, reason, scheme = outcomes[i % 3]
        at = (start + timedelta(seconds=i * 0.8)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        rows.append((str(uuid.uuid4()), i + 1, at, DEVICE, "V-BENCH", outcome, reason, scheme,
                     uuid.uuid4().hex * 2, uuid.uuid4().hex * 2, "Nguyễn V*** A",
                     '{"name": "Nguyễn Văn An", "phone": "09******12"}', 0, "camera", "zxing"))
    with journal.atomic():
        journal.db.conn.executemany(
            "INSERT INTO entries (id, seq, scanned_at, device_id, venue_code, outcome, reason, scheme,"
            " code_hash, subject_hash, name_masked, personal, sealed, source, engine)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(db_url: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "collector.cli", "serve", "--db", db_url,
                             "--port", str(port), "--log-level", "warning"], env=env, cwd=workdir)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"collector serve did not start for {db_url}")
            time.sleep(0.1)


def batches(journal: Journal, size: int) -> list[list[dict]]:
    ups = [e.as_upload() for e in journal.entries()]
    for u in ups:
        u["scanned_at"] = datetime.fromisoformat(u["scanned_at"].replace("Z", "+00:00"))
    return [ups[i:i + size] for i in range(0, len(ups), size)]


def bench_engine(engine: str, db_url: str, n: int, batch_size: int, workdir: Path) -> dict:
    store = Store(db_url)
    store.reset()
    now = datetime.now(timezone.utc)
    token = store.enrol(DEVICE, store.create_enrol_code(DEVICE, now=now), now=now)
    jpath = workdir / f"journal-{engine}.db"
    with Journal(jpath) as journal:
        fill(journal, n)
        proc, url = serve(db_url, workdir)
        try:
            with Uploader(journal, url=url, device_id=DEVICE, token=token, batch_size=batch_size,
                          timeout_s=120) as up:
                t0 = time.perf_counter()
                result = up.drain()
                drain_s = time.perf_counter() - t0
                assert result.complete and store.count_entries() == n, result
                # Resend everything (as if every acknowledgement had been lost).
                journal.requeue()
                t0 = time.perf_counter()
                again = up.drain()
                resend_s = time.perf_counter() - t0
                assert again.complete and again.duplicates == n and store.count_entries() == n, again
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        groups = batches(journal, batch_size)

    # Collector ingest alone, on fresh tables.
    store.reset()
    t0 = time.perf_counter()
    for i, g in enumerate(groups):
        store.insert_batch(g, batch_id=f"b{i}", now=now)
    ingest_s = time.perf_counter() - t0
    assert store.count_entries() == n

    # Baseline: plain executemany INSERT of the same rows, same batches, same database.
    store.reset()
    plain = []
    for g in groups:
        rows = []
        for r in g:
            day, hour = local_day(r["scanned_at"])
            rows.append({**r, "scanned_at": r["scanned_at"].replace(tzinfo=None), "day_local": day,
                         "hour_local": hour, "batch_id": "b", "received_at": now.replace(tzinfo=None)})
        plain.append(rows)
    t0 = time.perf_counter()
    for rows in plain:
        with store.engine.begin() as conn:
            conn.execute(sa.insert(entries_table), rows)
    baseline_s = time.perf_counter() - t0
    assert store.count_entries() == n
    store.reset()
    store.close()
    return {"engine": engine, "n": n, "batch": batch_size, "drain_s": drain_s, "resend_s": resend_s,
            "ingest_s": ingest_s, "baseline_s": baseline_s}


def table(results: list[dict]) -> str:
    head = ("| engine | entries | batch | drain s | drain entries/s | resend s (all duplicates) "
            "| ingest entries/s | baseline executemany entries/s | ingest / baseline | drain / ingest |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        n = r["n"]
        lines.append(f"| {r['engine']} | {n:,} | {r['batch']} | {r['drain_s']:.1f} | {n / r['drain_s']:,.0f} "
                     f"| {r['resend_s']:.1f} | {n / r['ingest_s']:,.0f} | {n / r['baseline_s']:,.0f} "
                     f"| {r['baseline_s'] / r['ingest_s']:.2f} | {r['ingest_s'] / r['drain_s']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=500, help="the kiosk's sync.batch_size (default 500)")
    p.add_argument("--engines", default="sqlite,postgresql")
    p.add_argument("--pg", default=os.environ.get(PG_ENV), help=f"PostgreSQL URL (default ${PG_ENV})")
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        work = Path(tmp)
        for engine in args.engines.split(","):
            if engine == "sqlite":
                url = f"sqlite:///{work / 'collector.db'}"
            elif engine == "postgresql":
                if not args.pg:
                    print("postgresql: skipped (no URL; eval \"$(.ci/start-postgres)\")", file=sys.stderr)
                    continue
                url = args.pg
            else:
                raise SystemExit(f"unknown engine {engine!r}")
            print(f"{engine}: draining {args.entries:,} entries...", file=sys.stderr, flush=True)
            results.append(bench_engine(engine, url, args.entries, args.batch_size, work))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
