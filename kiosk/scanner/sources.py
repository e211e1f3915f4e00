"""`open_source(cfg)`: the source `scanner.kind` names (camera, picamera2, replay, serial,
evdev, stdin). Apart from kiosk.scanner.base so that the backends import the base and only this
module imports the backends (no import cycle); each backend's library loads only here,
when it is chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.scanner.base import Source

if TYPE_CHECKING:
    from kiosk.config import Config

__all__ = ["open_source"]


def open_source(cfg: "Config", *, demo_dir: Path | None = None) -> Source:
    """The source `cfg.scanner.kind` names. `demo_dir` is the replay folder used when
    `scanner.replay_path` is empty (the demo passes its generated frames)."""
    sc = cfg.scanner
    if sc.kind == "camera":
        from kiosk.scanner.camera import CameraControls, CameraSource

        controls = CameraControls.from_config(sc)
        if sc.camera_backend == "picamera2":
            from kiosk.scanner.picamera import PiCameraSource

            return PiCameraSource(sc.camera, width=sc.width, height=sc.height, fps=sc.fps,
                                  controls=controls, backoff_max_s=sc.reopen_backoff_max_s)
        return CameraSource(sc.camera, width=sc.width, height=sc.height, fps=sc.fps,
                            backoff_max_s=sc.reopen_backoff_max_s, controls=controls)
    if sc.kind == "replay":
        from kiosk.scanner.replay import ReplaySource

        path = Path(sc.replay_path) if sc.replay_path else demo_dir
        if path is None:
            from kiosk.errors import ConfigError

            raise ConfigError(f"{cfg.source}: key 'scanner.replay_path' is empty and no demo frames "
                              "were given; expected a folder of images or a video file")
        return ReplaySource(path, interval_s=sc.replay_interval_s, loop=sc.replay_loop,
                            backoff_max_s=sc.reopen_backoff_max_s)
    if sc.kind == "serial":
        from kiosk.scanner.serialport import SerialSource

        return SerialSource(sc.serial_port, baud=sc.serial_baud, backoff_max_s=sc.reopen_backoff_max_s)
    if sc.kind == "evdev":
        from kiosk.scanner.evdevsource import EvdevSource

        return EvdevSource(sc.evdev_device, backoff_max_s=sc.reopen_backoff_max_s)
    if sc.kind == "stdin":
        import sys

        from kiosk.scanner.textstream import TextStreamSource

        return TextStreamSource(sys.stdin, name="stdin")
    raise ValueError(f"unknown scanner.kind {sc.kind!r}")  # config validation prevents this
