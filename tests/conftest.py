"""Shared fixtures. External test data is read in place from ../shared/testdata (or
$KIOSK_TESTDATA); when CI=true a test that needs it fails instead of skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")


def _testdata_dir() -> Path:
    env = os.environ.get("KIOSK_TESTDATA")
    return Path(env) if env else ROOT.parent / "shared" / "testdata"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The shared external test data folder (qr-photos/, dcc-cases/, dcc-images/)."""
    path = _testdata_dir()
    if not (path / "README.md").exists():
        message = f"external test data not found at {path} (set KIOSK_TESTDATA)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.db"


@pytest.fixture
def scanner_pty():
    """A pty pair standing in for a serial QR scanner: write lines to `master`; the
    kiosk opens the returned port name."""
    import pty

    master, slave = pty.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)
