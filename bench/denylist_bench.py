"""The first scan of a person while a deny list is held (issue 21): wall time of the deny
check `subject_denied()` for people the kiosk has not seen since it started, with a list
held in a real journal, in the older single-scrypt form (N=2^16) and as published now (4
lanes of N=2^14 computed at once), beside no list held and one lane alone.

    python bench/denylist_bench.py                 # this machine, about 30 s
    python bench/denylist_bench.py --pi4           # inside a Pi 4 budget of 4 cores (root)
    python bench/denylist_bench.py --pi4 --pi4-cores 1   # one Pi 4 core only
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pibudget  # noqa: E402
from kiosk.checks import denylist  # noqa: E402
from kiosk.checks.denylist import DEFAULT_LANES, DEFAULT_N, DenyParams, deny_hash, subject_denied  # noqa: E402
from kiosk.checks.trust import TrustStore  # noqa: E402
from kiosk.journal import Journal  # noqa: E402

TARGET_MS = 300.0


def _held(journal: Journal, params: DenyParams | None) -> TrustStore:
    trust = TrustStore(journal)
    if params is None:
        trust.import_denylist([])
        journal.set_json(denylist.PARAMS_STATE, None)
    else:
        trust.import_denylist([deny_hash("cccd:001100000000", params)])
        journal.set_json(denylist.PARAMS_STATE, params.as_json())
    return trust


def measure(trust: TrustStore, people: int, start: int) -> list[float]:
    out = []
    for i in range(people):
        t = time.perf_counter()
        assert not subject_denied(trust, f"cccd:0791{start + i:08d}")
        out.append((time.perf_counter() - t) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=15, help="new people per row (default 15)")
    ap.add_argument("--pi4", action="store_true", help="re-run inside a Pi 4 CPU budget (root, bench/pibudget.py)")
    ap.add_argument("--pi4-cores", type=int, default=4, help="Pi 4 cores in that budget (default 4, as a Pi 4 has)")
    args = ap.parse_args(argv)
    if args.pi4:
        return pibudget.run_self_under_budget(argv, cores=args.pi4_cores)
    share = pibudget.in_budget()
    where = (f"inside a Pi 4 budget: {pibudget.budget_cores()} core(s) of {share:.3f} of a core each"
             if share else "this machine, no budget")
    salt = secrets.token_bytes(16)
    rows = [("no deny list held", None, "baseline"),
            (f"one scrypt N=2^16 (scrypt-v1, as first published)", DenyParams(salt, 2 ** 16, 8, 1, None), ""),
            (f"one lane N=2^{DEFAULT_N.bit_length() - 1}", DenyParams(salt, DEFAULT_N, 8, 1, 1), "a quarter of the cost: too cheap"),
            (f"{DEFAULT_LANES} lanes x N=2^{DEFAULT_N.bit_length() - 1} (as published)",
             DenyParams(salt, DEFAULT_N, 8, 1, DEFAULT_LANES), "same thief's cost as N=2^16")]
    print(f"First scan of a new person with a deny list held: deny check wall time, {args.people} people a row; {where}")
    print(f"| deny list | p50 ms | p95 ms | max ms | ratio to one scrypt N=2^16 | under {TARGET_MS:.0f} ms | note |")
    print("|---|---:|---:|---:|---:|---|---|")
    results = []
    with tempfile.TemporaryDirectory() as tmp, Journal(Path(tmp) / "journal.db") as journal:
        for k, (name, params, note) in enumerate(rows):
            trust = _held(journal, params)
            measure(trust, 1, 10 ** 7 * (k + 1))  # warm the lane threads
            ms = sorted(measure(trust, args.people, 10 ** 7 * (k + 1) + 1))
            results.append((name, ms, note))
    ref = statistics.median(results[1][1])
    for name, ms, note in results:
        p50, p95 = statistics.median(ms), ms[max(0, int(round(0.95 * len(ms))) - 1)]
        print(f"| {name} | {p50:,.1f} | {p95:,.1f} | {ms[-1]:,.1f} | {p50 / ref:.2f}x | "
              f"{'yes' if p95 < TARGET_MS else 'no'} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
