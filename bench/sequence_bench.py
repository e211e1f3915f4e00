"""Live-camera benchmark: time until each person is read, on synthetic gate sequences.

Each sequence (bench/sequences.py: a phone or an ID card lifted into a 640x480 camera's
view at 30 fps, then held with a shaking hand, under one condition) is replayed in real
time: a camera thread publishes frame i at i/30 s into a one-frame slot, overwriting the
previous one (frames arriving while the decoder is busy are dropped and counted); the
decoder takes the newest frame each time it is free, and its decode times are real. A
person's time-to-read runs from the arrival of the frame in which the phone comes to
rest (the end of the lift, when the person starts waiting) to the moment the reader
returns the right text; a read during the lift counts as 0.

Readers, in the same run, each on every sequence, interleaved sequence by sequence:
- kiosk:       kiosk.scanner.stream.StreamDecoder (plain zxing-cpp on every frame, the ROI
               ladder in a worker thread beside it);
- zxing-cpp:   plain `zxingcpp.read_barcodes(frame, formats=QRCode)` on every frame it takes;
- pyzbar:      plain `pyzbar.decode(frame, QRCODE)`;
- chain-before: the decoder chain of commit BEFORE_REV (variants per frame, the chain the
               issue measured), when git can show it.

    python bench/sequence_bench.py                 # 10 people per condition (about 6 min)
    python bench/sequence_bench.py --per-condition 4 --no-before
    sudo python bench/sequence_bench.py --pi4 --per-condition 4 --no-before   # one Pi 4 core
    sudo python bench/sequence_bench.py --pi4 --pi4-cores 4 ...               # a whole Pi 4

Under `--pi4` every reader, plain zxing-cpp included, runs inside the same budget
(bench/pibudget.py), and so do the camera thread and the rendering of the sequences.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pibudget  # noqa: E402
from baseline import load_before  # noqa: E402
from sequences import CONDITIONS, FPS, make_sequence  # noqa: E402

#: A person not read this long after the code came into view counts as not read.
GIVE_UP_S = 1.2


@dataclass
class Person:
    condition: str
    ttr_ms: float | None       # None: not read
    misread: bool
    frames: int
    taken: int                 # frames the reader took
    dropped: int               # frames overwritten before the reader took them


@dataclass
class Tally:
    people: list = field(default_factory=list)

    def read(self, cond=None):
        return [p for p in self.people if p.condition != "no-code" and (cond is None or p.condition == cond)]


class Reader:
    """A reader for one person: `read(grey) -> texts`, `close()`."""

    def __init__(self, name: str, before=None) -> None:
        self.name = name
        if name == "kiosk":
            from kiosk.scanner.stream import StreamDecoder

            self._stream = StreamDecoder()
            self.read = lambda img: self._stream.feed(img).texts
        elif name == "zxing-cpp":
            import zxingcpp

            self.read = lambda img: [b.text for b in zxingcpp.read_barcodes(
                img, formats=zxingcpp.BarcodeFormat.QRCode, text_mode=zxingcpp.TextMode.Plain) if b.valid]
        elif name == "pyzbar":
            from pyzbar import pyzbar

            self.read = lambda img: [d.data.decode("utf-8", "replace") for d in
                                     pyzbar.decode(img, symbols=[pyzbar.ZBarSymbol.QRCODE])]
        elif name == "chain-before":
            from kiosk.config import DecoderConfig

            d = before.Decoder(DecoderConfig())
            self.read = lambda img: d.decode(img).texts
        else:
            raise ValueError(name)

    def close(self) -> None:
        if self.name == "kiosk":
            self._stream.close()


def replay(seq, reader: Reader) -> Person:
    """Play `seq` in real time into a one-frame slot; the reader takes the newest frame
    each time it is free."""
    cond = threading.Condition()
    slot: list = [None]          # (index, frame)
    state = {"published": 0, "ended": False}
    start = time.perf_counter() + 0.02
    last = len(seq.frames) if seq.payload is None else min(len(seq.frames),
                                                            seq.t0_frame + int(GIVE_UP_S * FPS) + 1)

    def camera() -> None:
        for i in range(last):
            wait = start + i / FPS - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            with cond:
                slot[0] = (i, seq.frames[i])
                state["published"] += 1
                cond.notify()
            if state["ended"]:
                return
        with cond:
            state["ended"] = True
            cond.notify()

    cam = threading.Thread(target=camera, daemon=True)
    cam.start()
    t0 = start + seq.t0_frame / FPS
    taken, seen, ttr, misread = 0, -1, None, False
    deadline = t0 + GIVE_UP_S
    while True:
        with cond:
            while (slot[0] is None or slot[0][0] == seen) and not state["ended"]:
                cond.wait(0.05)
            if slot[0] is None or slot[0][0] == seen:
                break
            index, frame = slot[0]
        seen = index
        taken += 1
        texts = reader.read(frame)
        now = time.perf_counter()
        if seq.payload is not None and seq.payload in texts:
            ttr = max(0.0, (now - t0) * 1000.0)
            break
        if any(t != seq.payload for t in texts):
            misread = True
        if seq.payload is not None and now > deadline:
            break
    state["ended"] = True
    cam.join()
    return Person(seq.condition, ttr if ttr is not None and ttr <= GIVE_UP_S * 1000 else None, misread,
                  last, taken, state["published"] - taken)


def pct(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(tallies: dict[str, Tally], conditions) -> str:
    base = tallies["zxing-cpp"]
    lines = ["| reader | people | read <= 1 s | share <= 1 s | read at all | median ms | p90 ms | p95 ms | "
             "misreads | codes on no-code | frames dropped | within 1 s vs zxing |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base_in = sum(1 for p in base.read() if p.ttr_ms is not None and p.ttr_ms <= 1000)
    for name, t in tallies.items():
        people = t.read()
        ttrs = [p.ttr_ms for p in people if p.ttr_ms is not None]
        within = sum(1 for v in ttrs if v <= 1000)
        # Not read counts as infinitely slow in the percentiles.
        allv = ttrs + [float("inf")] * (len(people) - len(ttrs))
        dropped = sum(p.dropped for p in t.people)
        frames = sum(p.taken + p.dropped for p in t.people)
        fp = sum(1 for p in t.people if p.condition == "no-code" and p.misread)
        mis = sum(1 for p in people if p.misread)
        lines.append(f"| {name} | {len(people)} | {within} | {within / max(1, len(people)):.1%} | {len(ttrs)} | "
                     f"{pct(allv, 0.5):.0f} | {pct(allv, 0.9):.0f} | {pct(allv, 0.95):.0f} | {mis} | {fp} | "
                     f"{dropped}/{frames} | {within - base_in:+d} |")
    lines += ["", "Read within 1 s, per condition (no-code: sequences with no code reported)", "",
              "| condition | " + " | ".join(tallies) + " |", "|---|" + "---:|" * len(tallies)]
    for cond in conditions:
        cells = []
        for t in tallies.values():
            ps = [p for p in t.people if p.condition == cond]
            if cond == "no-code":
                cells.append(f"{sum(not p.misread for p in ps)}/{len(ps)}")
            else:
                ok = [p for p in ps if p.ttr_ms is not None and p.ttr_ms <= 1000]
                med = statistics.median([p.ttr_ms for p in ok]) if ok else float("nan")
                cells.append(f"{len(ok)}/{len(ps)} ({med:.0f} ms)")
        lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    lines += ["", "Time-to-read distribution (people, all conditions)", "",
              "| reader | <=100 ms | <=150 ms | <=250 ms | <=500 ms | <=1000 ms | not read |", "|---|" + "---:|" * 6]
    for name, t in tallies.items():
        people = t.read()
        ttrs = [p.ttr_ms for p in people if p.ttr_ms is not None]
        cells = [str(sum(1 for v in ttrs if v <= lim)) for lim in (100, 150, 250, 500, 1000)]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {len(people) - len(ttrs)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-condition", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-before", action="store_true", help="skip the chain of BEFORE_REV")
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--pi4", action="store_true", help="re-run inside a Pi 4 CPU budget (root, bench/pibudget.py)")
    ap.add_argument("--pi4-cores", type=int, default=1, help="Pi 4 cores in that budget (default 1)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    if args.pi4:
        return pibudget.run_self_under_budget(argv, cores=args.pi4_cores)
    share = pibudget.in_budget()
    if share:
        print(f"(inside a Pi 4 budget: {pibudget.budget_cores()} core(s) of {share:.3f} of a core each)\n")
    conditions = [c for c in args.conditions.split(",") if c]
    before = None if args.no_before else load_before()
    names = ["kiosk", "zxing-cpp", "pyzbar"] + (["chain-before"] if before is not None else [])
    tallies = {n: Tally() for n in names}
    for n in names:   # warm up imports and first-call setup
        r = Reader(n, before)
        import numpy as np

        r.read(np.full((64, 64), 255, np.uint8))
        r.close()
    started = time.perf_counter()
    render = 0.0
    for k in range(args.per_condition):
        for cond in conditions:
            t = time.perf_counter()
            seq = make_sequence(cond, args.seed + k)
            render += time.perf_counter() - t
            for n in names:
                reader = Reader(n, before)
                try:
                    tallies[n].people.append(replay(seq, reader))
                finally:
                    reader.close()
    total = time.perf_counter() - started
    n_people = args.per_condition * len([c for c in conditions if c != "no-code"])
    print(f"### Live replay: {n_people} people + {args.per_condition * ('no-code' in conditions)} no-code "
          f"sequences, 640x480 at {FPS} fps, seeds {args.seed}..{args.seed + args.per_condition - 1} "
          f"(rendered in {render:.0f} s, replayed in {total - render:.0f} s)\n")
    print(report(tallies, conditions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
