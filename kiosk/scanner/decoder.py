"""The QR decoder chain for single images: zxing-cpp, then zbar, then enhanced reads of the
regions where a code was located, then whole-frame variants, within a budget.

Order, stopping at the first stage that reads a code:
1. zxing-cpp on the plain frame. It already tries rotations, inverted (dark-mode) codes
   and downscaled copies, and is the fastest engine, so most frames end here.
2. zbar on the plain frame (it reads some blurred or stylised codes zxing misses).
3. The ROI ladder (kiosk.scanner.roi) on each region where a code was located (zxing-cpp's
   position of a code it could not decode, or the texture of a code): other binarizers,
   sharpening, gamma, 2x upscaling, denoising, blind deblurring (the region's motion
   blur measured from its cepstrum, undone by Wiener), averaging with the frames before
   (`decode(image, history)`), CLAHE, defocus deconvolution.
4. Whole-frame variants (other binarizer, sharpening, rescaling, contrast equalisation,
   thresholding, smoothing against moire, inversion): first the cheap zxing-cpp passes,
   then the zbar ones.
Stages 3 and 4 run until `cfg.decoder.budget_ms` is spent. A pass that has started runs
to its end, so a frame may overrun the budget by one pass.

On a live camera the kiosk does not use this chain frame by frame: `StreamDecoder`
(kiosk.scanner.stream) runs stage 1 on every frame and stage 3 beside it, in a worker.

The engine of each code names the pass that read it: "zxing", "zbar", "zxing+sharpen",
"zbar+downscale", "zxing-global" (zxing-cpp with its global-histogram binarizer), ...

No misreads: a text is reported only when the engine's own checks passed (zxing-cpp: the
result is valid, error correction succeeded; zbar: a QR symbol). zbar is run in binary
mode so it hands back the raw bytes instead of guessing a charset (its guess turns UTF-8
Vietnamese or Shift-JIS into the wrong letters); those bytes are accepted when they are
valid UTF-8 (which ASCII is) and dropped otherwise, since zxing-cpp, which honours ECI
and the QR default charsets, has already had its turn on that frame.

    >>> from kiosk.config import load_config
    >>> decoder = Decoder(load_config(None, search=False).decoder)
    >>> result = decoder.decode_path("ticket.png")            # doctest: +SKIP
    >>> [c.text for c in result.codes], result.ms              # doctest: +SKIP
    (['HC1:NCFOXN%TS3DH...'], 3.1)

A Decoder keeps a zbar scanner between calls: use one Decoder per thread.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from kiosk.errors import DecodeError, DeviceClosed

if TYPE_CHECKING:
    import numpy as np

    from kiosk.config import DecoderConfig

__all__ = ["Code", "DecodeResult", "Decoder", "VARIANTS", "TRANSFORMS"]

log = logging.getLogger(__name__)

# The smallest QR (version 1) is 21 modules; fewer pixels than that cannot hold one.
MIN_QR_SIDE_PX = 21
# Images smaller than this are upscaled 2x in the "upscale" variants, larger ones 1.5x,
# and ones larger than UPSCALE_MAX_SIDE not at all (their modules are big enough, and the
# copy alone would eat the budget).
UPSCALE_BELOW_SIDE = 900
UPSCALE_MAX_SIDE = 2000


@dataclass(frozen=True)
class Code:
    """One decoded QR code: its text, which engine read it, and its raw bytes when known."""

    text: str
    engine: str
    raw: bytes | None = None


@dataclass(frozen=True)
class DecodeResult:
    """The codes read in one image (deduplicated by text) and the time it took."""

    codes: tuple[Code, ...]
    ms: float

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.codes]


# -- engines ----------------------------------------------------------------------------

ZXING_BINARIZERS = ("local", "global", "fixed", "bool")


def _zxing_read(image: "np.ndarray", *, binarizer: str = "local", engine: str = "zxing",
                failed: list | None = None) -> list[Code]:
    """zxing-cpp's valid QR reads; with `failed` (a list) the corner points of codes it
    located but could not decode are appended to it (where the ROI ladder looks)."""
    import zxingcpp

    binarizers = {"local": zxingcpp.Binarizer.LocalAverage, "global": zxingcpp.Binarizer.GlobalHistogram,
                  "fixed": zxingcpp.Binarizer.FixedThreshold, "bool": zxingcpp.Binarizer.BoolCast}
    found = zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormat.QRCode, try_rotate=True, try_invert=True,
        try_downscale=True, binarizer=binarizers[binarizer],
        # Plain: the text exactly as encoded (HRI would escape control characters).
        text_mode=zxingcpp.TextMode.Plain, return_errors=failed is not None)
    codes = []
    for b in found:
        if b.format != zxingcpp.BarcodeFormat.QRCode:
            continue
        if b.valid:
            codes.append(Code(text=b.text, engine=engine, raw=bytes(b.bytes)))
        elif failed is not None:
            p = b.position
            failed.append([(p.top_left.x, p.top_left.y), (p.top_right.x, p.top_right.y),
                           (p.bottom_right.x, p.bottom_right.y), (p.bottom_left.x, p.bottom_left.y)])
    return codes


class _Zbar:
    """zbar through pyzbar's ctypes bindings, set up once: QR only, binary output."""

    def __init__(self) -> None:
        from pyzbar import wrapper as zw

        self._zw = zw
        self._scanner = zw.zbar_image_scanner_create()
        zw.zbar_image_scanner_set_config(self._scanner, 0, zw.ZBarConfig.CFG_ENABLE, 0)  # 0: all symbologies
        self._set("qrcode.enable")
        # "binary" exists from zbar 0.23 on; older ones only give converted text.
        self.binary = self._set("qrcode.binary")
        self._get_type = zw.zbar_function("zbar_symbol_get_type", ctypes.c_int, ctypes.POINTER(zw.zbar_symbol))

    def _set(self, setting: str) -> bool:
        zw = self._zw
        sym, cfg, val = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        if zw.zbar_parse_config(setting.encode(), ctypes.byref(sym), ctypes.byref(cfg), ctypes.byref(val)):
            return False
        return zw.zbar_image_scanner_set_config(self._scanner, sym.value, cfg.value, val.value) == 0

    def read(self, image: "np.ndarray", engine: str = "zbar") -> list[Code]:
        import numpy as np

        zw = self._zw
        image = np.ascontiguousarray(image, dtype=np.uint8)
        height, width = image.shape[:2]
        data = image.tobytes()
        img = zw.zbar_image_create()
        try:
            zw.zbar_image_set_format(img, 0x30303859)  # fourcc 'Y800': 8-bit grey
            zw.zbar_image_set_size(img, width, height)
            zw.zbar_image_set_data(img, ctypes.cast(data, ctypes.c_void_p), len(data), None)
            if zw.zbar_scan_image(self._scanner, img) < 0:
                return []
            codes = []
            symbol = zw.zbar_image_first_symbol(img)
            while symbol:
                if self._get_type(symbol) == int(zw.ZBarSymbol.QRCODE):
                    raw = ctypes.string_at(zw.zbar_symbol_get_data(symbol), zw.zbar_symbol_get_data_length(symbol))
                    text = self._text(raw)
                    if text is not None:
                        codes.append(Code(text=text, engine=engine, raw=raw if self.binary else None))
                symbol = zw.zbar_symbol_next(symbol)
            return codes
        finally:
            zw.zbar_image_destroy(img)

    def _text(self, raw: bytes) -> str | None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            log.debug("zbar: dropped a non-UTF-8 payload (%d bytes); charset unknown", len(raw))
            return None
        if not self.binary and not text.isascii():
            return None  # zbar guessed a charset; its guess cannot be trusted
        return text

    def close(self) -> None:
        if self._scanner:
            self._zw.zbar_image_scanner_destroy(self._scanner)
            self._scanner = None

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except (AttributeError, TypeError, OSError):
            pass


# -- preprocessing variants ---------------------------------------------------------------
# Each takes and returns a greyscale uint8 image (None: not useful for this image).

def _clahe(img):
    import cv2

    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(img)


def _equalize(img):
    import cv2

    return cv2.equalizeHist(img)


def _downscale(img):
    import cv2

    if min(img.shape) < 2 * MIN_QR_SIDE_PX:
        return None
    return cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)


def _upscale(img):
    import cv2

    # Small modules: 2x on small images, 1.5x on camera frames (zbar's time grows with pixels).
    if max(img.shape) > UPSCALE_MAX_SIDE:
        return None
    factor = 2.0 if max(img.shape) < UPSCALE_BELOW_SIDE else 1.5
    return cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def _sharpen(img):
    import cv2

    # Unsharp mask: restores module edges softened by motion or focus blur.
    return cv2.addWeighted(img, 2.0, cv2.GaussianBlur(img, (0, 0), 1.0), -1.0, 0)


def _upscale_sharpen(img):
    bigger = _upscale(img)
    return None if bigger is None else _sharpen(bigger)


def _smooth(img):
    import cv2

    # Moiré and sensor noise break module edges into dots; a median filter joins them.
    return cv2.medianBlur(img, 5)


def _otsu(img):
    import cv2

    return cv2.threshold(cv2.GaussianBlur(img, (3, 3), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]


def _adaptive(img):
    import cv2

    block = max(15, (min(img.shape) // 20) | 1)
    return cv2.adaptiveThreshold(img, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 7)


def _invert(img):
    import cv2

    return cv2.bitwise_not(img)  # zbar cannot read light-on-dark codes; zxing inverts itself


def _gamma(img):
    import numpy as np

    # Low light: lift the shadows where a dim code's modules sit.
    lut = (np.power(np.arange(256) / 255.0, 0.5) * 255).astype(np.uint8)
    return lut[img]


TRANSFORMS: dict[str, Callable | None] = {
    "plain": None, "sharpen": _sharpen, "upscale-sharpen": _upscale_sharpen, "clahe": _clahe,
    "adaptive": _adaptive, "otsu": _otsu, "upscale": _upscale, "gamma": _gamma, "equalize": _equalize,
    "smooth": _smooth, "downscale": _downscale, "invert": _invert,
}

# (transform, engine) pairs after the two plain passes, in order. zxing passes cost a few
# milliseconds on a 720p frame and zbar passes 10-60, so all zxing passes come first; within
# each engine the order is by frames rescued per millisecond in bench/decode_bench.py.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("plain", "zxing-global"),
    ("sharpen", "zxing"),
    ("upscale-sharpen", "zxing"),
    ("clahe", "zxing"),
    ("adaptive", "zxing"),
    ("otsu", "zxing"),
    ("sharpen", "zxing-global"),
    ("upscale", "zxing"),
    ("gamma", "zxing"),
    ("equalize", "zxing-global"),
    ("smooth", "zxing"),
    ("downscale", "zbar"),
    ("clahe", "zbar"),
    ("sharpen", "zbar"),
    ("otsu", "zbar"),
    ("invert", "zbar"),
    ("adaptive", "zbar"),
    ("smooth", "zbar"),
    ("gamma", "zbar"),
    ("upscale-sharpen", "zbar"),
)


class Decoder:
    """Reads QR codes in greyscale frames with the configured engines and budget.

    >>> decoder = Decoder(cfg.decoder)                       # doctest: +SKIP
    >>> decoder.decode(frame.image).texts                    # doctest: +SKIP
    ['Nguyễn Văn A']
    """

    def __init__(self, cfg: "DecoderConfig | None" = None) -> None:
        if cfg is None:
            from kiosk.config import DecoderConfig

            cfg = DecoderConfig()
        self.cfg = cfg
        self.engines = tuple(cfg.engines)
        self._zbar = _Zbar() if "zbar" in self.engines else None
        self._closed = False

    def __enter__(self) -> "Decoder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def decode(self, image: "np.ndarray", history: "Sequence[np.ndarray]" = ()) -> DecodeResult:
        """Codes in one frame (greyscale or BGR uint8). Never raises for a frame without codes.

        `history`: frames the same camera took just before this one (oldest first, same
        size); the ladder's averaging steps use them on a dim frame. Only `image` is read:
        a code is reported only when this frame, enhanced, yields it."""
        self._check_open()
        started = time.perf_counter()
        grey = _as_grey(image)
        codes = self._decode(grey, started, [_as_grey(h) for h in history if h.shape[:2] == grey.shape[:2]])
        return DecodeResult(codes=_dedupe(codes), ms=(time.perf_counter() - started) * 1000.0)

    def decode_path(self, path: str | os.PathLike) -> DecodeResult:
        """Codes in an image file; DecodeError when the file is not a readable image."""
        import cv2
        import numpy as np

        self._check_open()
        path = Path(path)
        started = time.perf_counter()
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as exc:
            raise DecodeError(f"{path}: cannot read file ({exc.strerror or exc})") from None
        image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
        if image is None:
            raise DecodeError(f"{path}: not a readable image")
        codes = self._decode(image, started)
        return DecodeResult(codes=_dedupe(codes), ms=(time.perf_counter() - started) * 1000.0)

    def close(self) -> None:
        """Free the zbar scanner. Safe to call more than once."""
        self._closed = True
        if self._zbar is not None:
            self._zbar.close()

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceClosed("decoder is closed")

    # -- the chain --------------------------------------------------------------------

    def _run(self, engine: str, image: "np.ndarray", label: str) -> list[Code]:
        if engine == "zxing" and "zxing" in self.engines:
            return _zxing_read(image, engine=label)
        if engine == "zxing-global" and "zxing" in self.engines:
            return _zxing_read(image, binarizer="global", engine=label)
        if engine == "zbar" and self._zbar is not None:
            return self._zbar.read(image, engine=label)
        return []

    def read_zxing(self, image: "np.ndarray", *, binarizer: str = "local", engine: str = "zxing") -> list[Code]:
        """One zxing-cpp pass (the ladder's reader); nothing when zxing is not configured."""
        if "zxing" not in self.engines:
            return []
        return _zxing_read(image, binarizer=binarizer, engine=engine)

    def read_zbar(self, image: "np.ndarray", engine: str = "zbar") -> list[Code]:
        return self._zbar.read(image, engine=engine) if self._zbar is not None else []

    def read_plain(self, grey: "np.ndarray", failed: list | None = None, *,
                   engines: tuple[str, ...] | None = None) -> list[Code]:
        """The plain engines (default: the configured ones) on the whole frame, in order;
        `failed` collects the corners of codes zxing-cpp located but could not decode."""
        if min(grey.shape) < MIN_QR_SIDE_PX:
            return []
        for engine in self.engines if engines is None else engines:
            if engine == "zxing":
                codes = _zxing_read(grey, failed=failed)
            else:
                codes = self._run(engine, grey, engine)
            if codes:
                return codes
        return []

    def _decode(self, grey: "np.ndarray", started: float, history: "Sequence[np.ndarray]" = ()) -> list[Code]:
        failed: list = []
        codes = self.read_plain(grey, failed)
        if codes or not self.cfg.variants or min(grey.shape) < MIN_QR_SIDE_PX:
            return codes
        budget_s = self.cfg.budget_ms / 1000.0

        def spent() -> bool:
            return time.perf_counter() - started >= budget_s

        # First where a code was located (a failed read, the texture of a code): the
        # region's ladder (deconvolution, contrast, upscaling, binarizers) is cheap there.
        from kiosk.scanner import roi

        for box in roi.locate(grey, failed):
            codes = roi.run_ladder(roi.crop(grey, box), [roi.crop(h, box) for h in history], self.read_zxing,
                                   should_stop=spent,
                                   zbar=self.read_zbar if self._zbar is not None else None)
            if codes:
                return codes
        # Then the whole frame's variants, for codes no region was found for.
        made: dict[str, "np.ndarray"] = {}
        for name, engine in VARIANTS:
            if spent():
                break
            if engine.split("-")[0] not in self.engines:
                continue
            if name not in made:
                transform = TRANSFORMS[name]
                made[name] = grey if transform is None else transform(grey)
            if made[name] is None:
                continue
            codes = self._run(engine, made[name], engine if name == "plain" else f"{engine}+{name}")
            if codes:
                return codes
        return []


def _as_grey(image: "np.ndarray") -> "np.ndarray":
    import numpy as np

    if not isinstance(image, np.ndarray) or image.size == 0:
        raise DecodeError("not an image: expected a non-empty numpy array")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        import cv2

        if image.dtype != np.uint8:
            image = np.clip(image, 0, 255).astype(np.uint8)
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(np.ascontiguousarray(image), code)
    if image.ndim != 2:
        raise DecodeError(f"not an image: array of shape {image.shape}")
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.number) and image.dtype != np.bool_:
            raise DecodeError(f"not an image: array of {image.dtype}")
        image = np.clip(np.nan_to_num(image.astype(np.float64)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def _dedupe(codes: list[Code]) -> tuple[Code, ...]:
    seen: set[str] = set()
    out = []
    for code in codes:
        if code.text not in seen:
            seen.add(code.text)
            out.append(code)
    return tuple(out)
