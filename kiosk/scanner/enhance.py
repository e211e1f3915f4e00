"""Image enhancements for hard frames: deblurring, low light, dark screens, small modules.

Each works on a greyscale uint8 region of interest (a crop around where a code was
located) and returns a greyscale uint8 image for an engine to read. None of them can
make a misread: they only hand pixels to zxing-cpp or zbar, whose own checks (Reed-
Solomon error correction, format information) decide whether a text comes back.

- `wiener`: deconvolution (OpenCV dft) with one kernel of `KERNEL_BANK`: straight motion
  blurs at four angles and two lengths, and two defocus disks.
- `average`: the mean of 3-5 ROIs of consecutive frames, aligned by phase correlation:
  sensor noise falls by the square root of the count, the code stays.
- `clahe` / `gamma`: local contrast and a lifted mid-tone for dim and dark screens.
- `upscale`: 2x (cubic) before binarising, for codes of about 2 pixels per module;
  `denoise` after it for a single dim, noisy frame.

    >>> import numpy as np
    >>> roi = np.full((120, 120), 128, np.uint8)
    >>> wiener(roi, KERNEL_BANK[0]).shape
    (120, 120)
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np

__all__ = ["KERNEL_BANK", "Kernel", "wiener", "average", "clahe", "gamma", "upscale", "denoise", "sharpen"]

#: Noise-to-signal ratio of the Wiener filter: lower restores more edge and more noise.
WIENER_NSR = 0.01
#: Kernels as ("motion", length px, angle deg) or ("defocus", radius px). The hand at
#: the gate moves a few pixels per frame (30 fps, exposure ~10-30 ms); lengths beyond ~16
#: px destroy a 2-3 px module beyond repair, so the bank stops there.
Kernel = tuple
KERNEL_BANK: tuple[Kernel, ...] = (
    ("motion", 7, 0), ("motion", 7, 90), ("motion", 7, 45), ("motion", 7, 135),
    ("defocus", 2),
    ("motion", 12, 0), ("motion", 12, 90), ("motion", 12, 45), ("motion", 12, 135),
    ("defocus", 3),
)
#: Upscaling stops here (side of the result), so a big ROI never costs a whole frame.
UPSCALE_MAX_SIDE = 1400
#: Smoothing of an upscaled low-light crop (pixels of the 2x copy).
DENOISE_SIGMA = 1.5
#: At most this many frames are averaged; more only smears a moving hand.
AVERAGE_MAX = 5


@functools.lru_cache(maxsize=64)
def _psf(kernel: Kernel, shape: tuple[int, int]):
    """The kernel's optical transfer function padded to `shape` (complex, dft layout)."""
    import cv2
    import numpy as np

    if kernel[0] == "motion":
        _, length, angle = kernel
        n = int(length) | 1
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0
        m = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), float(angle), 1.0)
        k = cv2.warpAffine(k, m, (n, n))
    else:
        r = int(kernel[1])
        n = 2 * r + 1
        k = np.zeros((n, n), np.float32)
        cv2.circle(k, (r, r), r, 1.0, -1)
    k /= k.sum()
    padded = np.zeros(shape, np.float32)
    padded[:n, :n] = k
    padded = np.roll(padded, (-(n // 2), -(n // 2)), axis=(0, 1))  # centre at the origin
    otf = cv2.dft(padded, flags=cv2.DFT_COMPLEX_OUTPUT)
    re, im = otf[..., 0], otf[..., 1]
    power = re * re + im * im
    # Wiener: conj(H) / (|H|^2 + NSR), as a complex array in OpenCV's two-channel layout.
    out = np.empty_like(otf)
    out[..., 0] = re / (power + WIENER_NSR)
    out[..., 1] = -im / (power + WIENER_NSR)
    return out


def wiener(img: "np.ndarray", kernel: Kernel) -> "np.ndarray":
    """Deconvolve `img` with one kernel of the bank (Wiener filter in the frequency domain)."""
    import cv2
    import numpy as np

    h, w = img.shape
    # A size the dft likes (small primes), so a 317x291 crop costs no more than 320x300.
    H, W = cv2.getOptimalDFTSize(h), cv2.getOptimalDFTSize(w)
    padded = cv2.copyMakeBorder(img, 0, H - h, 0, W - w, cv2.BORDER_REPLICATE).astype(np.float32)
    spec = cv2.dft(padded, flags=cv2.DFT_COMPLEX_OUTPUT)
    restored = cv2.idft(cv2.mulSpectrums(spec, _psf(kernel, (H, W)), 0),
                        flags=cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT)
    return np.clip(restored[:h, :w], 0, 255).astype(np.uint8)


def average(rois: Sequence["np.ndarray"]) -> "np.ndarray | None":
    """Mean of the newest `AVERAGE_MAX` same-sized ROIs, each shifted onto the newest by
    phase correlation (a hand moves the code a few pixels between frames). None when
    fewer than three are given."""
    import cv2
    import numpy as np

    rois = [r for r in rois if r.shape == rois[-1].shape][-AVERAGE_MAX:]
    if len(rois) < 3:
        return None
    ref = rois[-1].astype(np.float32)
    window = cv2.createHanningWindow(ref.shape[::-1], cv2.CV_32F)
    total = ref.copy()
    for roi in rois[:-1]:
        moving = roi.astype(np.float32)
        (dx, dy), _ = cv2.phaseCorrelate(ref, moving, window)
        shift = np.float32([[1, 0, -dx], [0, 1, -dy]])
        total += cv2.warpAffine(moving, shift, ref.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
    return np.clip(total / len(rois), 0, 255).astype(np.uint8)


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
