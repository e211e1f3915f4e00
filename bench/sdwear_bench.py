"""Benchmark: bytes written to storage per journal entry (SD wear, issue 21).

    python bench/sdwear_bench.py                     # 3,000 warm-up + 3,000 measured entries
    python bench/sdwear_bench.py --entries 1000 --dir /var/lib/kiosk   # on the card itself

Each row commits entries one by one, as the kiosk does (the light waits for the fsync),
with the uploader marking them sent in batches of 50, and reads the process's
`write_bytes` (bytes sent to the block layer, page-granular: a 100-byte write dirties a
4 KiB page) and `wchar` (bytes passed to write calls) from /proc/self/io around the
measured part, after a warm-up that brings the journal to a steady state (WAL full size,
checkpoints running). The folder must be on a real disk: tmpfs counts nothing.

Rows:
- kiosk: `Journal.record` + `mark_sent`, today's settings (512-byte pages, WAL,
  synchronous=FULL, checkpoint every 4,000 pages, time-ordered ids, 16-byte HMACs, one
  index: scanned_at; the outbox is a low-water mark).
- the same with the tracing fields sealed to the collector (as a provisioned kiosk logs).
- the previous journal (1 KiB pages, with the id and outbox indexes).
- before: the journal as it first was (4 KiB pages, random UUIDv4 ids, the two
  HMAC-keyed indexes, default checkpoint).
- one commit per row: plain `INSERT` of the same rows into a table with no index,
  WAL + FULL, 4 KiB pages (and 1 KiB): the floor of one fsynced commit per entry.
- executemany: the same rows in one `executemany` and one commit: the floor of the
  bytes themselves.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sqlite3
import sys
import tempfile
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import kiosk.journal as journal_module  # noqa: E402
from kiosk.journal import Journal  # noqa: E402
from kiosk.model import Credential, Outcome, Reason, Scan, Verdict  # noqa: E402
from kiosk.seal import generate_keypair, sealer_for  # noqa: E402

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
VERDICTS = [Verdict(Outcome.PASS, Reason.OK, "dcc", "Nguyễn V*** A"),
            Verdict(Outcome.FAIL, Reason.EXPIRED, "dcc"),
            Verdict(Outcome.REVIEW, Reason.IDENTITY_ONLY, "cccd")]


def io_counters() -> tuple[int, int]:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines() if line)
    return int(fields["write_bytes"]), int(fields["wchar"])


def _scan(i: int, *, random_ids: bool) -> tuple[Scan, Credential]:
    at = T0 + timedelta(seconds=7 * i)
    kw = {"id": str(uuid.uuid4())} if random_ids else {}
    scan = Scan(f"HC1:code-{uuid.uuid4()}", source="camera", engine="zxing-cpp", at=at, **kw)
    cred = Credential(scheme="cccd", subject_key=f"cccd:0791900{i:05d}",
                      personal={"name": f"Nguyễn Văn {i}", "phone": "0901234567"})
    return scan, cred


def _journal_run(journal: Journal, start: int, n: int, *, random_ids: bool) -> None:
    sent: list[str] = []
    for i in range(start, start + n):
        scan, cred = _scan(i, random_ids=random_ids)
        sent.append(journal.record(scan, VERDICTS[i % 3], cred, venue="V1", device="kiosk-1").id)
        if len(sent) == 50:
            journal.mark_sent(sent, now=T0)
            sent = []


@contextmanager
def _old_journal(path: Path, *, first: bool):
    """The journal as it was: `first` as first released, else as the release before."""
    page, checkpoint = (4096, 1000) if first else (1024, journal_module.WAL_AUTOCHECKPOINT_PAGES)
    with mock.patch.object(journal_module, "PAGE_SIZE", page), \
            mock.patch.object(journal_module, "WAL_AUTOCHECKPOINT_PAGES", checkpoint):
        j = Journal(path)
    j.hash_id = lambda text: hmac.new(j._key, text.encode(), hashlib.sha256).hexdigest()  # hex, 64 chars
    j.db.execute("CREATE UNIQUE INDEX IF NOT EXISTS entries_id ON entries(id)")
    j.db.execute("CREATE INDEX IF NOT EXISTS entries_outbox ON entries(seq) WHERE uploaded_at IS NULL")
    if first:
        j.db.execute("CREATE INDEX IF NOT EXISTS entries_code ON entries(code_hash, scanned_at)")
        j.db.execute("CREATE INDEX IF NOT EXISTS entries_subject ON entries(subject_hash, scanned_at)")
    try:
        yield j
    finally:
        j.close()


def measure_journal(folder: Path, warm: int, n: int, *, variant: str) -> tuple[int, int]:
    path = folder / f"{variant}.db"
    if variant in ("first", "previous"):
        opener = _old_journal(path, first=variant == "first")
    else:
        opener = Journal(path, sealer=sealer_for(generate_keypair()[1]) if variant == "sealed" else None)
    with opener as j:
        _journal_run(j, 0, warm, random_ids=variant == "first")
        w0, c0 = io_counters()
        _journal_run(j, warm, n, random_ids=variant == "first")
        w1, c1 = io_counters()
    return w1 - w0, c1 - c0


def _plain_rows(start: int, n: int) -> list[tuple]:
    rows = []
    for i in range(start, start + n):
        scan, cred = _scan(i, random_ids=True)
        rows.append((scan.id, scan.at.isoformat(), "kiosk-1", "V1", VERDICTS[i % 3].outcome.value,
                     VERDICTS[i % 3].reason.value, "dcc", "0" * 64, "1" * 64, "Nguyễn V*** A",
                     f'{{"name": "Nguyễn Văn {i}", "phone": "0901234567", "subject": "{cred.subject_key}"}}'))
    return rows


def measure_plain(folder: Path, warm: int, n: int, *, one_commit: bool, page_size: int = 4096) -> tuple[int, int]:
    path = folder / f"plain_{'many' if one_commit else 'each'}_{page_size}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA page_size={page_size}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY, id, scanned_at, device_id, venue_code, "
                 "outcome, reason, scheme, code_hash, subject_hash, name_masked, personal)")
    sql = ("INSERT INTO entries (id, scanned_at, device_id, venue_code, outcome, reason, scheme, code_hash, "
           "subject_hash, name_masked, personal) VALUES (?,?,?,?,?,?,?,?,?,?,?)")

    def run(start: int, count: int) -> None:
        rows = _plain_rows(start, count)
        if one_commit:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(sql, rows)
        else:
            for row in rows:
                conn.execute(sql, row)  # autocommit: one fsynced transaction each

    run(0, warm)
    w0, c0 = io_counters()
    run(warm, n)
    w1, c1 = io_counters()
    conn.close()
    return w1 - w0, c1 - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=3000, help="measured entries per row (default 3000)")
    ap.add_argument("--warm", type=int, default=3000, help="entries before measuring (default 3000)")
    ap.add_argument("--dir", type=Path, default=None, help="folder on the disk to measure (default: the temp dir)")
    args = ap.parse_args(argv)
    if not Path("/proc/self/io").exists():
        print("needs Linux /proc/self/io", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="sdwear-") as tmp:
        folder = Path(tmp)
        rows = [
            ("kiosk (512 B pages, one index)", measure_journal(folder, args.warm, args.entries, variant="kiosk")),
            ("  the same, tracing fields sealed", measure_journal(folder, args.warm, args.entries, variant="sealed")),
            ("previous (1 KiB pages, id+outbox index)", measure_journal(folder, args.warm, args.entries,
                                                                      variant="previous")),
            ("first (4 KiB pages, HMAC indexes)", measure_journal(folder, args.warm, args.entries, variant="first")),
            ("one commit per row, no index", measure_plain(folder, args.warm, args.entries, one_commit=False)),
            ("  the same with 1 KiB pages", measure_plain(folder, args.warm, args.entries, one_commit=False,
                                                         page_size=1024)),
            ("executemany, one commit", measure_plain(folder, args.warm, args.entries, one_commit=True)),
        ]
    if rows[-1][1][0] == 0:
        print("write_bytes stayed 0: the folder is on tmpfs or the kernel does not count; use --dir", file=sys.stderr)
    floor = max(rows[-1][1][0] / args.entries, 1)
    print(f"{args.entries} entries after {args.warm} warm-up, in {args.dir or tempfile.gettempdir()}")
    print(f"{'row':40} {'write_bytes/entry':>18} {'KiB':>7} {'wchar/entry':>12} {'x executemany':>14}")
    for name, (wb, wc) in rows:
        per = wb / args.entries
        print(f"{name:40} {per:18.0f} {per / 1024:7.1f} {wc / args.entries:12.0f} {per / floor:14.1f}")
    goal = max(rows[0][1][0], rows[1][1][0]) / args.entries <= 8 * 1024
    print(f"goal <= 8 KiB per entry (plain and sealed): {'met' if goal else 'not met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
