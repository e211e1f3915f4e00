"""Headless display memory: what a headless kiosk keeps after showing N scanning states,
each with a new camera frame (issue 16: `kiosk run --headless` grew 67 MB -> 534 MB).

Rows: the shipped `HeadlessDisplay` (bounded history, frames replaced by their shape)
and, as the baseline measured in the same run, the recorder it replaced (the last 1000
states kept as shown, frames included). Sizes are what tracemalloc sees retained after
the run (Python and NumPy allocations), not RSS.

    python bench/headless_memory_bench.py                  # 10,000 states of 1280x720
    python bench/headless_memory_bench.py --states 3000 --size 640x480
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from kiosk.display.backends import HISTORY_MAX, HeadlessDisplay  # noqa: E402
from kiosk.display.screen import ScreenState, parse_size  # noqa: E402


class FrameKeepingRecorder:
    """The recorder before issue 16's fix: the last HISTORY_MAX states, as shown."""

    def __init__(self) -> None:
        self.history: deque[ScreenState] = deque(maxlen=HISTORY_MAX)

    def show(self, state: ScreenState) -> None:
        self.history.append(state)


def measure(display, states: int, size: tuple[int, int]) -> tuple[float, float]:
    """(MB retained, µs per show) after `states` scanning states with new frames."""
    w, h = size
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    for i in range(states):
        display.show(ScreenState("scanning", venue_name="Siêu thị A", today_count=i,
                                 preview=np.zeros((h, w), np.uint8)))
    elapsed = time.perf_counter() - t0
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return retained / 2**20, elapsed / states * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=10_000)
    ap.add_argument("--size", default="1280x720", help="frame size WxH (greyscale)")
    args = ap.parse_args(argv)
    size = parse_size(args.size)
    base_mb, base_us = measure(FrameKeepingRecorder(), args.states, size)
    with HeadlessDisplay() as display:
        new_mb, new_us = measure(display, args.states, size)
    print(f"{args.states:,} scanning states, a new {size[0]}x{size[1]} greyscale frame each\n")
    print("| recorder | MB retained | µs per show | retained ratio |")
    print("|---|---:|---:|---:|")
    print(f"| HeadlessDisplay (frames as their shape) | {new_mb:,.2f} | {new_us:,.1f} | {new_mb / base_mb:.4f}x |")
    print(f"| baseline: last {HISTORY_MAX} states with frames | {base_mb:,.2f} | {base_us:,.1f} | 1.0000x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
