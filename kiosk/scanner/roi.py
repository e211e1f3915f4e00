"""Where a code is in a frame, and the ladder of enhanced reads run on that region.

Locating is cheap (well under a millisecond on 640x480): zxing-cpp's own position of a
code it found but could not decode (a failed checksum, from the plain read that already
ran), then the frame's texture: a QR code is a dense block of edges on smoother
surroundings, and stays one under blur, noise and dark mode, where finder-pattern
detectors (OpenCV's QRCodeDetector) give up first. Measured on bench/sequences.py, the
texture finds the code in nearly every frame in view; QRCodeDetector.detect in under a
third of them at 8-28 ms each, so it is not used.

The ladder (`LADDER`) is the list of steps tried on one region, cheapest first, stopping
at the first code an engine returns with its checks passed. Each step names what it
does ("upscale+zxing", "deblur+zxing", "average+clahe+zxing"), and the code's
engine says which step read it.

    >>> import numpy as np
    >>> locate(np.full((480, 640), 128, np.uint8))
    []
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Sequence, TypeVar

from kiosk.scanner import enhance

if TYPE_CHECKING:
    import numpy as np

#: What a reader returns: kiosk.scanner.decoder.Code objects. Named here by a type
#: variable, not imported, so that the decoder (which runs the ladder) and this module
#: do not import each other.
Code = TypeVar("Code")

__all__ = ["Box", "LADDER", "locate", "crop", "run_ladder"]

#: Texture is measured on a copy this many times smaller (cheap, and averages noise away).
TEXTURE_SHRINK = 4
#: Wider frames are halved (area average) before their texture is measured.
TEXTURE_MAX_WIDTH = 720
#: A region smaller than this (pixels of the full frame, per side) holds no readable QR.
MIN_BOX_SIDE = 40
#: Margin added around a located region (share of its side): the quiet zone and the
#: parts of a tilted code the texture missed.
BOX_MARGIN = 0.18
#: At most this many regions per frame (a phone and a card, say).
MAX_BOXES = 2


@dataclass(frozen=True)
class Box:
    """A region of a frame: x, y, width, height in pixels."""

    x: int
    y: int
    w: int
    h: int

    def grown(self, share: float, shape: tuple[int, int]) -> "Box":
        dx, dy = int(self.w * share), int(self.h * share)
        x0, y0 = max(0, self.x - dx), max(0, self.y - dy)
        x1, y1 = min(shape[1], self.x + self.w + dx), min(shape[0], self.y + self.h + dy)
        return Box(x0, y0, x1 - x0, y1 - y0)

    def overlaps(self, other: "Box") -> bool:
        return not (self.x + self.w <= other.x or other.x + other.w <= self.x
                    or self.y + self.h <= other.y or other.y + other.h <= self.y)


def crop(image: "np.ndarray", box: Box) -> "np.ndarray":
    import numpy as np

    return np.ascontiguousarray(image[box.y:box.y + box.h, box.x:box.x + box.w])


def _from_points(points: Sequence[tuple[float, float]]) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return Box(int(min(xs)), int(min(ys)), int(max(xs) - min(xs)) + 1, int(max(ys) - min(ys)) + 1)


def locate(grey: "np.ndarray", failed: Sequence[Sequence[tuple[float, float]]] = ()) -> list[Box]:
    """Regions likely to hold a code: `failed` (corner points of codes an engine found but
    could not decode) first, then the densest blocks of texture."""
    import cv2
    import numpy as np

    shape = grey.shape
    boxes = [_from_points(pts).grown(BOX_MARGIN, shape) for pts in failed]
    # Camera frames above TEXTURE_MAX_WIDTH are measured on an area-averaged copy (a
    # 720p frame costs what a 640x480 one does; modules of 2 px still leave edges).
    scale = 1
    while grey.shape[1] // scale > TEXTURE_MAX_WIDTH:
        scale *= 2
    work = grey if scale == 1 else cv2.resize(grey, (grey.shape[1] // scale, grey.shape[0] // scale),
                                              interpolation=cv2.INTER_AREA)
    if min(work.shape) // TEXTURE_SHRINK < 8:
        return boxes
    found = _texture_boxes(work, scale, shape, sigma=1.0 if scale == 1 else 0.0, close=False)
    if not found:
        # A dim, noisy frame: the noise breaks the code's edges into specks the opening
        # removes. Smoothing harder and closing the gaps first finds it.
        found = _texture_boxes(work, scale, shape, sigma=2.0 / scale, close=True)
    for box in found:
        if not any(box.overlaps(b) for b in boxes):
            boxes.append(box)
    return boxes[:MAX_BOXES]


def _texture_boxes(work: "np.ndarray", scale: int, shape: tuple[int, int], *, sigma: float,
                   close: bool) -> list[Box]:
    """Dense blocks of edges in `work` (the frame shrunk by `scale`), largest first, as
    boxes of the full frame."""
    import cv2
    import numpy as np

    s = TEXTURE_SHRINK
    # Edge density at full resolution, then averaged over cells: modules of 2-3 px make
    # edges everywhere in the code; a phone's outline is a thin line that averages away.
    # The light smoothing first takes most sensor noise out of a dark frame.
    soft = cv2.GaussianBlur(work, (0, 0), sigma) if sigma else work
    edges = cv2.convertScaleAbs(cv2.Sobel(soft, cv2.CV_16S, 1, 0, ksize=3)) // 2 + \
        cv2.convertScaleAbs(cv2.Sobel(soft, cv2.CV_16S, 0, 1, ksize=3)) // 2
    small = cv2.resize(edges, (work.shape[1] // s, work.shape[0] // s), interpolation=cv2.INTER_AREA)
    energy = cv2.boxFilter(small.astype(np.float32), -1, (5, 5))
    s *= scale
    # Relative to the frame itself, so a dim frame's code stands out as well as a bright one's.
    peak = float(energy.max())
    if peak < 4.0:
        return []
    mask = (energy > max(0.5 * peak, 3.0 * float(np.median(energy)))).astype(np.uint8)
    if close:
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    found = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if min(w, h) * s < MIN_BOX_SIDE or area < 0.35 * w * h or max(w, h) > 3.5 * min(w, h):
            continue  # too small, too sparse, or a line of text rather than a square
        found.append((area, Box(x * s, y * s, w * s, h * s).grown(BOX_MARGIN, shape)))
    return [box for _, box in sorted(found, key=lambda t: -t[0])]


# -- the ladder ---------------------------------------------------------------------------

#: A step: (name, needs history, transform(roi, history) -> image or None, binarizers).
Step = tuple


def _wiener_step(kernel) -> Step:
    name = "wiener-" + ("m%d-%d" % (kernel[1], kernel[2]) if kernel[0] == "motion" else "d%d" % kernel[1])
    return (name, False, lambda roi, hist: enhance.wiener(roi, kernel), ("local",))




_memo = threading.local()


def _once(what, roi, hist, make: Callable):
    """`make()`, made once per ladder run (one region and its history) and shared by the
    steps that start from it: the alignment of the history (10-40 ms) and each measured
    deblurring (3-8 ms) are not paid again by the next step."""
    key = (roi, *hist)
    store = getattr(_memo, "store", None)
    if store is None or len(store[0]) != len(key) or not all(a is b for a, b in zip(store[0], key)):
        store = (key, {})
        _memo.store = store
    if what not in store[1]:
        store[1][what] = make()
    return store[1][what]


def _average(roi, hist):
    return _once("average", roi, hist, lambda: enhance.average(list(hist) + [roi]))


def _avg(then: Callable | None = None) -> Callable:
    def make(roi, hist):
        mean = _average(roi, hist)
        return mean if mean is None or then is None else then(mean)
    return make


def _deblurred(roi, hist, nsr: float, candidate: int = 0):
    return _once(("deblur", nsr, candidate), roi, hist, lambda: enhance.deblur(roi, nsr, candidate))


def _deblur(nsr: float, candidate: int = 0, then: Callable | None = None) -> Callable:
    """A step from the region with its measured motion blur undone; `then` (default: 2x
    upscale, whose restored modules keep soft edges a 2x copy separates) before reading."""
    def make(roi, hist):
        restored = _deblurred(roi, hist, nsr, candidate)
        return _then(restored, then or (lambda im: enhance.upscale(im, 2.0)))
    return make


def _upscaled_deblur(roi, hist):
    # Measured and undone on the 2x copy: a smear of L px becomes 2L, above the cepstrum's
    # floor, and the kernel is drawn at twice the resolution (tilted, dense codes).
    return _once("upscaled-deblur", roi, hist,
                 lambda: _then(enhance.upscale(roi, 2.0), lambda up: enhance.deblur(up, enhance.DEBLUR_NSR[0])))


def _up(roi, hist):
    return enhance.upscale(roi, 2.0)


def _then(image, transform):
    return None if image is None else transform(image)


# Ordered by frames rescued per millisecond in bench/ladder_bench.py (bench/RESULTS.md):
# the crop itself with other binarizers, sharpening and gamma (each under 2 ms), 2x
# upscaling, blind deblurring (measured once, read at 2x, 1x, 3x and sharpened),
# averaging (aligning the history costs 10-40 ms, once for the three steps that use it),
# deblurring measured on the 2x copy (for tilted dense codes), then what rescues least.
LADDER: tuple[Step, ...] = (
    ("crop", False, lambda roi, hist: roi, ("local", "global", "fixed")),
    ("sharpen", False, lambda roi, hist: enhance.sharpen(roi), ("local", "global")),
    ("gamma", False, lambda roi, hist: enhance.gamma(roi), ("local", "global")),
    ("upscale", False, _up, ("local", "global", "fixed")),
    ("upscale+denoise", False, lambda roi, hist: _then(_up(roi, hist), enhance.denoise), ("local", "global")),
    # Blind deconvolution: the region's own motion blur, measured from its cepstrum.
    ("deblur", False, _deblur(enhance.DEBLUR_NSR[0]), ("local", "global")),
    ("deblur-1x", False, _deblur(enhance.DEBLUR_NSR[0], then=lambda im: im), ("fixed",)),
    ("deblur-3x", False, _deblur(enhance.DEBLUR_NSR[0], then=lambda im: enhance.upscale(im, 3.0)), ("local",)),
    ("deblur+sharpen", False, _deblur(enhance.DEBLUR_NSR[0], then=lambda im: enhance.upscale(enhance.sharpen(im), 2.0)),
     ("local", "global")),
    ("deblur-soft", False, _deblur(enhance.DEBLUR_NSR[1]), ("local", "global")),
    ("average", True, _avg(), ("local", "global")),
    ("average+upscale", True, _avg(lambda m: enhance.upscale(m, 2.0)), ("local",)),
    # A second measurement, on the 2x copy (15-20 ms): after the averaging, which reads
    # the dim frames of a live camera sooner.
    ("upscale+deblur", False, _upscaled_deblur, ("local",)),
    ("clahe", False, lambda roi, hist: enhance.clahe(roi), ("local", "global")),
    ("average+clahe", True, _avg(enhance.clahe), ("local",)),
    ("deblur-next", False, _deblur(enhance.DEBLUR_NSR[0], candidate=1), ("local", "global")),
    # Defocus disks, as they are.
    *(_wiener_step(k) for k in enhance.KERNEL_BANK),
)


def run_ladder(roi: "np.ndarray", history: Sequence["np.ndarray"], read: Callable[..., list["Code"]], *,
               steps: Sequence[Step] = LADDER, should_stop: Callable[[], bool] = lambda: False,
               zbar: Callable[["np.ndarray", str], list["Code"]] | None = None) -> list["Code"]:
    """Try `steps` on one region, stopping at the first read (or when `should_stop()`).
    `read(image, binarizer=, engine=)` is the zxing-cpp read; `zbar(image, engine)` runs
    after the zxing steps of the crop and the upscale when given."""
    try:
        for name, needs_history, transform, binarizers in steps:
            if should_stop():
                return []
            if needs_history and len(history) < 2:
                continue
            image = transform(roi, history)
            if image is None:
                continue
            for binarizer in binarizers:
                suffix = "" if binarizer == "local" else f"-{binarizer}"
                codes = read(image, binarizer=binarizer, engine=f"zxing{suffix}+{name}")
                if codes:
                    return codes
            if zbar is not None and name in ("crop", "upscale"):
                codes = zbar(image, f"zbar+{name}")
                if codes:
                    return codes
        return []
    finally:
        _memo.store = None   # keep no frames once the run is over


def steps_named(names: Sequence[str]) -> Iterator[Step]:
    """The ladder's steps with these names, in ladder order (for benches and tests)."""
    return (s for s in LADDER if s[0] in names)
