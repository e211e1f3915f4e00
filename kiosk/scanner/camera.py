"""Camera source on OpenCV's VideoCapture: a device index ("0"), /dev/videoN, a video file
or an rtsp:// URL. Frames come out greyscale. An unplugged camera becomes a fault and is
reopened with backoff; a video file used as a camera plays at `fps` and starts over at its
end (after a short fault), which is how tests and bench rigs stand in for a live sensor.

A video file stands in for a live sensor in one more way: a live camera (buffer of one)
keeps only its newest frame, so a reader that falls behind skips frames rather than
working through a backlog. The file source does the same: frames whose time has passed
by more than a frame period are grabbed and dropped (counted in `skipped`).

Exposure, gain and focus come from config (`CameraControls.from_config`) and are set
through OpenCV's V4L2 controls when a live device opens; `controls_applied` says what
the driver took (`set()` accepted and `get()` read back)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kiosk.scanner.base import Frame, Source

__all__ = ["CameraControls", "CameraSource", "PRESETS"]

log = logging.getLogger(__name__)

#: V4L2's exposure_auto menu as OpenCV's V4L2 backend passes it through.
V4L2_EXPOSURE_MANUAL = 1
V4L2_EXPOSURE_APERTURE_PRIORITY = 3
#: V4L2's exposure_absolute counts in units of 100 microseconds.
V4L2_EXPOSURE_UNITS_PER_MS = 10.0
#: A phone screen is its own light: 8 ms is bright enough at full backlight, and short
#: enough that a trembling hand (a few hundred pixels a second) smears under 3 pixels,
#: and the white screen around the code does not blow out.
PHONE_SCREEN_EXPOSURE_MS = 8.0


@dataclass(frozen=True)
class CameraControls:
    """What to ask of the sensor. None leaves a control to the driver.

    >>> CameraControls.preset("phone-screen").exposure_ms
    8.0
    """

    auto_exposure: bool = True
    exposure_ms: float | None = None
    gain: float | None = None
    autofocus: bool = True
    focus: float | None = None

    @classmethod
    def preset(cls, name: str) -> "CameraControls":
        return PRESETS[name]

    @classmethod
    def from_config(cls, sc: Any) -> "CameraControls":
        """From `cfg.scanner`: the preset, with any explicit value over it."""
        base = PRESETS[sc.camera_preset]
        exposure = sc.camera_exposure_ms or base.exposure_ms
        return cls(auto_exposure=exposure is None, exposure_ms=exposure,
                   gain=sc.camera_gain or base.gain,
                   autofocus=sc.camera_focus < 0, focus=None if sc.camera_focus < 0 else sc.camera_focus)


PRESETS = {
    "auto": CameraControls(),
    "phone-screen": CameraControls(auto_exposure=False, exposure_ms=PHONE_SCREEN_EXPOSURE_MS),
    # manual: nothing but what the config says (from_config fills it in).
    "manual": CameraControls(),
}


def v4l2_settings(controls: CameraControls) -> list[tuple[str, float]]:
    """The (OpenCV property name, value) pairs to set, in the order drivers need them
    (auto exposure off before an exposure time is accepted; autofocus off before focus)."""
    out: list[tuple[str, float]] = []
    if controls.auto_exposure:
        out.append(("CAP_PROP_AUTO_EXPOSURE", V4L2_EXPOSURE_APERTURE_PRIORITY))
    else:
        out.append(("CAP_PROP_AUTO_EXPOSURE", V4L2_EXPOSURE_MANUAL))
        if controls.exposure_ms is not None:
            out.append(("CAP_PROP_EXPOSURE", controls.exposure_ms * V4L2_EXPOSURE_UNITS_PER_MS))
    if controls.gain is not None:
        out.append(("CAP_PROP_GAIN", controls.gain))
    out.append(("CAP_PROP_AUTOFOCUS", 1 if controls.autofocus else 0))
    if not controls.autofocus and controls.focus is not None:
        out.append(("CAP_PROP_FOCUS", controls.focus))
    return out


def _target(spec: str) -> int | str:
    """"0" -> 0 (a V4L2 index); anything else is a path or URL for OpenCV."""
    return int(spec) if spec.strip().isdigit() else spec


class CameraSource(Source):
    """Frames from one camera.

    >>> cam = CameraSource("/dev/video0", width=1280, height=720, fps=15)  # doctest: +SKIP
    >>> cam.read(timeout=1.0).image.shape                                  # doctest: +SKIP
    (720, 1280)
    """

    kind = "camera"

    def __init__(self, spec: str, *, width: int = 1280, height: int = 720, fps: int = 15,
                 backoff_max_s: float = 30.0, controls: CameraControls | None = None,
                 capture_factory: Callable[[Any], Any] | None = None) -> None:
        # A bare index is a V4L2 node; name it as the technician knows it.
        name = f"/dev/video{int(spec)}" if str(spec).strip().isdigit() else str(spec)
        super().__init__(name=name, backoff_max_s=backoff_max_s)
        self.spec = spec
        self.width, self.height, self.fps = width, height, fps
        self.controls = controls or CameraControls()
        # cv2.VideoCapture unless a twin is given (tests: a capture that records set()).
        self._capture_factory = capture_factory
        self.controls_applied: dict[str, tuple[float, float, bool]] = {}
        self.skipped = 0
        self._cap = None
        self._is_file = False
        self._started = 0.0   # a file: when its frame 0 was due
        self._position = 0    # a file: the index of the frame its next read() returns

    def _open(self) -> None:
        import cv2

        target = _target(self.spec)
        if self._capture_factory is None and isinstance(target, str) and "://" not in target \
                and not os.path.exists(target):
            # OpenCV would only print a warning; say plainly what is missing.
            raise FileNotFoundError(2, "no such device or file")
        cap = (self._capture_factory or cv2.VideoCapture)(target)
        if not cap.isOpened():
            cap.release()
            raise OSError(5, "not available or busy")
        self._is_file = isinstance(target, str) and Path(target).is_file()
        if not self._is_file:
            # Live devices: ask for the configured mode; the driver may pick the nearest.
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            # Keep only the newest frame: a queue of stale frames delays every verdict.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            self._apply_controls(cap)
        self._cap = cap
        self._started = self._clock()
        self._position = 0

    def _apply_controls(self, cap: Any) -> None:
        import cv2

        self.controls_applied = {}
        for name, value in v4l2_settings(self.controls):
            prop = getattr(cv2, name)
            accepted = bool(cap.set(prop, value))
            got = float(cap.get(prop))
            self.controls_applied[name] = (float(value), got, accepted)
            if not accepted:
                log.warning("%s: the driver refused %s = %s (it reports %s)", self.name, name, value, got)

    def _read_item(self, timeout: float) -> Frame | None:
        if self._is_file:
            # A file reads as fast as the disk; pace it like the camera it stands in for:
            # frame k is due at open + k / fps. A reader that falls behind gets the newest
            # due frame, the ones before it are grabbed and dropped, as a live sensor
            # would have overwritten them; the schedule never drifts.
            if not self._wait_until(self._started + self._position / self.fps, timeout):
                return None
            newest = int((self._clock() - self._started) * self.fps)
            while self._position < newest:
                if not self._cap.grab():
                    raise OSError(5, "no frame: unplugged, or end of a video file")
                self.skipped += 1
                self._position += 1
            self._position += 1
        ok, image = self._cap.read()
        if not ok or image is None:
            raise OSError(5, "no frame: unplugged, or end of a video file")
        return self._frame(image)

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
