"""Benchmark: the daily report as the 16:30 delivery builds it, beside the old per-venue
count query measured in the same run, on SQLite (a file) and on PostgreSQL when
$KIOSK_TEST_PG_URL is set.

    python bench/report_bench.py                         # 100,000 entries, 400 venues, 800 kiosks
    python bench/report_bench.py --entries 50000 --venues 100 --kiosks 200

Rows:
- baseline day_counts: `Store.day_counts(day)`, the grouped count the report had before
  (venue, outcome, reason, hour), no cut-off.
- counts with cut-off: the same grouping limited to entries scanned before 16:30.
- kiosks: every enrolled kiosk's uploads that day (per-batch newest scan and receive
  time: silent kiosks, clock offsets).
- collect: the whole report from the database (counts, registry, kiosks, roster).
- CSV / XLSX / HTML: rendering the collected report.
- deliver (export only): make the three files and write them to the export folder,
  record the delivery (no SMTP: the mail server's time is not ours).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector import delivery, report, report_page, venues, xlsx  # noqa: E402
from collector.config import CollectorConfig  # noqa: E402
from collector.storage import Store, normalise_url  # noqa: E402

DAY = date(2026, 3, 2)
ENROLLED = datetime(2026, 1, 1, tzinfo=timezone.utc)
VN = timezone(timedelta(hours=7))
OUTCOMES = [("pass", "ok")] * 8 + [("fail", "expired"), ("fail", "unknown_key"), ("review", "identity_only")]
BATCH = 25


def fill(store: Store, *, entries: int, n_venues: int, n_kiosks: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    venues.import_csv(store, "venue_code,name,type,province,district,commune\n" + "".join(
        f"V{i:04d},Địa điểm số {i},market,TP. Hồ Chí Minh,Quận {i % 12 + 1},Phường {i % 40 + 1}\n"
        for i in range(n_venues)), now=ENROLLED)
    kiosks = [(f"kiosk-{k:05d}", f"V{k % n_venues:04d}") for k in range(n_kiosks)]
    for device, venue in kiosks:
        store.enrol(device, store.create_enrol_code(device, now=ENROLLED, venue=venue), now=ENROLLED)
    uploading = kiosks[: int(n_kiosks * 0.97)]  # 3% silent
    start = datetime(2026, 3, 2, 6, 0, tzinfo=VN)
    rows = []
    for i in range(entries):
        device, venue = uploading[i % len(uploading)]
        outcome, reason = rng.choice(OUTCOMES)
        rows.append({"id": str(uuid.uuid4()), "device_id": device, "venue_code": venue,
                     "scanned_at": start + timedelta(seconds=rng.randrange(14 * 3600)), "outcome": outcome,
                     "reason": reason, "scheme": "dcc"})
    # Each kiosk uploads its own entries in time order, BATCH at a time, 30 s after the last.
    by_device: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["scanned_at"]):
        by_device.setdefault(r["device_id"], []).append(r)
    for mine in by_device.values():
        for i in range(0, len(mine), BATCH):
            chunk = mine[i:i + BATCH]
            store.insert_batch(chunk, batch_id=uuid.uuid4().hex, now=chunk[-1]["scanned_at"] + timedelta(seconds=30))


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(store: Store, engine: str, args: argparse.Namespace) -> list[tuple[str, str, float]]:
    now = datetime(2026, 3, 2, 9, 31, tzinfo=timezone.utc)
    cutoff = report.cutoff_for(DAY, delivery.report_clock(CollectorConfig()))
    rep = report.collect(store, DAY, now=now, cutoff=cutoff)
    assert len(rep.venues) == args.venues and len(rep.silent_kiosks()) == args.kiosks - int(args.kiosks * 0.97)
    out = tempfile.mkdtemp(prefix="report-bench-")
    cfg = CollectorConfig(db_url=store.url, export_dir=out)
    r = args.repeat
    return [
        (engine, "baseline day_counts", timed(lambda: store.day_counts(DAY), r)),
        (engine, "counts with cut-off", timed(lambda: report._counts(store, DAY, cutoff), r)),
        (engine, "kiosks", timed(lambda: report._kiosks(store, DAY, now), r)),
        (engine, "collect", timed(lambda: report.collect(store, DAY, now=now, cutoff=cutoff), r)),
        (engine, "CSV", timed(lambda: report.to_csv(rep), r)),
        (engine, "XLSX", timed(lambda: xlsx.report_xlsx(rep), r)),
        (engine, "HTML", timed(lambda: report_page.render(rep), r)),
        (engine, "deliver (export only)", timed(lambda: delivery.deliver(store, cfg, DAY, now=now, cutoff=cutoff), r)),
    ]


def pg_store() -> Store | None:
    url = os.environ.get("KIOSK_TEST_PG_URL")
    if not url:
        return None
    import sqlalchemy as sa

    base = normalise_url(url)
    schema = "bench_report_" + uuid.uuid4().hex[:8]
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    store = Store(f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}")
    store._bench_drop = (admin, schema)  # type: ignore[attr-defined]
    return store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--venues", type=int, default=400)
    parser.add_argument("--kiosks", type=int, default=800)
    parser.add_argument("--repeat", type=int, default=3, help="best of N")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = [("sqlite", Store(f"sqlite:///{tmp}/collector.db"))]
        pg = pg_store()
        if pg is not None:
            stores.append(("postgresql", pg))
        for engine, store in stores:
            t0 = time.perf_counter()
            fill(store, entries=args.entries, n_venues=args.venues, n_kiosks=args.kiosks)
            print(f"{engine}: {args.entries:,} entries loaded in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            results += run(store, engine, args)
            store.close()
            if hasattr(store, "_bench_drop"):
                admin, schema = store._bench_drop
                with admin.begin() as conn:
                    import sqlalchemy as sa

                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    print(f"{args.entries:,} entries, {args.venues} venues, {args.kiosks} kiosks; best of {args.repeat}")
    print(f"{'engine':<11} {'step':<24} {'ms':>9} {'x baseline':>11}")
    base = {e: t for e, step, t in results if step.startswith("baseline")}
    for engine, step, t in results:
        print(f"{engine:<11} {step:<24} {t * 1000:>9.1f} {t / base[engine]:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
