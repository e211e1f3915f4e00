"""Benchmark: a million revocation hashes (EU DCC revocation design, 16 bytes each) into a
kiosk journal, and the lookup a scan makes, beside baselines measured in the same run.

    python bench/revocation_bench.py                    # 1,000,000 hashes
    python bench/revocation_bench.py --entries 200000 --lookups 20000

Rows:
- sync over loopback: `collector revoke` of N hashes (chunks + signed index), then one
  `Fetcher.fetch("revocations")` from the collector on 127.0.0.1: signed index checked,
  every chunk downloaded, its SHA-256 checked against the index, applied in its own
  transaction (the whole path a kiosk takes).
- apply chunks: the kiosk's part alone (`TrustStore.apply_revocations` per 100,000-hash
  chunk, one transaction per chunk), no HTTP, the hashes in the order the collector
  sends them (sorted before chunking).
- baseline executemany: one plain executemany of the same hashes in the same order, in
  one transaction, into the same table; and once more in random order.
- baseline row by row: one INSERT statement per hash in one transaction.
- lookup is_revoked: the check a scan runs (7 hashes of one certificate, journal-backed,
  1,000,000 rows), half of them revoked.
- baseline set: the same 7 lookups in a Python set holding every hash in memory.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.local import LocalCollector  # noqa: E402
from collector.publish import REVOCATION_CHUNK_ENTRIES, revoke  # noqa: E402
from collector.storage import Store  # noqa: E402
from kiosk.checks.signed import generate_private_key, public_key_text  # noqa: E402
from kiosk.checks.trust import TrustStore  # noqa: E402
from kiosk.journal import Journal  # noqa: E402
from kiosk.sync import Fetcher  # noqa: E402

DEVICE = "bench-kiosk"


def hashes(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.randbytes(16).hex() for _ in range(n)]


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fresh_journal(folder: Path, name: str) -> Journal:
    return Journal(folder / f"{name}.db")


def bench_sync(folder: Path, items: list[str]) -> float:
    key = generate_private_key()
    now = datetime.now(timezone.utc)
    with Store(f"sqlite:///{folder / 'collector.db'}") as store, LocalCollector(store, publisher=key) as c, \
            fresh_journal(folder, "sync") as journal:
        revoke(store, items, key=key, now=now)
        token = c.token(DEVICE)
        with Fetcher(journal, url=c.url, token=token, publisher_key=public_key_text(key), timeout_s=120) as f:
            took = timed(lambda: f.fetch("revocations"))
        count = journal.db.conn.execute("SELECT count(*) FROM revocations").fetchone()[0]
        assert count == len(set(items)), count
    return took


def bench_apply(folder: Path, items: list[str]) -> tuple[float, Journal]:
    journal = fresh_journal(folder, "apply")
    store = TrustStore(journal)

    def run() -> None:
        for i in range(0, len(items), REVOCATION_CHUNK_ENTRIES):
            with journal.atomic():
                store.apply_revocations(add=items[i:i + REVOCATION_CHUNK_ENTRIES])
    return timed(run), journal


def bench_executemany(folder: Path, items: list[str], name: str = "many") -> float:
    with fresh_journal(folder, name) as journal:
        conn = journal.db.conn

        def run() -> None:
            with journal.atomic():
                conn.executemany("INSERT OR IGNORE INTO revocations(hash) VALUES (?)", [(h,) for h in items])
        return timed(run)


def bench_row_by_row(folder: Path, items: list[str]) -> float:
    with fresh_journal(folder, "rows") as journal:
        conn = journal.db.conn

        def run() -> None:
            with journal.atomic():
                for h in items:
                    conn.execute("INSERT OR IGNORE INTO revocations(hash) VALUES (?)", (h,))
        return timed(run)


def bench_lookups(journal: Journal, items: list[str], n: int) -> tuple[float, float]:
    store = TrustStore(journal)
    rng = random.Random(7)
    probes = [[rng.choice(items) if rng.random() < 0.5 else rng.randbytes(16).hex()]
              + [rng.randbytes(16).hex() for _ in range(6)] for _ in range(n)]
    took = timed(lambda: [store.is_revoked(p) for p in probes])
    memory = set(items)
    base = timed(lambda: [any(h in memory for h in p) for p in probes])
    return took / n, base / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=50_000)
    args = parser.parse_args(argv)
    items = hashes(args.entries, seed=1)
    with tempfile.TemporaryDirectory(prefix="revbench-") as tmp:
        folder = Path(tmp)
        sync = bench_sync(folder, items)
        ordered = sorted(items)   # what the chunks hold
        apply_s, journal = bench_apply(folder, ordered)
        many = bench_executemany(folder, ordered)
        shuffled = bench_executemany(folder, items, "shuffled")
        rows = bench_row_by_row(folder, ordered)
        with journal:
            lookup, base = bench_lookups(journal, items, args.lookups)
        size = os.path.getsize(folder / "apply.db")
    n = args.entries
    print(f"{n:,} hashes; {args.lookups:,} lookups of 7 hashes each; journal {size / 1e6:.0f} MB\n")
    print("| case | seconds | per second | ratio | note |")
    print("|---|---:|---:|---:|---|")
    for label, took, note in [
        ("sync over loopback (index + chunks + apply)", sync, "the kiosk's whole path"),
        ("apply chunks (TrustStore.apply_revocations)", apply_s, "no HTTP"),
        ("baseline executemany (same order, one transaction)", many, "baseline"),
        ("baseline executemany (random order, one transaction)", shuffled, "baseline"),
        ("baseline row by row (one INSERT each)", rows, "baseline"),
    ]:
        print(f"| {label} | {took:.2f} | {n / took:,.0f} | {took / many:.2f}x | {note} |")
    print()
    print("| lookup | µs each | ratio | note |")
    print("|---|---:|---:|---|")
    print(f"| is_revoked, 7 hashes, journal-backed | {lookup * 1e6:.1f} | {lookup / base:.1f}x | as shipped |")
    print(f"| baseline: Python set in memory | {base * 1e6:.2f} | 1.0x | baseline (all hashes in RAM) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
