"""Every source over its real mechanism: image folders and video files through OpenCV,
a serial scanner over a pty pair (unplugged and plugged back), stdin over a pipe, and a
camera whose video file disappears and comes back."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.config import load_config
from kiosk.errors import ConfigError, DeviceClosed
from kiosk.scanner import EndOfStream, Frame, Line, open_source
from kiosk.scanner.base import Backoff
from kiosk.scanner.camera import CameraSource
from kiosk.scanner.replay import ReplaySource
from kiosk.scanner.serialport import SerialSource, split_lines
from kiosk.scanner.textstream import TextStreamSource

BACKOFF_MAX_S = 0.1  # the smallest the config allows: tests wait little between reopens
WAIT_S = 5.0  # ample time for a recovery to show up on a loaded machine


def shade_frame(level: int, size=(160, 120)) -> np.ndarray:
    w, h = size
    return np.full((h, w, 3), level, np.uint8)


def read_until(source, predicate, limit_s: float = WAIT_S):
    """Read items until `predicate(item)` holds; returns that item (fails after `limit_s`)."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        item = source.read(timeout=0.05)
        if predicate(item):
            return item
    pytest.fail(f"condition not met within {limit_s}s; fault={source.fault!r}")


def write_video(path: Path, levels: list[int]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    assert writer.isOpened()
    for level in levels:
        writer.write(shade_frame(level))
    writer.release()
    return path


# -- replay -----------------------------------------------------------------------------------

def test_replay_folder_in_natural_order_skipping_unreadable_files(tmp_path):
    for name, level in (("10.png", 200), ("2.png", 100), ("1.png", 50)):
        cv2.imwrite(str(tmp_path / name), shade_frame(level))
    (tmp_path / "3.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    with ReplaySource(tmp_path, interval_s=0.0) as source:
        frames = [source.read(timeout=1.0) for _ in range(3)]
        assert all(isinstance(f, Frame) for f in frames)
        assert [int(f.image.mean()) for f in frames] == [50, 100, 200]
        assert [f.index for f in frames] == [0, 1, 2]
        assert frames[0].image.ndim == 2 and frames[0].image.dtype == np.uint8
        with pytest.raises(EndOfStream):
            source.read(timeout=1.0)
        with pytest.raises(EndOfStream):
            source.read(timeout=1.0)


def test_replay_loops_when_asked(tmp_path):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), shade_frame(60 + 100 * i))
    with ReplaySource(tmp_path, interval_s=0.0, loop=True) as source:
        levels = [int(source.read(timeout=1.0).image.mean()) for _ in range(5)]
    assert levels == [60, 160, 60, 160, 60]


def test_replay_paces_frames_and_returns_none_meanwhile(tmp_path):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), shade_frame(100))
    with ReplaySource(tmp_path, interval_s=30.0) as source:
        assert isinstance(source.read(timeout=1.0), Frame)
        assert source.read(timeout=0.05) is None  # the next one is 30 s away


def test_replay_video_file_through_opencv(tmp_path):
    video = write_video(tmp_path / "gate.avi", [30, 90, 150, 210])
    with ReplaySource(video, interval_s=0.0) as source:
        levels = [int(round(source.read(timeout=1.0).image.mean())) for _ in range(4)]
        with pytest.raises(EndOfStream):
            source.read(timeout=1.0)
    assert all(abs(a - b) <= 3 for a, b in zip(levels, [30, 90, 150, 210])), levels


def test_replay_of_a_missing_folder_is_a_fault_until_it_appears(tmp_path):
    folder = tmp_path / "frames"
    with ReplaySource(folder, interval_s=0.0, backoff_max_s=BACKOFF_MAX_S) as source:
        assert source.read(timeout=0.1) is None
        assert "replay fault" in source.fault and str(folder) in source.fault
        folder.mkdir()
        cv2.imwrite(str(folder / "1.png"), shade_frame(80))
        frame = read_until(source, lambda item: item is not None)
        assert int(frame.image.mean()) == 80
        assert source.fault is None


# -- base behaviour ---------------------------------------------------------------------------

def test_closed_source_raises_and_close_is_idempotent(tmp_path):
    cv2.imwrite(str(tmp_path / "1.png"), shade_frame(10))
    with ReplaySource(tmp_path, interval_s=0.0) as source:
        pass
    source.close()
    with pytest.raises(DeviceClosed):
        source.read(timeout=0.1)
    with pytest.raises(DeviceClosed):
        with source:
            pass


def test_backoff_doubles_up_to_the_cap_and_resets():
    b = Backoff(0.25, 2.0)
    assert [b.next() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    b.reset()
    assert b.next() == 0.25


def test_open_source_chooses_by_kind(tmp_path):
    cv2.imwrite(str(tmp_path / "1.png"), shade_frame(10))
    cfg = load_config(None, search=False)
    with open_source(cfg, demo_dir=tmp_path) as source:
        assert isinstance(source, ReplaySource) and source.path == tmp_path
    with pytest.raises(ConfigError):
        open_source(cfg)  # replay with neither replay_path nor demo frames
    for kind, cls in (("camera", CameraSource), ("serial", SerialSource), ("stdin", TextStreamSource)):
        source = open_source(load_config(None, overrides={"scanner.kind": kind}, search=False))
        assert isinstance(source, cls)
        source.close()


# -- camera -----------------------------------------------------------------------------------

def test_camera_fault_and_recovery_when_its_video_disappears(tmp_path):
    video = write_video(tmp_path / "cam.avi", [40, 120])
    hidden = tmp_path / "unplugged.avi"
    with CameraSource(str(video), fps=100, backoff_max_s=BACKOFF_MAX_S) as cam:
        frame = read_until(cam, lambda item: item is not None)
        assert frame.image.ndim == 2 and frame.image.shape == (120, 160)
        assert cam.fault is None
        video.rename(hidden)  # "unplug": the device node is gone
        read_until(cam, lambda item: cam.fault is not None)
        assert cam.fault.startswith("camera fault: ") and str(video) in cam.fault
        hidden.rename(video)  # plugged back in
        frame = read_until(cam, lambda item: item is not None)
        assert cam.fault is None


def test_camera_that_never_opens_reports_a_fault():
    with CameraSource("/dev/video99", backoff_max_s=BACKOFF_MAX_S) as cam:
        assert cam.fault is not None  # known as soon as the source is entered
        assert cam.read(timeout=0.1) is None
        assert cam.fault == "camera fault: /dev/video99 cannot be opened (no such device or file)"


# -- serial over a pty ------------------------------------------------------------------------

class Pty:
    """A pseudo-terminal pair; `link` stands for the udev name (/dev/qrscanner)."""

    def __init__(self, link: Path) -> None:
        self.master, slave = os.openpty()
        self.slave_name = os.ttyname(slave)
        os.close(slave)  # the pts stays while the master is open; the source opens it itself
        if link.is_symlink():
            link.unlink()
        link.symlink_to(self.slave_name)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        os.close(self.master)


def test_serial_lines_with_any_terminator_and_utf8(tmp_path):
    link = tmp_path / "qrscanner"
    pty = Pty(link)
    try:
        with SerialSource(str(link), baud=9600, backoff_max_s=BACKOFF_MAX_S) as src:
            assert src.read(timeout=0.2) is None and src.fault is None
            pty.send("HC1:ABC\r\n001089012345||Nguyễn Thị Nữ|01011990|Nữ\rX-3\n".encode())
            pty.send(b"SPLIT-")
            texts = [read_until(src, lambda i: i is not None).text for _ in range(3)]
            assert texts == ["HC1:ABC", "001089012345||Nguyễn Thị Nữ|01011990|Nữ", "X-3"]
            assert src.read(timeout=0.1) is None  # "SPLIT-" has no line end yet
            pty.send(b"LINE\r\n")
            assert read_until(src, lambda i: i is not None).text == "SPLIT-LINE"
            pty.send(b"Nguy\xe1\xbb\x85n \xff\xfe\n")  # a scanner set to the wrong code page
            line = read_until(src, lambda i: i is not None)
            assert isinstance(line, Line) and line.text == "Nguyễn \ufffd\ufffd"
    finally:
        pty.unplug()


def test_serial_unplug_and_replug(tmp_path):
    link = tmp_path / "qrscanner"
    pty = Pty(link)
    with SerialSource(str(link), backoff_max_s=BACKOFF_MAX_S) as src:
        assert src.read(timeout=0.1) is None  # opens the port (pyserial drops what came before)
        pty.send(b"FIRST\r\n")
        assert read_until(src, lambda i: i is not None).text == "FIRST"
        pty.unplug()
        read_until(src, lambda i: src.fault is not None)
        assert src.fault.startswith("serial fault: ") and str(link) in src.fault
        assert src.read(timeout=0.2) is None
        replugged = Pty(link)  # a new device node behind the same udev name
        try:
            read_until(src, lambda i: src.fault is None)
            replugged.send(b"SECOND\n")
            assert read_until(src, lambda i: i is not None).text == "SECOND"
        finally:
            replugged.unplug()


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
                        min_size=1, max_size=30), max_size=8),
       st.lists(st.sampled_from([b"\r", b"\n", b"\r\n"]), min_size=8, max_size=8),
       st.lists(st.integers(1, 7), min_size=1, max_size=20))
def test_split_lines_finds_every_payload_however_the_bytes_are_chunked(payloads, ends, cuts):
    stream = b"".join(p.encode() + e for p, e in zip(payloads, ends))
    lines, rest, pos = [], b"", 0
    for cut in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        if pos >= len(stream):
            break
        done, rest = split_lines(rest + stream[pos:pos + cut])
        lines += done
        pos += cut
    done, rest = split_lines(rest + stream[pos:])
    lines += done
    assert [line.decode() for line in lines] == payloads
    assert rest == b""


# -- stdin / text streams ---------------------------------------------------------------------

def test_text_stream_over_a_real_pipe():
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, TextStreamSource(reader, name="stdin") as src:
        assert src.read(timeout=0.1) is None
        os.write(write_fd, "HD1:XYZ\r\n\nĐỗ Thị Hằng\n".encode())
        assert src.read(timeout=WAIT_S).text == "HD1:XYZ"
        assert src.read(timeout=WAIT_S).text == "Đỗ Thị Hằng"
        os.close(write_fd)
        with pytest.raises(EndOfStream):
            src.read(timeout=WAIT_S)


def test_text_stream_accepts_str_streams():
    with TextStreamSource(io.StringIO("A\nB")) as src:
        assert [src.read(1.0).text, src.read(1.0).text] == ["A", "B"]
        with pytest.raises(EndOfStream):
            src.read(1.0)


def test_a_second_reader_of_the_same_scanner_is_refused_not_sharing_codes(tmp_path):
    link = tmp_path / "qrscanner"
    pty = Pty(link)
    try:
        with SerialSource(str(link), backoff_max_s=BACKOFF_MAX_S) as first, \
                SerialSource(str(link), backoff_max_s=BACKOFF_MAX_S) as second:
            assert first.read(timeout=0.1) is None and first.fault is None
            assert second.read(timeout=0.1) is None
            assert second.fault == f"serial fault: {link} cannot be opened (in use by another program)"
            pty.send(b"ONLY-ONCE\n")
            assert read_until(first, lambda i: i is not None).text == "ONLY-ONCE"
    finally:
        pty.unplug()


def test_close_from_another_thread_ends_a_waiting_read(tmp_path):
    import threading

    link = tmp_path / "qrscanner"
    pty = Pty(link)
    try:
        with SerialSource(str(link), backoff_max_s=BACKOFF_MAX_S) as src:
            threading.Timer(0.2, src.close).start()
            with pytest.raises(DeviceClosed):
                while True:  # reads return None until the close lands, then refuse
                    assert src.read(timeout=0.05) is None
    finally:
        pty.unplug()
