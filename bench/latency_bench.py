"""Scan-to-verdict latency: from a camera frame to a verdict that is durably committed
and may be signalled — the "within a blink" the guard and the citizen notice.

For each demo code rendered as a gate-camera frame (phone, dark mode, tilt, ID card, glare):
- decode: plain zxing-cpp (baseline) and the kiosk's decoder chain;
- judge: `evaluate()` alone (parse, verify, decide);
- commit: `Pipeline.handle()` = evaluate + the journal's commit on a real SQLite file
  (WAL, synchronous=FULL), against the baseline of a bare INSERT + COMMIT with the same
  pragmas on the same disk;
- total: decoder chain + Pipeline.handle, the time from frame to signal.

    python bench/latency_bench.py            # about 20 seconds
    python bench/latency_bench.py --rounds 50
    sudo python bench/latency_bench.py --pi4 --rounds 5       # inside one Pi 4 core (bench/pibudget.py)
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2  # noqa: E402
import zxingcpp  # noqa: E402

from kiosk import pipeline  # noqa: E402
from kiosk.pipeline import Pipeline  # noqa: E402
from kiosk.checks import evaluate  # noqa: E402
from kiosk.demo.material import demo_material  # noqa: E402
from kiosk.checks.rules import builtin_rules  # noqa: E402
from kiosk.checks.trust import TrustStore  # noqa: E402
from kiosk.config import load_config  # noqa: E402
from kiosk.journal import Journal  # noqa: E402
from kiosk.model import utcnow  # noqa: E402
from kiosk.scanner.decoder import Decoder  # noqa: E402
from kiosk.demo.frames import render_scene  # noqa: E402
import pibudget  # noqa: E402

KINDS = ("phone", "phone-dark", "tilt", "card", "glare")


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="repetitions per code and frame kind")
    parser.add_argument("--pi4", action="store_true", help="re-run inside a Pi 4 CPU budget (root, bench/pibudget.py)")
    parser.add_argument("--pi4-cores", type=int, default=1, help="Pi 4 cores in that budget (default 1)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.pi4:
        return pibudget.run_self_under_budget(argv, cores=args.pi4_cores)
    share = pibudget.in_budget()
    if share:
        print(f"(inside a Pi 4 budget: {pibudget.budget_cores()} core(s) of {share:.3f} of a core each; "
              "baselines in the same budget)\n")

    now = utcnow()
    material = demo_material(now)
    payloads = [(label, text) for label, text in material.payloads if material.expected[label][0] != "fail"
                or label.startswith("hd1")][:6]
    # Greyscale, as every source delivers frames to the decoder.
    frames = [(label, text, cv2.cvtColor(render_scene(text, kind=kind, seed=i), cv2.COLOR_BGR2GRAY))
              for i, (label, text) in enumerate(payloads) for kind in KINDS]

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, search=False, overrides={"journal.path": f"{tmp}/journal.db",
                                                         "journal.repeat_window_s": 0.0})
        rows: dict[str, list[float]] = {k: [] for k in
                                        ("zxing", "chain", "evaluate", "handle", "sqlite", "total")}
        pipeline.DEBOUNCE_S = 0.0  # every repetition is a new scan here
        with Journal(cfg.journal_path(), repeat_window_s=0) as journal, Decoder(cfg.decoder) as decoder:
            trust = TrustStore(journal)
            trust.import_list(material.trust_list_json, now=now)
            rules = builtin_rules(cfg.venue.type)
            pipe = Pipeline(cfg, journal, rules=rules, trust=trust)
            raw = sqlite3.connect(f"{tmp}/baseline.db", isolation_level=None)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("PRAGMA synchronous=FULL")
            raw.execute("CREATE TABLE t (id TEXT PRIMARY KEY, at TEXT, outcome TEXT, reason TEXT)")
            misses = 0
            for _ in range(args.rounds):
                for label, text, image in frames:
                    t0 = time.perf_counter()
                    zx = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
                    t1 = time.perf_counter()
                    codes = decoder.decode(image).codes
                    t2 = time.perf_counter()
                    evaluate(text, now=utcnow(), trust=trust, rules=rules)
                    t3 = time.perf_counter()
                    event = pipe.handle(text, source="bench", engine="zxing")
                    t4 = time.perf_counter()
                    raw.execute("BEGIN IMMEDIATE")
                    raw.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (str(uuid.uuid4()), "now", "pass", "ok"))
                    raw.execute("COMMIT")
                    t5 = time.perf_counter()
                    if not codes or codes[0].text != text or not zx:
                        misses += 1
                    assert event is not None and event.entry.logged
                    rows["zxing"].append((t1 - t0) * 1000)
                    rows["chain"].append((t2 - t1) * 1000)
                    rows["evaluate"].append((t3 - t2) * 1000)
                    rows["handle"].append((t4 - t3) * 1000)
                    rows["sqlite"].append((t5 - t4) * 1000)
                    rows["total"].append((t2 - t1 + t4 - t3) * 1000)
            raw.close()

    n = len(rows["total"])
    print(f"# scan-to-verdict latency: {len(frames)} frames ({len(payloads)} codes x {len(KINDS)} kinds) "
          f"x {args.rounds} rounds = {n} scans; {misses} frames not read by both decoders")
    print(f"# {platform.machine()}, Python {platform.python_version()}; journal in the system temp folder\n")
    if share:
        print("# Inside the budget a step shorter than the cgroup's quota can run at full speed and\n"
              "# wait later: the mean is what a Pi core sustains; the median flatters short steps.\n")
    print("| step | median ms | mean ms | p95 ms | baseline | ratio (median) |")
    print("|---|---:|---:|---:|---|---:|")
    z_med, _ = _ms(rows["zxing"])
    s_med, _ = _ms(rows["sqlite"])
    for key, text, base, base_med in (
            ("zxing", "decode: plain zxing-cpp", "-", None),
            ("chain", "decode: kiosk decoder chain", "plain zxing-cpp", z_med),
            ("evaluate", "judge: evaluate()", "-", None),
            ("sqlite", "commit: bare INSERT+COMMIT (FULL, WAL)", "-", None),
            ("handle", "judge + commit: Pipeline.handle()", "bare INSERT+COMMIT", s_med),
            ("total", "frame to committed verdict", "-", None)):
        med, p95 = _ms(rows[key])
        ratio = f"{med / base_med:.2f}x" if base_med else ""
        print(f"| {text} | {med:.2f} | {statistics.fmean(rows[key]):.2f} | {p95:.2f} | {base} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
