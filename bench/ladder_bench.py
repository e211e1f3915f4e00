"""What each step of the ROI ladder adds: reads of frames plain zxing-cpp cannot read.

On held-out single frames of bench/sequences.py (each with the 4 frames before it, for
averaging), the frame's first region (kiosk.scanner.roi.locate) is given to every step
of kiosk.scanner.roi.LADDER and every binarizer it lists, alone. Per step: frames it
reads that plain zxing-cpp on the whole frame does not ("rescued"), frames no other
step reads ("only this"), and its median milliseconds per region. Baseline in the same
run: plain zxing-cpp on the whole frame, and the first region alone ("crop").

    python bench/ladder_bench.py                  # 12 frames per condition, about 3 min
    python bench/ladder_bench.py --per-condition 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sequences import CODE_CONDITIONS, held_frames  # noqa: E402

from kiosk.config import DecoderConfig  # noqa: E402
from kiosk.scanner import roi  # noqa: E402
from kiosk.scanner.decoder import Decoder, _zxing_read  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-condition", type=int, default=12)
    ap.add_argument("--seed", type=int, default=2000)
    args = ap.parse_args(argv)
    d = Decoder(DecoderConfig(engines=("zxing",)))
    frames = [f for f in held_frames(args.per_condition, args.seed) if f[1] is not None]
    plain_ok = []
    rescued: dict[str, set] = {name: set() for name, *_ in roi.LADDER}
    ms: dict[str, list] = {name: [] for name, *_ in roi.LADDER}
    located = 0
    for k, (cond, payload, frame, history) in enumerate(frames):
        failed: list = []
        plain = payload in [c.text for c in _zxing_read(frame, failed=failed)]
        plain_ok.append(plain)
        boxes = roi.locate(frame, failed)
        if not boxes:
            continue
        located += 1
        box = boxes[0]
        crop = roi.crop(frame, box)
        hist = [roi.crop(h, box) for h in history]
        for step in roi.LADDER:
            started = time.perf_counter()
            texts = [c.text for c in roi.run_ladder(crop, hist, d.read_zxing, steps=[step])]
            ms[step[0]].append((time.perf_counter() - started) * 1000.0)
            if payload in texts and not plain:
                rescued[step[0]].add(k)
    n = len(frames)
    everything = set().union(*rescued.values())
    print(f"### ROI ladder, step by step ({n} held-out frames with a code, {args.per_condition} per condition, "
          f"seeds from {args.seed}; a region located in {located})\n")
    print(f"plain zxing-cpp on the whole frame reads {sum(plain_ok)}/{n}; the whole ladder rescues "
          f"{len(everything)} more ({sum(plain_ok) + len(everything)}/{n})\n")
    print("| step | binarizers | rescued | only this | median ms per region | rescued per 10 ms | by condition |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, _, _, binarizers in roi.LADDER:
        others = set().union(*(v for k2, v in rescued.items() if k2 != name))
        med = statistics.median(ms[name]) if ms[name] else 0.0
        conds = {}
        for k in rescued[name]:
            conds[frames[k][0]] = conds.get(frames[k][0], 0) + 1
        by = ", ".join(f"{c} {conds[c]}" for c in CODE_CONDITIONS if c in conds)
        per10 = 10 * len(rescued[name]) / med if med else 0.0   # rescues per 10 ms of one region's cost
        print(f"| {name} | {'/'.join(binarizers)} | {len(rescued[name])} | {len(rescued[name] - others)} | "
              f"{med:.1f} | {per10:.2f} | {by} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
