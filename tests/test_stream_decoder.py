"""The live-camera decoder: the plain read of every frame is never held up by the ROI
worker, the worker's enhancements each read a frame plain zxing-cpp cannot, and nothing
is ever reported on frames without a code.

Fixtures are generated here: a DCC-like code rendered with segno, then blurred, dimmed,
shrunk or drowned in noise with OpenCV."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
import segno
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.config import DecoderConfig
from kiosk.errors import DeviceClosed
from kiosk.scanner import enhance, roi
from kiosk.scanner.decoder import Decoder, _zxing_read
from kiosk.scanner.stream import StreamDecoder

TEXT = "HC1:6BFOXN%TS3DH0YOJ58S S-W5HDC *M0II5XHC9B5G2+$N IOP-IA%NFQGRJPC%OQHIZC4.OI:OI9NAIB6*SP0WBB"


def code(px: float = 4.0, *, fg: float = 0, bg: float = 255, text: str = TEXT) -> np.ndarray:
    """The code at `px` pixels per module (float image), drawn sharp and shrunk by area."""
    qr = segno.make(text, error="q", micro=False)
    mods = np.array([list(r) for r in qr.matrix_iter(scale=1, border=4)], bool)
    big = cv2.resize(np.where(mods, fg, bg).astype(np.float32), (mods.shape[0] * 8,) * 2,
                     interpolation=cv2.INTER_NEAREST)
    side = int(round(mods.shape[0] * px))
    return cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)


def u8(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0, 255).astype(np.uint8)


def plain_reads(img: np.ndarray) -> bool:
    return TEXT in [c.text for c in _zxing_read(img)]


def ladder_reads(img: np.ndarray, step: str, history=()) -> list[str]:
    d = Decoder(DecoderConfig(engines=("zxing",)))
    return [c.text for c in roi.run_ladder(img, list(history), d.read_zxing, steps=list(roi.steps_named([step])))]


def in_scene(img: np.ndarray, size=(480, 640), at=(100, 150), level=120) -> np.ndarray:
    scene = np.full(size, level, np.uint8)
    h, w = img.shape
    scene[at[0]:at[0] + h, at[1]:at[1] + w] = img
    return scene


# -- each enhancement reads a frame the plain engine cannot ---------------------------------

def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """A straight smear of `length` pixels at `angle` degrees (image coordinates, 0 along
    x, 90 downwards), drawn independently of kiosk.scanner.enhance: a thin antialiased
    line on a 4x grid, shrunk by area."""
    n = (int(np.ceil(length)) + 3) | 1
    big = np.zeros((n * 4, n * 4), np.float32)
    c = (n * 4 - 1) / 2
    a = np.deg2rad(angle)
    d = np.array([np.cos(a), np.sin(a)]) * length * 2
    cv2.line(big, (int(round(c - d[0])), int(round(c - d[1]))), (int(round(c + d[0])), int(round(c + d[1]))),
             1.0, 2, cv2.LINE_AA)
    k = cv2.resize(big, (n, n), interpolation=cv2.INTER_AREA)
    return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("length,angle", [(7, 0), (9, 33), (11, 90), (12, 118), (10, 160)])
def test_blind_deconvolution_reads_a_code_smeared_at_any_angle(length, angle):
    rng = np.random.default_rng(int(length * 10))
    blurred = u8(in_scene(motion_blur(code(3.0), length, angle), size=(360, 360), at=(40, 40)).astype(np.float32)
                 + rng.normal(0, 2, (360, 360)))
    assert not plain_reads(blurred)
    assert not ladder_reads(blurred, "crop") and not ladder_reads(blurred, "sharpen")
    assert [TEXT] in (ladder_reads(blurred, step) for step in ("deblur", "deblur-soft", "deblur-next"))


@settings(max_examples=25, deadline=None)
@given(length=st.floats(6.0, 18.0), angle=st.floats(0.0, 179.9))
def test_the_measured_blur_has_the_smears_length_and_direction(length, angle):
    blurred = u8(motion_blur(code(3.0), length, angle))
    kernels = enhance.estimate_motion(blurred, candidates=2)
    assert kernels, "no blur measured"

    def fits(kernel) -> bool:
        kind, got_length, got_angle = kernel
        off = abs(got_angle - angle) % 180.0
        return kind == "motion" and abs(got_length - length) <= max(1.5, 0.12 * length) \
            and min(off, 180.0 - off) <= 8.0
    # The smear is the first candidate, or the second after the code's own two-module
    # period along one of its axes (its timing patterns).
    assert fits(kernels[0]) or (len(kernels) > 1 and fits(kernels[1])), kernels


def test_no_blur_is_measured_on_a_flat_region_or_one_too_small():
    assert enhance.estimate_motion(np.full((200, 200), 90, np.uint8)) == []
    assert enhance.estimate_motion(u8(motion_blur(code(3.0), 9, 40))[:15, :15]) == []


def test_averaging_five_noisy_frames_reads_a_code_no_single_frame_shows():
    rng = np.random.default_rng(0)
    dim = code(3.0) * 0.3 + 20          # a dim gate: the screen at a third of its brightness
    frames = [u8(np.roll(dim, (i % 2, i // 2), (0, 1)) + rng.normal(0, 30, dim.shape)) for i in range(5)]
    assert not any(plain_reads(f) for f in frames)
    assert ladder_reads(frames[-1], "average", frames[:-1]) == [TEXT]


def test_averaging_aligns_the_frames_of_a_hand_that_turns_the_phone_in_a_dim_gate():
    """Low-light frames of bench/sequences.py (a hand shakes and turns the phone a little
    between frames): the frame given the 4 before it is read far more often than alone,
    and more often than when the history is only shifted into place (ECC switched off)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from sequences import held_frames

    frames = held_frames(8, seed=4000, conditions=("low-light",))
    d = Decoder(DecoderConfig(budget_ms=10_000))     # no budget: the steps, not the clock
    alone = sum(p in d.decode(f).texts for _, p, f, _ in frames)
    with_history = sum(p in d.decode(f, h).texts for _, p, f, h in frames)
    real = cv2.findTransformECC

    def unaligned(*args, **kwargs):
        raise cv2.error("ECC off: the shift alone")
    try:
        cv2.findTransformECC = unaligned
        shifted = sum(p in d.decode(f, h).texts for _, p, f, h in frames)
    finally:
        cv2.findTransformECC = real
    assert with_history >= 7 and with_history > alone + 2 and with_history > shifted, (alone, with_history, shifted)


def test_averaging_never_brings_back_a_code_that_has_left_the_frame():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:300, 0:300]
    # A dim gate's tiled wall: it dominates the region, so the frames align perfectly
    # whether or not the phone is in them.
    wall = np.where(((yy // 40) + (xx // 40)) % 2 == 0, 30.0, 110.0).astype(np.float32)
    with_code = wall.copy()
    with_code[40:40 + code(3.0).shape[0], 40:40 + code(3.0).shape[1]] = code(3.0) * 0.3 + 20

    def shot(img):    # a camera on a stand, a phone held still: only the sensor noise changes
        return u8(img + rng.normal(0, 20, img.shape))
    before = [shot(with_code) for _ in range(4)]
    assert ladder_reads(before[-1], "average", before[:-1]) == [TEXT]     # the code, while it is there
    gone = shot(wall)                                                     # the phone is lowered
    for step in ("average", "average+upscale", "average+clahe"):
        assert ladder_reads(gone, step, before) == []


def test_gamma_reads_a_dark_screen():
    dark = u8(code(4.0, fg=4, bg=14))
    assert not plain_reads(dark)
    assert ladder_reads(dark, "gamma") == [TEXT]


def test_clahe_reads_a_dim_code_beside_a_bright_surround():
    dim = code(4.0, fg=10, bg=30)
    frame = np.hstack([dim, np.tile(np.linspace(10, 250, dim.shape[1], dtype=np.float32), (dim.shape[0], 1))])
    frame = u8(frame)
    assert not plain_reads(frame)
    assert ladder_reads(frame, "clahe") == [TEXT]


def test_upscaling_reads_a_code_of_under_two_pixels_per_module():
    small = u8(code(1.6))
    assert not plain_reads(small)
    assert ladder_reads(small, "upscale") == [TEXT]


def test_a_second_binarizer_reads_what_local_average_misses():
    small = u8(cv2.GaussianBlur(code(2.5), (0, 0), 1.2))    # out of focus, 2.5 px a module
    assert not plain_reads(small)     # zxing-cpp's default LocalAverage
    assert [c.text for c in _zxing_read(small, binarizer="fixed")] == [TEXT]
    assert ladder_reads(small, "crop") == [TEXT]


def test_the_region_is_found_where_the_code_is():
    kernel = np.zeros((9, 9), np.float32)
    kernel[4, :] = 1 / 9
    frame = in_scene(u8(cv2.filter2D(code(3.0), -1, kernel)))
    boxes = roi.locate(frame)
    assert boxes, "no region located"
    b = boxes[0]
    side = code(3.0).shape[0]
    # The box covers the code (placed at y=100, x=150) and not the whole frame.
    assert b.x <= 150 + side * 0.1 and b.y <= 100 + side * 0.1
    assert b.x + b.w >= 150 + side * 0.9 and b.y + b.h >= 100 + side * 0.9
    assert b.w * b.h < 0.6 * frame.size


def test_a_dim_noisy_frame_whose_texture_breaks_up_is_still_located_and_read():
    """bench/sequences.py, low light, seed 1009: sensor noise breaks the code's edges into
    specks the first texture pass opens away; the second, smoother pass finds it, and the
    frame is read with the 4 before it."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from sequences import held_frames

    [(_, payload, frame, history)] = held_frames(1, seed=1009, conditions=("low-light",))
    assert roi._texture_boxes(frame, 1, frame.shape, sigma=1.0, close=False) == []
    boxes = roi.locate(frame)
    assert boxes and boxes[0].w * boxes[0].h < 0.6 * frame.size
    assert payload in Decoder(DecoderConfig(budget_ms=10_000)).decode(frame, history).texts


@pytest.mark.parametrize("seed", [1004, 1006, 1026])
def test_a_tilted_shaken_dense_code_is_read_only_by_the_deblurring_variants(seed):
    """bench/sequences.py, tilt (35-55 degrees out of plane, a hand shaking): the whole
    ladder without its deblurring variants (restored image at 1x/3x, sharpened, or
    measured on the 2x copy) reads nothing; one of them reads the code."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from sequences import held_frames

    [(_, payload, frame, history)] = held_frames(1, seed=seed, conditions=("tilt",))
    failed: list = []
    assert payload not in [c.text for c in _zxing_read(frame, failed=failed)]
    box = roi.locate(frame, failed)[0]
    crop, hist = roi.crop(frame, box), [roi.crop(h, box) for h in history]
    d = Decoder(DecoderConfig(engines=("zxing",)))
    variants = ("deblur-1x", "deblur-3x", "deblur+sharpen", "upscale+deblur")
    without = [s for s in roi.LADDER if s[0] not in variants]
    assert roi.run_ladder(crop, hist, d.read_zxing, steps=without) == []
    assert payload in [c.text for c in roi.run_ladder(crop, hist, d.read_zxing, steps=list(roi.steps_named(variants)))]


def test_deblurring_many_regions_keeps_no_memory_behind():
    """Every measured kernel is new (fractional length, any angle): the filters made for
    them must not pile up in a cache while a camera runs for a day."""
    import tracemalloc

    rng = np.random.default_rng(0)
    img = u8(rng.integers(0, 255, (400, 400)))
    enhance.wiener(img, enhance.KERNEL_BANK[0])            # the bank's filter may stay
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(80):
            enhance.wiener(img, ("motion", float(rng.uniform(5, 20)), float(rng.uniform(0, 180))), 0.003)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 8 * 2**20, f"{kept / 2**20:.0f} MiB kept after 80 deblurred regions"


# -- the stream: the worker beside the plain path -----------------------------------------

class SlowStep:
    """A deliberately slow ladder step: it blocks until the test releases it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def step(self):
        def transform(img, hist):
            self.entered.set()
            self.release.wait(10)
            self.finished.set()
            return img
        return ("slow", False, transform, ("local",))


def blurred_frame() -> np.ndarray:
    kernel = np.zeros((9, 9), np.float32)
    kernel[4, :] = 1 / 9
    return in_scene(u8(cv2.filter2D(code(3.0), -1, kernel)))


def test_plain_read_of_the_next_frame_returns_while_a_slow_variant_runs():
    slow = SlowStep()
    with StreamDecoder(steps=[slow.step()]) as stream:
        first = stream.feed(blurred_frame())            # unreadable: its region goes to the worker
        assert first.codes == ()
        assert slow.entered.wait(10), "the worker never took the region"
        second = stream.feed(in_scene(u8(code(4.0))))    # readable: the plain engine reads it now
        assert second.texts == [TEXT]
        assert second.codes[0].engine == "zxing"
        assert not slow.finished.is_set() and stream.stats.roi_done == 0   # the slow job still runs
        third = stream.feed(blurred_frame())
        assert third.codes == ()
        slow.release.set()
        assert stream.idle(10)
    assert stream.stats.frames == 3 and stream.stats.plain_reads == 1


def test_jobs_arriving_while_the_worker_is_busy_replace_each_other_and_are_counted():
    slow = SlowStep()
    with StreamDecoder(steps=[slow.step()]) as stream:
        stream.feed(blurred_frame())
        assert slow.entered.wait(10)
        for _ in range(5):
            stream.feed(blurred_frame())
        assert stream.stats.roi_jobs == 6
        assert stream.stats.roi_skipped == 4     # one waits; four were replaced, none queued
        slow.release.set()
        assert stream.idle(10)
        assert stream.stats.roi_done == 2


def test_worker_read_comes_back_with_the_frame_it_came_from():
    kernel = np.zeros((7, 7), np.float32)
    kernel[3, :] = 1 / 7
    frame = in_scene(u8(cv2.filter2D(code(3.0), -1, kernel)))
    with StreamDecoder() as stream:
        result = stream.feed(frame, frame=41)
        assert result.codes == ()                # the plain engine cannot read it
        assert stream.idle(30)
        later = stream.poll()
    assert later.texts == [TEXT]
    assert later.roi_frames == (41,)
    assert later.codes[0].engine.startswith("zxing") and "+" in later.codes[0].engine


def test_a_plain_read_drops_the_workers_job():
    slow = SlowStep()
    kernel = np.zeros((7, 7), np.float32)
    kernel[3, :] = 1 / 7
    readable_by_ladder = in_scene(u8(cv2.filter2D(code(3.0), -1, kernel)))
    steps = [slow.step()] + list(roi.LADDER)
    with StreamDecoder(steps=steps) as stream:
        stream.feed(readable_by_ladder)
        assert slow.entered.wait(10)
        assert stream.feed(in_scene(u8(code(4.0)))).texts == [TEXT]   # read plainly meanwhile
        slow.release.set()
        assert stream.idle(30)
        # The worker stopped at once: the person was read, its ladder is moot.
        assert stream.poll().codes == ()
        assert stream.stats.roi_reads == 0


def test_closed_stream_decoder_refuses_frames():
    stream = StreamDecoder()
    stream.close()
    stream.close()
    with pytest.raises(DeviceClosed):
        stream.feed(np.zeros((48, 64), np.uint8))


# -- no misread, no code where there is none ---------------------------------------------

@st.composite
def no_code_frames(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    h, w = draw(st.sampled_from([(120, 160), (240, 320), (480, 640)]))
    kind = draw(st.sampled_from(["noise", "stripes", "blocks", "text", "checker", "dark-noise"]))
    if kind == "noise":
        img = rng.integers(0, 256, (h, w)).astype(np.uint8)
    elif kind == "dark-noise":
        img = u8(rng.normal(25, 12, (h, w)))
    elif kind == "stripes":
        period = int(rng.integers(2, 12))
        img = np.tile(np.where(np.arange(w) % period < period // 2, 0, 255).astype(np.uint8), (h, 1))
    elif kind == "checker":
        s = int(rng.integers(2, 8))
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.where(((yy // s) + (xx // s)) % 2 == 0, 20, 235).astype(np.uint8)
    elif kind == "blocks":   # random modules without finder patterns: QR-like texture
        s = int(rng.integers(2, 5))
        cells = rng.random((h // s + 1, w // s + 1)) < 0.5
        img = np.where(np.kron(cells, np.ones((s, s), bool))[:h, :w], 20, 235).astype(np.uint8)
    else:
        img = np.full((h, w), 230, np.uint8)
        for y in range(10, h - 10, 18):
            cv2.putText(img, "Ma QR ca nhan 0123 PC-COVID", (5, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 20, 1)
    if draw(st.booleans()):
        img = cv2.GaussianBlur(img, (0, 0), float(draw(st.floats(0.5, 3.0))))
    return img


@settings(max_examples=30, deadline=None)
@given(st.lists(no_code_frames(), min_size=1, max_size=4))
def test_no_code_is_ever_reported_on_frames_without_one(frames):
    with StreamDecoder() as stream:
        codes = []
        for f in frames:
            codes += stream.feed(f).codes
        assert stream.idle(60)
        codes += stream.poll().codes
    assert codes == []
    single = Decoder(DecoderConfig(budget_ms=30.0))
    assert all(single.decode(f).codes == () for f in frames)


def test_enhanced_reads_of_another_code_are_never_mixed_up():
    # Two people one after the other: the worker's read of the first never turns into
    # a read of the second, and each reported text is exactly one of the two codes.
    other = "HD1:" + "X" * 80
    kernel = np.zeros((7, 7), np.float32)
    kernel[3, :] = 1 / 7
    first = in_scene(u8(cv2.filter2D(code(3.0), -1, kernel)))
    second = in_scene(u8(code(4.0, text=other)))
    with StreamDecoder() as stream:
        texts = stream.feed(first).texts + stream.feed(second).texts
        stream.idle(30)
        texts += stream.poll().texts
    assert other in texts
    assert set(texts) <= {TEXT, other}


# -- end to end: kiosk run on a camera ------------------------------------------------------

def test_kiosk_run_on_a_camera_logs_a_code_only_the_roi_worker_can_read(tmp_path):
    """`kiosk run` on a video file standing in for the camera: empty frames, then a
    motion-blurred ID card code that plain zxing-cpp cannot read; the person is logged."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    text = "001089012345|123456789|Nguyễn Văn An|01011990|Nam|Số 12, Hà Nội|01012022"
    qr = segno.make(text, mode="byte", encoding="utf-8", error="m", micro=False)
    mods = np.array([list(r) for r in qr.matrix_iter(scale=1, border=4)], bool)
    big = cv2.resize(np.where(mods, 0, 255).astype(np.float32), (mods.shape[0] * 8,) * 2,
                     interpolation=cv2.INTER_NEAREST)
    sharp = cv2.resize(big, (int(mods.shape[0] * 3),) * 2, interpolation=cv2.INTER_AREA)
    kernel = np.zeros((7, 7), np.float32)
    kernel[3, :] = 1 / 7
    blurred = u8(cv2.filter2D(sharp, -1, kernel))
    frame = in_scene(blurred, size=(480, 640), at=(80, 200))
    assert TEXT not in [c.text for c in _zxing_read(frame)] and text not in [c.text for c in _zxing_read(frame)]
    video = tmp_path / "gate.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    empty = np.full((480, 640), 120, np.uint8)
    for img in [empty] * 15 + [frame] * 45:
        writer.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    writer.release()
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[device]\nstate_dir = {json.dumps(str(tmp_path))}\n[scanner]\nkind = "camera"\n'
                   f'camera = {json.dumps(str(video))}\nfps = 30\nwidth = 640\nheight = 480\n', encoding="utf-8")
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    proc = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "run", "--headless",
                           "--json", "--max-scans", "1"], cwd=root, env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(events) == 1, proc.stdout
    assert events[0]["logged"] is True
    assert "+" in events[0]["engine"], events[0]      # a ladder step read it ("zxing+deblur", ...)
