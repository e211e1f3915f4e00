"""The decoder chain as it was before the stream decoder, for benches to measure against.

    >>> before = load_before()          # doctest: +SKIP
    >>> before.Decoder(DecoderConfig()).decode(frame).texts
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The last commit before the stream decoder: its chain (variants on every frame, within
#: decoder.budget_ms) is what issue 16 measured.
BEFORE_REV = "3d0f580"


def load_before():
    """kiosk/scanner/decoder.py as it was at BEFORE_REV (None when git cannot show it)."""
    try:
        text = subprocess.run(["git", "show", f"{BEFORE_REV}:kiosk/scanner/decoder.py"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "decoder_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("decoder_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["decoder_before"] = module
    spec.loader.exec_module(module)
    return module
