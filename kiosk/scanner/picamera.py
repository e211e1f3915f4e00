"""The Raspberry Pi camera module through picamera2 (libcamera), behind the Source interface.

Same arguments and behaviour as `CameraSource`: greyscale frames of the configured size
(the Y plane of the sensor's YUV420 stream, so no colour conversion is paid), exposure,
gain and focus from `CameraControls` (libcamera's AeEnable, ExposureTime, AnalogueGain,
AfMode, LensPosition), a missing or busy camera is a fault reopened with backoff. The
frame buffer is one deep (`buffer_count=2`, the minimum libcamera allows), so a reader
that falls behind gets the newest frame, never a backlog. picamera2 is imported only when
the camera opens: where it is not installed the source reports a camera fault.

    >>> cam = PiCameraSource("0", width=1280, height=720, fps=30)  # doctest: +SKIP
    >>> cam.read(timeout=1.0).image.shape                          # doctest: +SKIP
    (720, 1280)
"""

from __future__ import annotations

import logging
from typing import Any

from kiosk.scanner.base import Frame, Source
from kiosk.scanner.camera import CameraControls

__all__ = ["PiCameraSource", "libcamera_controls"]

log = logging.getLogger(__name__)

#: libcamera needs at least two buffers; more would queue stale frames.
BUFFER_COUNT = 2


def libcamera_controls(controls: CameraControls, fps: int) -> dict[str, Any]:
    """The picamera2 `set_controls()` mapping for `controls`.

    >>> libcamera_controls(CameraControls.preset("phone-screen"), 30)["ExposureTime"]
    8000
    """
    out: dict[str, Any] = {"FrameDurationLimits": (int(1e6 / fps), int(1e6 / fps))}
    out["AeEnable"] = controls.auto_exposure
    if not controls.auto_exposure and controls.exposure_ms is not None:
        out["ExposureTime"] = int(controls.exposure_ms * 1000)
    if controls.gain is not None:
        out["AnalogueGain"] = float(controls.gain)
    # AfMode: 0 manual, 2 continuous (libcamera's enum; cameras without focus ignore it).
    out["AfMode"] = 2 if controls.autofocus else 0
    if not controls.autofocus and controls.focus is not None:
        out["LensPosition"] = float(controls.focus)
    return out


class PiCameraSource(Source):
    """Frames from a Pi camera module (`spec`: the camera number, "0" for the first)."""

    kind = "camera"

    def __init__(self, spec: str = "0", *, width: int = 1280, height: int = 720, fps: int = 15,
                 controls: CameraControls | None = None, backoff_max_s: float = 30.0) -> None:
        num = int(spec) if str(spec).strip().isdigit() else 0
        super().__init__(name=f"picamera2 camera {num}", backoff_max_s=backoff_max_s)
        self.camera_num = num
        self.width, self.height, self.fps = width, height, fps
        self.controls = controls or CameraControls()
        self.controls_applied: dict[str, Any] = {}
        self._cam: Any = None

    def _open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise OSError(19, f"picamera2 cannot load ({exc})") from None
        try:
            cam = Picamera2(self.camera_num)
        except (IndexError, RuntimeError) as exc:  # no such camera, or another process has it
            raise OSError(16, str(exc) or "not available or busy") from None
        try:
            config = cam.create_video_configuration(main={"size": (self.width, self.height), "format": "YUV420"},
                                                    buffer_count=BUFFER_COUNT)
            cam.configure(config)
            wanted = libcamera_controls(self.controls, self.fps)
            supported = getattr(cam, "camera_controls", {}) or {}
            # Cameras without autofocus have no AfMode: leave out what the sensor lacks.
            applied = {k: v for k, v in wanted.items() if not supported or k in supported}
            cam.set_controls(applied)
            self.controls_applied = applied
            cam.start()
        except RuntimeError as exc:
            cam.close()
            raise OSError(5, str(exc)) from None
        self._cam = cam

    def _read_item(self, timeout: float) -> Frame | None:
        try:
            yuv = self._cam.capture_array("main")
        except RuntimeError as exc:
            raise OSError(5, str(exc)) from None
        # YUV420: the first `height` rows are the luma plane, which is the grey frame.
        return self._frame(yuv[: self.height, : self.width])

    def _release(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
            finally:
                self._cam.close()
                self._cam = None
