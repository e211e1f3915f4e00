"""Sample screens: one state per screen kind with realistic text, rendered to PNG files
for review (`kiosk screens`) and by the screen tests."""

from __future__ import annotations

from pathlib import Path

from kiosk.display.layouts import render_state
from kiosk.display.screen import FAULT_KINDS, ScreenState
from kiosk.model import Reason

__all__ = ["sample_states", "write_screens"]

#: What the sample screens show; realistic, and long enough to test wrapping.
SAMPLE_NAME = "Nguyễn V*** A"
SAMPLE_TODAY = 128
SAMPLE_PENDING = 42
SAMPLE_PREVIEW_SIZE = (480, 640)


def _sample_preview():
    """A grey camera-like frame with a QR code in the middle (for the scanning screen)."""
    import numpy as np
    import segno

    h, w = SAMPLE_PREVIEW_SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    frame = (90 + 60 * np.sin(xx / 70.0) * np.cos(yy / 90.0)).astype(np.uint8)
    qr = segno.make("HC1:SAMPLE", error="m")
    modules = np.array([list(r) for r in qr.matrix_iter(scale=6, border=2)], dtype=bool)
    y0, x0 = (h - modules.shape[0]) // 2, (w - modules.shape[1]) // 2
    frame[y0:y0 + modules.shape[0], x0:x0 + modules.shape[1]] = np.where(modules, 25, 235)
    return frame


def sample_states(venue_name: str, checkin_url: str) -> dict[str, ScreenState]:
    """One state per screen kind, plus `banner`: idle with warnings shown in the banner."""
    common = dict(venue_name=venue_name, checkin_url=checkin_url, today_count=SAMPLE_TODAY,
                  pending_uploads=SAMPLE_PENDING)
    states = {
        "idle": ScreenState("idle", **common),
        "scanning": ScreenState("scanning", preview=_sample_preview(), **common),
        "pass": ScreenState("pass", name=SAMPLE_NAME, reason=Reason.OK, **common),
        "fail": ScreenState("fail", name=SAMPLE_NAME, reason=Reason.EXPIRED, **common),
        "review": ScreenState("review", name=SAMPLE_NAME, reason=Reason.IDENTITY_ONLY, **common),
        # A pass held back because the trust list lapsed (past valid-until and its grace).
        "review-data-expired": ScreenState("review", name=SAMPLE_NAME, reason=Reason.DATA_EXPIRED,
                                           faults=("trust_stale",), **common),
    }
    for kind in FAULT_KINDS:
        states[kind] = ScreenState(kind, faults=(kind,), **common)
    states["banner"] = ScreenState("idle", faults=("offline", "trust_stale", "clock_unsynced"), **common)
    return states


def write_screens(out: Path, sizes: list[tuple[int, int]], *, venue_name: str, checkin_url: str,
                  font: str = "", nested: bool = True) -> list[Path]:
    """Render every sample state at every size. `nested`: DIR/<W>x<H>/<state>.png, else
    DIR/<state>.png (one size)."""
    import pygame

    written: list[Path] = []
    states = sample_states(venue_name, checkin_url)
    for w, h in sizes:
        folder = out / f"{w}x{h}" if nested else out
        folder.mkdir(parents=True, exist_ok=True)
        for name, state in states.items():
            path = folder / f"{name}.png"
            pygame.image.save(render_state(state, (w, h), font or None), str(path))
            written.append(path)
    return written
