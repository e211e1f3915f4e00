"""One contract for every camera backend: OpenCV on a video file, OpenCV on a live V4L2
device (a capture twin here: no camera on CI), and picamera2 (skipped where picamera2
cannot load, as the pin backends' contract skips RPi.GPIO and lgpio off a Pi). Then the
exposure, gain and focus controls from config, as the driver receives them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.config import load_config
from kiosk.errors import ConfigError, DeviceClosed
from kiosk.scanner.sources import open_source
from kiosk.scanner.camera import CameraControls, CameraSource
from kiosk.scanner.picamera import PiCameraSource, libcamera_controls

W, H, FPS = 320, 240, 30


class V4L2Twin:
    """A live V4L2 camera as OpenCV's VideoCapture shows it: it takes and reports
    controls like a UVC webcam driver (exposure, gain, autofocus), refuses the ones
    the sensor lacks (`lacks`), and delivers numbered colour frames."""

    def __init__(self, target, *, lacks: tuple[str, ...] = ()) -> None:
        self.target = target
        self.calls: list[tuple[str, float]] = []
        self.values: dict[int, float] = {}
        self.lacks = {getattr(cv2, name) for name in lacks}
        self.frames = 0
        self.released = False

    def isOpened(self) -> bool:
        return not self.released

    def set(self, prop: int, value: float) -> bool:
        name = next(n for n in dir(cv2) if n.startswith("CAP_PROP_") and getattr(cv2, n) == prop)
        self.calls.append((name, value))
        if prop in self.lacks:
            return False
        if prop == cv2.CAP_PROP_EXPOSURE and self.values.get(cv2.CAP_PROP_AUTO_EXPOSURE) != 1:
            return False  # UVC drivers refuse an exposure time while auto exposure is on
        self.values[prop] = value
        return True

    def get(self, prop: int) -> float:
        return self.values.get(prop, -1.0)

    def grab(self) -> bool:
        self.frames += 1
        return not self.released

    def read(self):
        self.frames += 1
        img = np.full((int(self.values.get(cv2.CAP_PROP_FRAME_HEIGHT, H)),
                       int(self.values.get(cv2.CAP_PROP_FRAME_WIDTH, W)), 3), self.frames % 256, np.uint8)
        return (not self.released), img

    def release(self) -> None:
        self.released = True


def write_video(path: Path, n: int = 20) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((H, W, 3), 10 * i % 256, np.uint8))
    writer.release()
    return path


BACKENDS = ["opencv-file", "opencv-v4l2", "picamera2"]


@pytest.fixture(params=BACKENDS)
def camera(request, tmp_path):
    controls = CameraControls.preset("phone-screen")
    if request.param == "opencv-file":
        source = CameraSource(str(write_video(tmp_path / "cam.avi")), width=W, height=H, fps=FPS, controls=controls)
    elif request.param == "opencv-v4l2":
        source = CameraSource("0", width=W, height=H, fps=FPS, controls=controls, capture_factory=V4L2Twin)
    else:
        try:
            import picamera2  # noqa: F401
        except ImportError as exc:
            pytest.skip(f"picamera2 cannot load here: {exc}")
        source = PiCameraSource("0", width=W, height=H, fps=FPS, controls=controls)
    with source:
        if source.fault and request.param == "picamera2":
            pytest.skip(f"no Pi camera here: {source.fault}")
        yield source


def test_contract_frames_are_greyscale_of_the_configured_size(camera):
    frames = [camera.read(timeout=2.0) for _ in range(3)]
    assert all(f is not None for f in frames), camera.fault
    for f in frames:
        assert f.image.shape == (H, W) and f.image.dtype == np.uint8
    assert [f.index for f in frames] == [0, 1, 2]
    assert camera.fault is None


def test_contract_close_is_idempotent_and_use_after_close_fails(camera):
    camera.close()
    camera.close()
    assert camera.closed
    with pytest.raises(DeviceClosed):
        camera.read(timeout=0.1)


def test_contract_a_missing_camera_is_a_fault_not_an_exception(tmp_path):
    for source in (CameraSource(str(tmp_path / "gone.avi"), width=W, height=H, fps=FPS),
                   PiCameraSource("7", width=W, height=H, fps=FPS)):
        with source:
            assert source.read(timeout=0.05) is None
            assert source.fault and source.fault.startswith("camera fault: ")


# -- controls ---------------------------------------------------------------------------------

def test_phone_screen_preset_turns_auto_exposure_off_then_sets_8_ms():
    twin: list[V4L2Twin] = []
    source = CameraSource("0", width=W, height=H, fps=FPS, controls=CameraControls.preset("phone-screen"),
                          capture_factory=lambda t: twin.append(V4L2Twin(t)) or twin[-1])
    with source:
        assert source.read(timeout=1.0) is not None
    calls = [c for c in twin[0].calls if c[0] in ("CAP_PROP_AUTO_EXPOSURE", "CAP_PROP_EXPOSURE")]
    assert calls == [("CAP_PROP_AUTO_EXPOSURE", 1), ("CAP_PROP_EXPOSURE", 80.0)]   # 8 ms in 100 us units
    assert source.controls_applied["CAP_PROP_EXPOSURE"] == (80.0, 80.0, True)
    assert ("CAP_PROP_BUFFERSIZE", 1) in twin[0].calls


def test_manual_controls_from_config_reach_the_driver_and_refusals_are_reported(tmp_path):
    cfg = load_config(None, search=False, overrides={
        "scanner.kind": "camera", "scanner.camera_preset": "manual", "scanner.camera_exposure_ms": 4.0,
        "scanner.camera_gain": 12.0, "scanner.camera_focus": 30.0})
    controls = CameraControls.from_config(cfg.scanner)
    assert controls == CameraControls(auto_exposure=False, exposure_ms=4.0, gain=12.0, autofocus=False, focus=30.0)
    twins: list[V4L2Twin] = []
    source = CameraSource("0", width=W, height=H, fps=FPS, controls=controls,
                          capture_factory=lambda t: twins.append(V4L2Twin(t, lacks=("CAP_PROP_FOCUS",))) or twins[-1])
    with source:
        source.read(timeout=1.0)
    applied = source.controls_applied
    assert applied["CAP_PROP_EXPOSURE"] == (40.0, 40.0, True)
    assert applied["CAP_PROP_GAIN"] == (12.0, 12.0, True)
    assert applied["CAP_PROP_AUTOFOCUS"] == (0.0, 0.0, True)
    assert applied["CAP_PROP_FOCUS"][2] is False      # a fixed-focus sensor: refused, and said so
    names = [c[0] for c in twins[0].calls]
    assert names.index("CAP_PROP_AUTOFOCUS") < names.index("CAP_PROP_FOCUS")


def test_auto_preset_leaves_exposure_and_gain_to_the_driver():
    twins: list[V4L2Twin] = []
    with CameraSource("0", width=W, height=H, fps=FPS, controls=CameraControls.preset("auto"),
                      capture_factory=lambda t: twins.append(V4L2Twin(t)) or twins[-1]) as source:
        source.read(timeout=1.0)
    names = [c[0] for c in twins[0].calls]
    assert "CAP_PROP_EXPOSURE" not in names and "CAP_PROP_GAIN" not in names
    assert ("CAP_PROP_AUTOFOCUS", 1) in twins[0].calls


def test_a_video_file_gets_no_sensor_controls(tmp_path):
    with CameraSource(str(write_video(tmp_path / "v.avi")), width=W, height=H, fps=FPS,
                      controls=CameraControls.preset("phone-screen")) as source:
        assert source.read(timeout=1.0) is not None
        assert source.controls_applied == {}


def test_libcamera_controls_of_the_presets():
    assert libcamera_controls(CameraControls.preset("phone-screen"), 30) == {
        "FrameDurationLimits": (33333, 33333), "AeEnable": False, "ExposureTime": 8000, "AfMode": 2}
    manual = CameraControls(auto_exposure=False, exposure_ms=5.0, gain=2.0, autofocus=False, focus=4.0)
    got = libcamera_controls(manual, 15)
    assert got["ExposureTime"] == 5000 and got["AnalogueGain"] == 2.0
    assert got["AfMode"] == 0 and got["LensPosition"] == 4.0


def test_open_source_picks_the_backend_and_controls_from_config():
    cfg = load_config(None, search=False, overrides={"scanner.kind": "camera", "scanner.camera": "/dev/video93"})
    source = open_source(cfg)
    assert isinstance(source, CameraSource)
    assert source.controls == CameraControls.preset("phone-screen")
    cfg = load_config(None, search=False, overrides={"scanner.kind": "camera", "scanner.camera_backend": "picamera2"})
    assert isinstance(open_source(cfg), PiCameraSource)


@pytest.mark.parametrize("key,value,allowed", [
    ("scanner.camera_preset", "bright", "'auto', 'phone-screen', 'manual'"),
    ("scanner.camera_exposure_ms", 5000.0, "from 0.0 to 1000.0"),
    ("scanner.camera_backend", "v4l", "'opencv', 'picamera2'"),
])
def test_bad_camera_config_names_the_key_and_what_is_allowed(tmp_path, key, value, allowed):
    section, name = key.split(".")
    path = tmp_path / "kiosk.toml"
    path.write_text(f"[{section}]\n{name} = {value!r}\n".replace("'", '"'), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and key in str(err.value) and allowed in str(err.value)


def test_a_file_camera_that_falls_behind_drops_frames_like_a_live_one(tmp_path):
    now = [0.0]
    source = CameraSource(str(write_video(tmp_path / "v.avi", n=30)), width=W, height=H, fps=FPS)
    source._clock = lambda: now[0]
    with source:
        first = source.read(timeout=0.0)
        now[0] += 10 / FPS + 0.001          # the reader was busy for ten frame periods
        second = source.read(timeout=0.0)
    assert first is not None and second is not None
    assert source.skipped == 9               # the newest frame, not the oldest of a backlog
    assert abs(int(second.image[0, 0]) - 100) <= 3   # frame 10 of the video (level 10 * i)
