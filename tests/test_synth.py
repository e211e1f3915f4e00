"""Synthetic gate-camera frames: deterministic per seed, and the demo's frames read back
to the payloads they were made from (the demo depends on it)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kiosk.config import DecoderConfig
from kiosk.scanner.decoder import Decoder
from kiosk.demo.frames import CODE_KINDS, KINDS, render_scene, synthetic_set, write_demo_frames

CCCD = "001089012345||Nguyễn Thị Nữ|01011990|Nữ|Số 12, Hà Nội|01012022"
HC1 = "HC1:6BFOXN%TSMAHN-HCPFU6MGBK0C:K3J5L:0LMM8W$3L7DTKHQ9F/ST1:0VTFE0YV-F8$D:KF%9EPP"


def test_same_seed_same_picture_other_seed_other_picture():
    a = render_scene(HC1, kind="tilt", seed=7, size=(640, 360))
    b = render_scene(HC1, kind="tilt", seed=7, size=(640, 360))
    c = render_scene(HC1, kind="tilt", seed=8, size=(640, 360))
    assert a.shape == (360, 640, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unknown_kind_and_missing_payload_are_refused():
    with pytest.raises(ValueError, match="unknown scene kind"):
        render_scene(HC1, kind="sunset", seed=1)
    with pytest.raises(ValueError):
        render_scene("", kind="phone", seed=1)


def test_demo_frames_read_back_to_their_payloads(tmp_path):
    payloads = [CCCD, HC1, "https://pc-covid.gov.vn/qr/ABCDEF123", "HD1:NCF:6DKA", CCCD + "|x", HC1[:40]]
    paths = write_demo_frames(payloads, tmp_path / "demo", seed=0)
    assert len(paths) == len(payloads) + 2 and all(p.exists() for p in paths)
    decoder = Decoder(DecoderConfig())
    read = [decoder.decode_path(p).texts for p in paths]
    assert [texts for texts in read if texts] == [[p] for p in payloads]
    assert read.count([]) == 2  # the no-code frames
    # Deterministic: the same call writes the same files.
    again = write_demo_frames(payloads, tmp_path / "again", seed=0)
    assert cv2.imread(str(again[3])).tobytes() == cv2.imread(str(paths[3])).tobytes()


def test_synthetic_set_covers_every_kind():
    cases = synthetic_set(len(KINDS), seed=2)
    assert [c.kind for c in cases] == list(KINDS)
    assert all(c.payload for c in cases if c.kind in CODE_KINDS)
    assert [c.payload for c in cases if c.kind == "no-code"] == [None]
    assert all(c.image.shape == (720, 1280, 3) for c in cases)
