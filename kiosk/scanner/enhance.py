"""Image enhancements for hard frames: deblurring, low light, dark screens, small modules.

Each works on a greyscale uint8 region of interest (a crop around where a code was
located) and returns a greyscale uint8 image for an engine to read. None of them can
make a misread: they only hand pixels to zxing-cpp or zbar, whose own checks (Reed-
Solomon error correction, format information) decide whether a text comes back.

- `deblur`: blind deconvolution of straight motion blur. The blur's length and direction
  are read from the region's cepstrum (a motion blur of length L puts a deep negative
  peak at distance L along its direction: the zeros of its spectrum repeat every 1/L),
  then `wiener` undoes it with that kernel.
- `wiener`: deconvolution (OpenCV dft) with one kernel: a straight motion blur of any
  length and angle, or a defocus disk (`KERNEL_BANK`).
- `average`: the mean of 3-5 ROIs of consecutive frames, aligned by rotation and shift
  (ECC from a phase-correlation start): sensor noise falls by the square root of the
  count, the code stays.
- `clahe` / `gamma`: local contrast and a lifted mid-tone for dim and dark screens.
- `upscale`: 2x (cubic) before binarising, for codes of about 2 pixels per module;
  `denoise` after it for a single dim, noisy frame.

    >>> import numpy as np
    >>> roi = np.full((120, 120), 128, np.uint8)
    >>> wiener(roi, KERNEL_BANK[0]).shape
    (120, 120)
    >>> estimate_motion(roi)    # a flat region has no blur to measure
    []
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np

__all__ = ["KERNEL_BANK", "Kernel", "estimate_motion", "deblur", "wiener", "average", "clahe", "gamma", "upscale", "denoise", "sharpen"]

#: Noise-to-signal ratio of the Wiener filter: lower restores more edge and more noise.
WIENER_NSR = 0.01
#: The same for a kernel measured from the region itself (`deblur`): a measured kernel
#: fits well enough to restore harder (bench/ladder_bench.py: 0.002-0.005 read most);
#: the second, softer pass reads some long smears whose restoration rings too much.
DEBLUR_NSR = (0.003, 0.01)
#: Kernels as ("motion", length px, angle deg) or ("defocus", radius px). Angles are in
#: image coordinates: 0 is along x, 90 along y (downwards). Lengths may be fractional.
Kernel = tuple
#: Defocus disks tried as they are (no blind estimate for them). A 3 px disk rescued
#: nothing in bench/ladder_bench.py and was dropped.
KERNEL_BANK: tuple[Kernel, ...] = (("defocus", 2),)
#: Blur lengths `estimate_motion` looks for (pixels). Under 4.5 px the plain binarizers
#: and sharpening already read the code; beyond 24 px a 2-3 px module is beyond repair
#: (a smear of 8 or more modules) and the cepstrum's peak sinks into the code's texture.
BLUR_MIN_PX = 4.5
BLUR_MAX_PX = 24.0
#: How much deeper than the cepstrum's typical value (in its spread) the peak must be to
#: count as a measured blur rather than texture.
BLUR_MIN_DEPTH = 4.0
#: Upscaling stops here (side of the result), so a big ROI never costs a whole frame.
UPSCALE_MAX_SIDE = 1400
#: Smoothing of an upscaled low-light crop (pixels of the 2x copy).
DENOISE_SIGMA = 1.5
#: At most this many frames are averaged; more only smears a moving hand.
AVERAGE_MAX = 5
#: Alignment for averaging: ROIs at least twice this side are aligned at half size;
#: sensor noise is smoothed away first (sigma, pixels of the copy aligned).
ALIGN_MIN_SIDE = 120
ALIGN_SMOOTH = 1.0
#: An aligned ROI must correlate at least this well with the newest to be averaged
#: (bench/sequences.py: 0.98-0.99 for frames of one phone, 0.1-0.4 after it left).
ALIGN_MIN_CC = 0.8
#: ECC stops after 20 iterations or when the warp changes by under 1e-3.
ALIGN_CRITERIA = (3, 20, 1e-3)  # cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS


def _kernel_image(kernel: Kernel) -> "np.ndarray":
    """The point-spread function of `kernel` as a small normalised float32 image."""
    import cv2
    import numpy as np

    if kernel[0] == "motion":
        _, length, angle = kernel
        length = max(1.0, float(length))
        n = (int(np.ceil(length)) + 3) | 1
        k = np.zeros((n, n), np.float32)
        c = (n - 1) / 2
        a = np.deg2rad(float(angle))
        # A straight line of exactly `length` pixels, splatted bilinearly: a fractional
        # length or an odd angle is drawn as it is, not rounded to the pixel grid.
        t = np.linspace(-0.5, 0.5, max(8, int(8 * length)))
        x, y = c + t * length * np.cos(a), c + t * length * np.sin(a)
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
        for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            np.add.at(k, (y0 + dy, x0 + dx), wgt)
    else:
        r = int(kernel[1])
        n = 2 * r + 1
        k = np.zeros((n, n), np.float32)
        cv2.circle(k, (r, r), r, 1.0, -1)
    return k / k.sum()


def _filter(kernel: Kernel, shape: tuple[int, int], nsr: float):
    """The Wiener filter of `kernel` for a `shape` image. A kernel of the bank recurs and
    is kept (a few, small: regions of one camera come in few sizes); a measured kernel
    is new each time and is not: a cache of them would keep megabytes per region."""
    return _bank_psf(kernel, shape, nsr) if kernel in KERNEL_BANK else _psf(kernel, shape, nsr)


@functools.lru_cache(maxsize=8)
def _bank_psf(kernel: Kernel, shape: tuple[int, int], nsr: float):
    return _psf(kernel, shape, nsr)


def _psf(kernel: Kernel, shape: tuple[int, int], nsr: float):
    """The Wiener filter of `kernel` for a `shape` image (complex, OpenCV dft layout)."""
    import cv2
    import numpy as np

    k = _kernel_image(kernel)
    n = k.shape[0]
    padded = np.zeros(shape, np.float32)
    padded[:n, :n] = k
    padded = np.roll(padded, (-(n // 2), -(n // 2)), axis=(0, 1))  # centre at the origin
    otf = cv2.dft(padded, flags=cv2.DFT_COMPLEX_OUTPUT)
    re, im = otf[..., 0], otf[..., 1]
    power = re * re + im * im
    # Wiener: conj(H) / (|H|^2 + NSR), as a complex array in OpenCV's two-channel layout.
    out = np.empty_like(otf)
    out[..., 0] = re / (power + nsr)
    out[..., 1] = -im / (power + nsr)
    return out


def wiener(img: "np.ndarray", kernel: Kernel, nsr: float = WIENER_NSR) -> "np.ndarray":
    """Deconvolve `img` with one kernel (Wiener filter in the frequency domain). The image
    is padded by mirroring, so the code's edge does not ring against the far side."""
    import cv2
    import numpy as np

    h, w = img.shape
    p = _kernel_image(kernel).shape[0]
    # A size the dft likes (small primes), so a 317x291 crop costs no more than 320x300.
    H, W = cv2.getOptimalDFTSize(h + 2 * p), cv2.getOptimalDFTSize(w + 2 * p)
    padded = cv2.copyMakeBorder(img, p, H - h - p, p, W - w - p, cv2.BORDER_REFLECT).astype(np.float32)
    spec = cv2.dft(padded, flags=cv2.DFT_COMPLEX_OUTPUT)
    restored = cv2.idft(cv2.mulSpectrums(spec, _filter(kernel, (H, W), nsr), 0),
                        flags=cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT)
    return np.clip(restored[p:p + h, p:p + w], 0, 255).astype(np.uint8)


def estimate_motion(img: "np.ndarray", candidates: int = 1) -> list[Kernel]:
    """The straight motion blur in `img`, measured from its cepstrum: up to `candidates`
    kernels ("motion", length, angle), most likely first, or [] when no blur between
    BLUR_MIN_PX and BLUR_MAX_PX stands out.

    The cepstrum is the spectrum of the log magnitude spectrum. A blur of length L
    multiplies the spectrum by a sinc whose zeros repeat every 1/L along the blur's
    direction; in the log they become a deep periodic ripple, which the second
    transform turns into a negative peak at distance L from the origin, in that
    direction. A QR code's own modules are random, but its timing patterns and the grid
    can add a weaker peak at two modules along the code's axes, hence the candidates."""
    import cv2
    import numpy as np

    h, w = img.shape
    # The region must be a few blur lengths wide for the ripple to show.
    longest = min(BLUR_MAX_PX, min(h, w) / 3.0)
    if longest < BLUR_MIN_PX + 2:
        return []
    f = img.astype(np.float32)
    f -= float(f.mean())
    if float(f.std()) < 1.0:
        return []       # no texture: nothing to measure a blur by
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    spec = cv2.dft(f * window, flags=cv2.DFT_COMPLEX_OUTPUT)
    logmag = np.log(cv2.magnitude(spec[..., 0], spec[..., 1]) + 1e-3)
    # The log magnitude is real and even, so its forward transform is its real cepstrum.
    cep = cv2.dft(logmag, flags=cv2.DFT_COMPLEX_OUTPUT)[..., 0]
    r = int(longest) + 2
    near = np.roll(cep, (r, r), axis=(0, 1))[:2 * r + 1, :2 * r + 1]   # around the origin
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    dist = np.hypot(xx, yy)
    # One half-plane: the cepstrum is symmetric, each blur shows twice.
    ring = (dist >= BLUR_MIN_PX) & (dist <= longest) & ((yy > 0) | ((yy == 0) & (xx > 0)))
    values = near[ring]
    base = float(np.median(values))
    spread = float(np.median(np.abs(values - base))) or 1e-9
    scores = np.where(ring, near, np.inf)
    found: list[Kernel] = []
    while len(found) < candidates:
        y, x = np.unravel_index(int(np.argmin(scores)), near.shape)
        if not np.isfinite(scores[y, x]) or (base - float(near[y, x])) / spread < BLUR_MIN_DEPTH:
            break
        # Sub-pixel position: the centroid of the peak's 3x3 neighbourhood below the median.
        ys, xs = slice(y - 1, y + 2), slice(x - 1, x + 2)
        depth = np.maximum(0.0, base - near[ys, xs])
        cy = float((yy[ys, xs] * depth).sum() / depth.sum())
        cx = float((xx[ys, xs] * depth).sum() / depth.sum())
        found.append(("motion", round(float(np.hypot(cx, cy)), 1),
                      round(float(np.degrees(np.arctan2(cy, cx))) % 180.0, 0)))
        scores[max(0, y - 3):y + 4, max(0, x - 3):x + 4] = np.inf   # the next peak is another
    return found


def deblur(img: "np.ndarray", nsr: float = DEBLUR_NSR[0], candidate: int = 0) -> "np.ndarray | None":
    """`img` with its measured motion blur undone (the `candidate`-th kernel of
    `estimate_motion`, then `wiener`), or None when there is no such measured blur."""
    kernels = estimate_motion(img, candidate + 1)
    return wiener(img, kernels[candidate], nsr) if len(kernels) > candidate else None


def average(rois: Sequence["np.ndarray"]) -> "np.ndarray | None":
    """Mean of the newest `AVERAGE_MAX` same-sized ROIs, each aligned onto the newest.
    None when fewer than three are given.

    A hand moves and turns the phone between frames: a shift alone (phase correlation)
    leaves a turn of a degree smearing the far modules of a dense code, so each ROI is
    aligned by a rotation and shift (OpenCV's ECC, started from the phase correlation's
    shift, on half-size smoothed copies for speed), or by the shift alone where that fits
    better. An ROI that does not match the newest once aligned (correlation under
    ALIGN_MIN_CC: the phone left, or another came) is left out: only the newest frame's
    code can come back."""
    import cv2
    import numpy as np

    rois = [r for r in rois if r.shape == rois[-1].shape][-AVERAGE_MAX:]
    if len(rois) < 3:
        return None
    ref = rois[-1].astype(np.float32)
    window = cv2.createHanningWindow(ref.shape[::-1], cv2.CV_32F)
    half = min(ref.shape) >= 2 * ALIGN_MIN_SIDE
    f = 0.5 if half else 1.0
    small_ref = _align_copy(ref, half)
    total, used = ref.copy(), 1
    for roi in rois[:-1]:
        moving = roi.astype(np.float32)
        small = _align_copy(moving, half)
        (dx, dy), _ = cv2.phaseCorrelate(ref, moving, window)
        shift = np.float32([[1, 0, dx * f], [0, 1, dy * f]])
        # The better of the shift alone and ECC's rotation and shift started from it (ECC
        # can slide into a worse fit on a code's fine, repetitive texture).
        best, best_cc = shift, _match(small_ref, small, shift)
        try:
            cc, turned = cv2.findTransformECC(small_ref, small, shift.copy(), cv2.MOTION_EUCLIDEAN,
                                              ALIGN_CRITERIA, None, 1)
            if cc > best_cc:
                best, best_cc = turned, cc
        except cv2.error:   # ECC did not converge: the shift alone
            pass
        best = best.copy()
        best[:, 2] /= f
        if best_cc < ALIGN_MIN_CC or abs(float(best[0, 2])) > ref.shape[1] / 4 or abs(float(best[1, 2])) > ref.shape[0] / 4:
            continue        # another scene, or the code moved out of this region
        total += cv2.warpAffine(moving, best, ref.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE)
        used += 1
    if used < 3:
        return None
    return np.clip(total / used, 0, 255).astype(np.uint8)


def _match(ref: "np.ndarray", moving: "np.ndarray", warp: "np.ndarray") -> float:
    """Correlation coefficient of `moving` aligned by `warp` with `ref` (as ECC measures it)."""
    import cv2

    aligned = cv2.warpAffine(moving, warp, ref.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)
    return float(cv2.matchTemplate(aligned, ref, cv2.TM_CCOEFF_NORMED)[0, 0])


def _align_copy(img: "np.ndarray", half: bool) -> "np.ndarray":
    import cv2

    small = cv2.pyrDown(img) if half else img
    return cv2.GaussianBlur(small, (0, 0), ALIGN_SMOOTH)


def clahe(img: "np.ndarray") -> "np.ndarray":
    """Local contrast: a dim screen's modules spread over the full grey range."""
    import cv2

    return cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4)).apply(img)


def gamma(img: "np.ndarray", g: float = 0.5) -> "np.ndarray":
    """Lift the shadows where a dark code's modules sit, after stretching to full range."""
    import cv2
    import numpy as np

    stretched = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)
    lut = (np.power(np.arange(256) / 255.0, g) * 255).astype(np.uint8)
    return cv2.LUT(stretched, lut)


def upscale(img: "np.ndarray", factor: float = 2.0) -> "np.ndarray | None":
    """Cubic upscaling: a 2-pixel module becomes 4, which the binarizer can separate."""
    import cv2

    if max(img.shape) * factor > UPSCALE_MAX_SIDE:
        return None
    return cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def denoise(img: "np.ndarray", sigma: float = DENOISE_SIGMA) -> "np.ndarray":
    """Gaussian smoothing, meant after `upscale`: a dim frame's sensor noise breaks each
    module into speckles; smoothing the 2x copy joins them without merging modules."""
    import cv2

    return cv2.GaussianBlur(img, (0, 0), sigma)


def sharpen(img: "np.ndarray") -> "np.ndarray":
    """Unsharp mask: module edges softened by slight blur come back."""
    import cv2

    return cv2.addWeighted(img, 2.0, cv2.GaussianBlur(img, (0, 0), 1.0), -1.0, 0)
