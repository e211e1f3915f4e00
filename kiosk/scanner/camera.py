"""Camera source on OpenCV's VideoCapture: a device index ("0"), /dev/videoN, a video file
or an rtsp:// URL. Frames come out greyscale. An unplugged camera becomes a fault and is
reopened with backoff; a video file used as a camera plays at `fps` and starts over at its
end (after a short fault), which is how tests and bench rigs stand in for a live sensor."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kiosk.scanner.base import Frame, Source

__all__ = ["CameraSource"]

log = logging.getLogger(__name__)


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
                 backoff_max_s: float = 30.0) -> None:
        # A bare index is a V4L2 node; name it as the technician knows it.
        name = f"/dev/video{int(spec)}" if str(spec).strip().isdigit() else str(spec)
        super().__init__(name=name, backoff_max_s=backoff_max_s)
        self.spec = spec
        self.width, self.height, self.fps = width, height, fps
        self._cap = None
        self._is_file = False
        self._next_due = 0.0

    def _open(self) -> None:
        import cv2

        target = _target(self.spec)
        if isinstance(target, str) and "://" not in target and not os.path.exists(target):
            # OpenCV would only print a warning; say plainly what is missing.
            raise FileNotFoundError(2, "no such device or file")
        cap = cv2.VideoCapture(target)
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
        self._cap = cap
        self._next_due = self._clock()

    def _read_item(self, timeout: float) -> Frame | None:
        if self._is_file:
            # A file reads as fast as the disk; pace it like the camera it stands in for.
            if not self._wait_until(self._next_due, timeout):
                return None
            self._next_due = max(self._next_due, self._clock() - 1.0) + 1.0 / self.fps
        ok, image = self._cap.read()
        if not ok or image is None:
            raise OSError(5, "no frame: unplugged, or end of a video file")
        return self._frame(image)

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
