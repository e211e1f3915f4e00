"""`kiosk run` on a camera source: frame-to-verdict latency after many empty frames, and
memory over 10,000 frames of motion without codes.

The camera is OpenCV's file-backed source on a 1280x720 video (mp4v), paced at the
camera's fps and dropping frames a live sensor would overwrite (kiosk.scanner.camera).

latency: videos of [E empty frames of motion, then a readable code held for 10 frames]
repeated, for E = 0, 90 and 900. The kiosk runs in this process (kiosk.appliance.Kiosk,
headless, a real journal); a code frame's time is when the camera produced it (the
source's open time + index / fps); the verdict's is when the committed event reaches
on_event. Baseline in the same run: the same kiosk with decoder.variants = false (plain
zxing-cpp alone, no worker).

memory: `kiosk run` as its own process (headless, and with the pygame screen on SDL's
dummy driver) on a 10,000-frame video of motion without codes at 60 fps; its RSS
(/proc/PID/status VmRSS) is sampled every second until the source has gone through
10,000 frames; growth is the last tenth's mean minus the first tenth's (after warm-up).

    python bench/camera_run_bench.py latency            # about 4 minutes
    python bench/camera_run_bench.py memory             # about 6 minutes
    python bench/camera_run_bench.py memory --frames 2000 --fps 60
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import segno  # noqa: E402

SIZE = (1280, 720)
CODE_FRAMES = 10


def motion_frame(i: int, rng_seed: int = 0) -> np.ndarray:
    """A gate with people walking past: a textured wall and moving shapes, no code."""
    w, h = SIZE
    yy, xx = np.mgrid[0:h:4, 0:w:4].astype(np.float32)
    wall = (120 + 40 * np.sin(xx / 37.0 + i * 0.05) * np.cos(yy / 23.0)).astype(np.uint8)
    img = cv2.resize(wall, SIZE, interpolation=cv2.INTER_LINEAR)
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    for k in range(4):
        x = int((i * (7 + 3 * k) + 300 * k) % (w + 200)) - 100
        y = 120 + 130 * k
        cv2.ellipse(img, (x, y), (70, 160), 0, 0, 360, (40 + 40 * k, 90, 150 - 20 * k), -1)
        cv2.putText(img, "PC-COVID 2026", (x - 60, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (240, 240, 240), 2)
    noise = np.random.default_rng(rng_seed + i).integers(0, 6, img.shape, dtype=np.uint8)
    return cv2.add(img, noise)


def cccd(n: int) -> str:
    return f"0010890{n:05d}|123456789|Nguyễn Văn An|01011990|Nam|Số {n}, Hà Nội|01012022"


def code_frame(i: int, text: str) -> np.ndarray:
    img = motion_frame(i)
    qr = segno.make(text, mode="byte", encoding="utf-8", error="m", micro=False)
    mods = np.array([list(r) for r in qr.matrix_iter(scale=1, border=4)], bool)
    code = cv2.resize(np.where(mods, 20, 240).astype(np.uint8), None, fx=5, fy=5, interpolation=cv2.INTER_NEAREST)
    y, x = 200, 500
    img[y:y + code.shape[0], x:x + code.shape[1]] = cv2.cvtColor(code, cv2.COLOR_GRAY2BGR)
    return img


def write_video(path: Path, frames, fps: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
    if not writer.isOpened():
        raise SystemExit("OpenCV cannot write mp4v here")
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def bench_config(tmp: Path, video: Path, fps: int, **extra) -> "object":
    from kiosk.config import load_config

    overrides = {"scanner.kind": "camera", "scanner.camera": str(video), "scanner.fps": fps,
                 "scanner.width": SIZE[0], "scanner.height": SIZE[1], "device.state_dir": str(tmp),
                 "display.backend": "headless"}
    overrides.update(extra)
    return load_config(None, search=False, overrides=overrides)


# -- latency --------------------------------------------------------------------------------

def run_latency(tmp: Path, empty: int, reps: int, fps: int, variants: bool) -> list[float]:
    """Latencies (ms) of each code's first frame to its committed verdict."""
    from kiosk.appliance import Kiosk
    from kiosk.scanner import camera as camera_mod

    label = f"e{empty}-{'kiosk' if variants else 'plain'}"
    video = tmp / f"latency-{empty}.mp4"
    starts, texts = [], []
    if not video.exists():
        frames, k = [], 0
        for r in range(reps):
            for _ in range(empty):
                frames.append(motion_frame(k)); k += 1
            starts.append(k)
            text = cccd(r + 1000 * empty)
            texts.append(text)
            for _ in range(CODE_FRAMES):
                frames.append(code_frame(k, text)); k += 1
        for _ in range(15):
            frames.append(motion_frame(k)); k += 1
        write_video(video, frames, fps)
        (tmp / f"latency-{empty}.json").write_text(json.dumps({"starts": starts, "texts": texts}))
    meta = json.loads((tmp / f"latency-{empty}.json").read_text())
    starts, texts = meta["starts"], meta["texts"]
    opened: list[float] = []
    original_open = camera_mod.CameraSource._open

    def timed_open(self):
        original_open(self)
        opened.append(time.monotonic())

    got: dict[str, float] = {}
    done = threading.Event()

    def on_event(event):
        got.setdefault(event.scan.text, time.monotonic())
        if len(got) >= len(texts):
            done.set()

    camera_mod.CameraSource._open = timed_open
    try:
        state = tmp / label
        state.mkdir(exist_ok=True)
        cfg = bench_config(state, video, fps, **{"decoder.variants": variants})
        kiosk = Kiosk(cfg, headless=True, on_event=on_event)
        stopper = threading.Thread(target=lambda: (done.wait((len(starts) * (empty + CODE_FRAMES) + 30) / fps + 10),
                                                   kiosk.stop_event.set()), daemon=True)
        stopper.start()
        kiosk.run()
    finally:
        camera_mod.CameraSource._open = original_open
    t_open = opened[0]
    out = []
    for start, text in zip(starts, texts):
        if text in got:
            out.append((got[text] - (t_open + start / fps)) * 1000.0)
        else:
            out.append(float("inf"))
    return out


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency_main(args) -> int:
    tmp = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="camera-run-bench-"))
    rows = []
    for empty, reps in ((0, 20), (90, 20), (900, 4)):
        for variants in (True, False):
            for old in tmp.glob(f"e{empty}-*/journal.db*"):
                old.unlink()   # a fresh journal each run: a repeat would not be a new verdict
            lat = run_latency(tmp, empty, reps, args.fps, variants)
            rows.append((empty, "kiosk (stream decoder)" if variants else "plain zxing-cpp (variants off)", lat))
    print(f"### kiosk run on a camera: frame-to-verdict latency, 1280x720 mp4v at {args.fps} fps\n")
    print("| empty frames before each code | reader | codes | verdicts | median ms | p95 ms | max ms | p95 vs plain |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for i, (empty, name, lat) in enumerate(rows):
        ok = [v for v in lat if v != float("inf")]
        ratio = "" if "plain" in name else f"{pct(lat, 0.95) / max(pct(rows[i + 1][2], 0.95), 1e-9):.2f}x"
        print(f"| {empty} | {name} | {len(lat)} | {len(ok)} | {statistics.median(lat):.0f} | {pct(lat, 0.95):.0f} | "
              f"{max(lat):.0f} | {ratio} |")
    return 0


# -- memory ---------------------------------------------------------------------------------

def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run_memory(tmp: Path, video: Path, frames: int, fps: int, screen: bool) -> dict:
    state = tmp / ("pygame" if screen else "headless")
    state.mkdir(exist_ok=True)
    cfg_path = state / "kiosk.toml"
    cfg_path.write_text(
        "[device]\nstate_dir = %s\n[scanner]\nkind = \"camera\"\ncamera = %s\nfps = %d\n"
        "[display]\nbackend = \"%s\"\nfullscreen = false\n"
        % (json.dumps(str(state)), json.dumps(str(video)), fps, "pygame" if screen else "headless"),
        encoding="utf-8")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "kiosk.cli", "--config", str(cfg_path), "run"] + ([] if screen else ["--headless"])
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    started = time.monotonic()
    duration = frames / fps
    try:
        while time.monotonic() - started < duration + 2:
            if proc.poll() is not None:
                raise SystemExit(f"kiosk run stopped: {proc.stderr.read()[-2000:]}")
            value = rss_mb(proc.pid)
            if value is not None:
                samples.append((time.monotonic() - started, value))
            time.sleep(1.0)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    warm = [v for t, v in samples if t >= 5.0]
    tenth = max(1, len(warm) // 10)
    # A leak keeps growing after warm-up: the least-squares slope of the second half.
    late = [(t, v) for t, v in samples if t >= 5.0][len(warm) // 2:]
    slope = statistics.linear_regression([t for t, _ in late], [v for _, v in late]).slope * 60.0 \
        if len(late) >= 2 else float("nan")
    return {"samples": len(samples), "first": warm[0], "peak": max(warm), "last": warm[-1],
            "growth": statistics.mean(warm[-tenth:]) - statistics.mean(warm[:tenth]),
            "slope": slope, "seconds": samples[-1][0]}


def memory_main(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="camera-run-mem-"))
    video = write_video(tmp / "motion.mp4", (motion_frame(i) for i in range(args.frames)), args.fps)
    print(f"### kiosk run on a camera: memory over {args.frames} frames of motion without codes "
          f"(1280x720 mp4v at {args.fps} fps)\n")
    print("| screen | RSS after warm-up MB | peak MB | last MB | growth MB (last tenth - first tenth) "
          "| slope of the second half MB/min | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for screen in (False, True):
        r = run_memory(tmp, video, args.frames, args.fps, screen)
        print(f"| {'pygame (SDL dummy)' if screen else 'headless'} | {r['first']:.0f} | {r['peak']:.0f} | "
              f"{r['last']:.0f} | {r['growth']:+.1f} | {r['slope']:+.2f} | {r['seconds']:.0f} |")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--fps", type=int, default=30)
    lat.add_argument("--workdir", default="", help="keep (and reuse) the rendered videos here")
    mem = sub.add_parser("memory")
    mem.add_argument("--frames", type=int, default=10_000)
    mem.add_argument("--fps", type=int, default=60)
    args = ap.parse_args(argv)
    return latency_main(args) if args.what == "latency" else memory_main(args)


if __name__ == "__main__":
    sys.exit(main())
