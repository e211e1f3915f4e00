"""The decoder for a live camera: the plain engine on every frame, the heavy work beside it.

`StreamDecoder.feed(frame)` runs zxing-cpp on the whole frame in the caller's thread and
returns at once (about 1-3 ms on 640x480-1280x720). When it reads nothing, the frame
goes to one worker thread, which finds its regions of interest (where zxing-cpp located
a code it could not decode, or where the frame's texture looks like a code) and runs the
enhancement ladder (kiosk.scanner.roi.LADDER: binarizers, upscaling, contrast, blind
deblurring, averaging of the last few ROIs aligned by rotation and shift) on them. The worker takes only the newest
job when it comes free: jobs that arrive while it is busy replace the waiting one and
are counted as skipped, never queued (Frigate's detector does the same with frames). So
the plain read of the next frame is never delayed by a slow variant: zxing-cpp and
OpenCV release the GIL while they work, and the caller never waits for the worker.

The worker stops its ladder at the first verified read, and drops its job when the
plain engine reads a code meanwhile. What it reads comes back from the next `feed()`
(or `poll()`), tagged with the frame it came from. Nothing is ever reported that an
engine did not return with its own checks passed: the ladder only changes pixels.

    >>> with StreamDecoder() as stream:                      # doctest: +SKIP
    ...     for frame in frames:
    ...         for code in stream.feed(frame.image).codes:
    ...             print(code.text, code.engine)
    HC1:6BFOXN... zxing+average+upscale
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from kiosk.errors import DeviceClosed
from kiosk.scanner import roi as roi_mod
from kiosk.scanner.decoder import Code, Decoder, _as_grey, _dedupe

if TYPE_CHECKING:
    import numpy as np

    from kiosk.config import DecoderConfig

__all__ = ["StreamDecoder", "StreamResult", "StreamStats"]

log = logging.getLogger(__name__)

#: ROIs of this many earlier frames are kept per region for temporal averaging.
HISTORY_FRAMES = 4
#: The interpreter's thread switch interval while a worker runs. The default 5 ms lets
#: the worker's Python steps hold the GIL that long when the plain read comes back from
#: zxing-cpp, which would add up to 5 ms to every frame; 1 ms bounds that wait.
SWITCH_INTERVAL_S = 0.001
#: The worker thread's nice value (Linux threads have their own): when the CPU is
#: short, the plain read of the next frame comes first and the ROI work waits.
WORKER_NICE = 10


@dataclass(frozen=True)
class StreamResult:
    """What one `feed()` returns: codes read (plain ones of this frame first, then any the
    worker read since, each from an earlier frame), and the plain read's milliseconds."""

    codes: tuple[Code, ...]
    ms: float
    frame: int
    roi_frames: tuple[int, ...] = ()     # for each worker code, the frame it was read in

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.codes]


@dataclass
class StreamStats:
    """Counters, as a stats line would show them side by side."""

    frames: int = 0
    plain_reads: int = 0
    roi_jobs: int = 0          # jobs handed to the worker
    roi_skipped: int = 0       # jobs replaced by a newer one before the worker took them
    roi_done: int = 0          # jobs the worker ran (to a read, to the end, or dropped)
    roi_reads: int = 0
    roi_ms: list[float] = field(default_factory=list)


@dataclass
class _Job:
    frame: int
    grey: "np.ndarray"
    failed: list        # corners of codes zxing-cpp located but could not decode
    history: list       # the frames before it, oldest first (for averaging)


class StreamDecoder:
    """Plain zxing-cpp per frame, the ROI ladder in one worker thread beside it.

    `steps` replaces the ladder (tests pass a deliberately slow one); `cfg.variants`
    False turns the worker off (the plain engine alone).
    """

    def __init__(self, cfg: "DecoderConfig | None" = None, *, steps: Sequence | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._decoder = Decoder(cfg)
        self.cfg = self._decoder.cfg
        self._steps = tuple(roi_mod.LADDER if steps is None else steps)
        # Only the fastest engine on the whole frame: zbar costs 10-60 ms on a frame
        # without a code, so it runs in the worker, on regions only.
        self._plain = self._decoder.engines[:1] if "zxing" not in self._decoder.engines else ("zxing",)
        self._clock = clock
        self.stats = StreamStats()
        self._cond = threading.Condition()
        self._job: _Job | None = None
        self._generation = 0          # bumped on every plain read: the worker drops its job
        self._found: list[tuple[int, Code]] = []
        self._closed = False
        self._history: deque = deque(maxlen=HISTORY_FRAMES)   # (frame, grey) of recent frames
        self._worker: threading.Thread | None = None
        self._busy = False
        if self.cfg.variants and self._steps:
            # zbar keeps a scanner per Decoder: the worker has its own.
            self._worker_decoder = Decoder(self.cfg)
            if sys.getswitchinterval() > SWITCH_INTERVAL_S:
                sys.setswitchinterval(SWITCH_INTERVAL_S)
            self._worker = threading.Thread(target=self._work, name="roi-worker", daemon=True)
            self._worker.start()

    # -- the caller's side ------------------------------------------------------------

    def feed(self, image: "np.ndarray", frame: int | None = None) -> StreamResult:
        """Read one frame with the plain engine; hand its regions to the worker when that
        read nothing; return what was read (this frame's codes, the worker's since)."""
        self._check_open()
        started = self._clock()
        grey = _as_grey(image)
        index = self.stats.frames if frame is None else frame
        self.stats.frames += 1
        failed: list = []
        codes = self._decoder.read_plain(grey, failed, engines=self._plain)
        if codes:
            self.stats.plain_reads += 1
            with self._cond:
                self._generation += 1       # a verified read: the worker's job is moot
                self._job = None
        elif self._worker is not None:
            # Locating and cropping happen in the worker too: this thread only reads.
            self._submit(_Job(index, grey, failed, [g for _, g in self._history]))
        self._history.append((index, grey))
        ms = (self._clock() - started) * 1000.0
        found = self._take_found()
        return StreamResult(codes=_dedupe(list(codes) + [c for _, c in found]), ms=ms, frame=index,
                            roi_frames=tuple(i for i, _ in found))

    def poll(self) -> StreamResult:
        """The worker's reads since the last call, without a new frame."""
        self._check_open()
        found = self._take_found()
        return StreamResult(codes=_dedupe([c for _, c in found]), ms=0.0, frame=-1,
                            roi_frames=tuple(i for i, _ in found))

    def idle(self, timeout: float) -> bool:
        """Wait until the worker has no job (True) or `timeout` passes (False). For
        benches and tests; the kiosk never waits for the worker."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._job is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Stop the worker and free the engines. Safe to call more than once."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._job = None
            self._generation += 1
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=5)
            self._worker_decoder.close()
        self._decoder.close()

    def __enter__(self) -> "StreamDecoder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceClosed("stream decoder is closed")

    def _submit(self, job: _Job) -> None:
        with self._cond:
            if self._job is not None:
                self.stats.roi_skipped += 1
            self._job = job
            self.stats.roi_jobs += 1
            self._cond.notify()

    def _take_found(self) -> list[tuple[int, Code]]:
        with self._cond:
            found, self._found = self._found, []
        return found

    # -- the worker -------------------------------------------------------------------

    def _work(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
        except (AttributeError, OSError):  # not Linux, or not allowed: run at the same priority
            pass
        while True:
            with self._cond:
                while self._job is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job, self._job = self._job, None
                generation = self._generation
                self._busy = True
            started = time.perf_counter()
            try:
                codes = self._run(job, generation)
            except Exception:  # noqa: BLE001 - a bad region must not stop the worker
                log.exception("ROI worker: frame %d skipped after an unexpected error", job.frame)
                codes = []
            with self._cond:
                self._busy = False
                self.stats.roi_done += 1
                self.stats.roi_ms.append((time.perf_counter() - started) * 1000.0)
                if len(self.stats.roi_ms) > 1000:
                    del self.stats.roi_ms[:500]
                if codes and generation == self._generation:
                    self.stats.roi_reads += 1
                    self._found.extend((job.frame, c) for c in codes)
                self._cond.notify_all()

    def _run(self, job: _Job, generation: int) -> list[Code]:
        d = self._worker_decoder

        def stop() -> bool:
            return self._closed or self._generation != generation

        for box in roi_mod.locate(job.grey, job.failed):
            if stop():
                return []
            history = [roi_mod.crop(g, box) for g in job.history]
            codes = roi_mod.run_ladder(roi_mod.crop(job.grey, box), history, d.read_zxing,
                                       steps=self._steps, should_stop=stop,
                                       zbar=d.read_zbar if "zbar" in d.engines else None)
            if codes:
                return codes
        return []
