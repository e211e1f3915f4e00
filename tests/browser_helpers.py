"""Debian's Chromium for the browser tests (Playwright drives it by executable_path; no
browser download). Missing: the test is skipped, or fails under CI=true."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("KIOSK_CHROMIUM", "/usr/bin/chromium")
#: Where the browser tests leave their screenshots for review.
SHOTS = Path(os.environ.get("KIOSK_SCREENSHOTS", tempfile.gettempdir()))


def browser_or_fail():
    """playwright.sync_api, once chromium is known to be there."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        message = "Debian's chromium is not installed (scripts/setup.sh --dev)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return pytest.importorskip("playwright.sync_api")
