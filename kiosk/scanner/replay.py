"""Replay source: a folder of images (natural sort order: 2.png before 10.png) or a video
file, one frame every `interval_s`, read through OpenCV exactly as a camera frame would be.
Without `loop` it raises EndOfStream after the last frame. An image that cannot be read is
skipped with a warning (a bad file must not stop the kiosk)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from kiosk.scanner.base import EndOfStream, Frame, Source

__all__ = ["ReplaySource", "IMAGE_SUFFIXES"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"})


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ReplaySource(Source):
    """Frames from a folder of images or a video file, paced like a camera.

    >>> with ReplaySource(Path("frames"), interval_s=0.4) as src:   # doctest: +SKIP
    ...     frame = src.read(timeout=1.0)
    """

    kind = "replay"

    def __init__(self, path: Path | str, *, interval_s: float = 0.4, loop: bool = False,
                 backoff_max_s: float = 30.0) -> None:
        super().__init__(name=str(path), backoff_max_s=backoff_max_s)
        self.path = Path(path)
        self.interval_s = interval_s
        self.loop = loop
        self._files: list[Path] = []
        self._cap = None
        self._pos = 0
        self._next_due = 0.0

    def _open(self) -> None:
        import cv2

        if self.path.is_dir():
            self._files = sorted((p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                                 key=_natural_key)
            if not self._files:
                raise FileNotFoundError(2, "has no images")
        elif self.path.is_file():
            cap = cv2.VideoCapture(str(self.path))
            if not cap.isOpened():
                cap.release()
                raise OSError(5, "is not a readable video")
            self._cap = cap
        else:
            raise FileNotFoundError(2, "does not exist")
        self._pos = 0
        self._next_due = self._clock()

    def _next_image(self):
        import cv2

        if self._cap is not None:
            ok, image = self._cap.read()
            if not ok:
                if not self.loop or self._pos == 0:
                    raise EndOfStream(f"replay {self.path}: end of video")
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                self._pos = 0
                ok, image = self._cap.read()
                if not ok:
                    raise EndOfStream(f"replay {self.path}: end of video")
            self._pos += 1
            return image
        skipped = 0
        while True:
            if self._pos >= len(self._files):
                if not self.loop or skipped >= len(self._files):
                    raise EndOfStream(f"replay {self.path}: no more images")
                self._pos = 0
            path = self._files[self._pos]
            self._pos += 1
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is not None:
                return image
            skipped += 1
            log.warning("replay: skipping %s: not a readable image", path)

    def _read_item(self, timeout: float) -> Frame | None:
        if not self._wait_until(self._next_due, timeout):
            return None
        image = self._next_image()
        self._next_due = self._clock() + self.interval_s
        return self._frame(image)

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
