"""The one TOML writer (tomli-w) behind `kiosk config show` and provisioning: any venue
name reads back exactly as it was written, comments of `config show` included.

Regression: the hand-written writer behind `config show` wrote a venue name holding a
newline as a raw newline inside a basic string, which no TOML reader accepts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk import provision
from kiosk.config import load_config, replace, to_toml

ROOT = Path(__file__).resolve().parent.parent
#: Newline, quotes (both kinds), a backslash, a tab and Vietnamese letters.
HARD_NAME = 'Bệnh viện "Đa khoa"\nKhu B \\ cổng \'số 2\'\tỞ Quảng Ngãi'


def test_config_show_round_trips_a_hard_venue_name(tmp_path) -> None:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    env.pop("KIOSK_CONFIG", None)
    out = subprocess.run([sys.executable, "-m", "kiosk.cli", "--set", f"venue.name={json.dumps(HARD_NAME)}",
                          "config", "show"], capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout
    assert tomllib.loads(out)["venue"]["name"] == HARD_NAME
    # Every key keeps its comment line above it.
    lines = out.splitlines()
    assert lines[lines.index("[venue]") + 1].startswith("# ")
    # What `config show` prints is a config file the kiosk loads back unchanged.
    path = tmp_path / "kiosk.toml"
    path.write_text(out, encoding="utf-8")
    assert load_config(path).venue.name == HARD_NAME


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_any_venue_name_round_trips_through_to_toml(name: str) -> None:
    cfg = replace(load_config(None, search=False), **{"venue.name": name})
    assert tomllib.loads(to_toml(cfg))["venue"]["name"] == name


def test_provisioning_writes_a_hard_venue_name_that_reads_back(tmp_path) -> None:
    path = tmp_path / "kiosk.toml"
    cfg = provision.apply_settings(path, {"venue.name": HARD_NAME, "pins.green": 5})
    assert cfg.venue.name == HARD_NAME
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["venue"]["name"] == HARD_NAME and data["pins"]["green"] == 5
    assert load_config(path).venue.name == HARD_NAME
