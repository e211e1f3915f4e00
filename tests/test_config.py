"""Config: a bad file stops startup with a message naming the file, the key and what is allowed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kiosk import config
from kiosk.config import EXAMPLE_CONFIG, ConfigError, Secret, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_defaults_run_the_demo():
    cfg = load_config(None, search=False)
    assert cfg.scanner.kind == "replay"
    assert cfg.pins.backend == "mock"
    assert cfg.source == "<built-in defaults>"


def test_example_config_is_exactly_the_defaults_and_documents_every_key():
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    from_example = load_config(EXAMPLE_CONFIG)
    defaults = load_config(None, search=False)
    for section in config._SECTION_TYPES:
        assert getattr(from_example, section) == getattr(defaults, section), section
    data = tomllib.loads(text)
    for section, cls in config._SECTION_TYPES.items():
        assert set(data[section]) == {f.name for f in config.dataclasses.fields(cls)}, section
    # one comment line above every key
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if " = " in line and not line.startswith("#"):
            assert lines[i - 1].startswith("# "), line


def test_values_from_file(tmp_path):
    path = write(tmp_path, '[venue]\nname = "Bệnh viện Chợ Rẫy"\ntype = "hospital"\n[pins]\nrelay_active_low = true\n')
    cfg = load_config(path)
    assert cfg.venue.name == "Bệnh viện Chợ Rẫy"
    assert cfg.venue.type == "hospital"
    assert cfg.pins.relay_active_low is True
    assert cfg.source == str(path)


@pytest.mark.parametrize("text, must_say", [
    ("[venue]\nnmae = 'x'\n", ["venue.nmae", "allowed keys in [venue]", "name"]),
    ("[screen]\nsize = '800x480'\n", ["unknown section [screen]", "display"]),
    ("[scanner]\nkind = 'webcam'\n", ["scanner.kind", "'webcam'", "'camera'", "'serial'"]),
    ("[scanner]\nfps = 'fast'\n", ["scanner.fps", "an integer from 1 to 120"]),
    ("[scanner]\nfps = 500\n", ["scanner.fps", "out of range", "from 1 to 120"]),
    ("[decoder]\nengines = ['zxing', 'quirc']\n", ["decoder.engines", "'quirc' is unknown"]),
    ("[pins]\nrelay_active_low = 1\n", ["pins.relay_active_low", "true or false"]),
    ("[pins]\nred = 17\n", ["pins.red", "GPIO17 is already used by 'pins.green'"]),
    ("[sync]\ncollector_url = 'ftp://x'\n", ["sync.collector_url", "http:// or https://"]),
    ("[journal]\nseal_key = 'not-a-key'\n", ["journal.seal_key", "collector keygen"]),
    # Venue codes the collector would refuse entry by entry: refused at startup instead.
    ("[venue]\ncode = 'BV CHO RAY'\n", ["venue.code", "only letters, digits, '-' and '_'", "U+0020 at 2"]),
    ("[venue]\ncode = '=HYPERLINK(1)'\n", ["venue.code", "U+003D at 0"]),
    ("[venue]\ncode = 'HOSPITAL\u200b-B'\n", ["venue.code", "U+200B at 8"]),
    ("[venue]\ncode = '-X'\n", ["venue.code", "start with a letter or a digit"]),
    ("[venue]\ncode = ''\n", ["venue.code", "empty"]),
    ("[venue\nname = 'x'\n", ["not valid TOML"]),
    ("venue = 3\n", ["'venue' must be a table"]),
])
def test_bad_config_names_file_key_and_what_is_allowed(tmp_path, text, must_say):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for part in must_say:
        assert part in message


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: config file not found"):
        load_config(tmp_path / "nope.toml")


def test_env_var_chooses_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "[device]\nid = 'gate-7'\n")
    monkeypatch.setenv("KIOSK_CONFIG", str(path))
    assert load_config(None).device.id == "gate-7"


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_secret_never_shows_in_repr(tmp_path):
    cfg = load_config(write(tmp_path, "[sync]\ndevice_token = 'tok-123456'\n"))
    assert isinstance(cfg.sync.device_token, Secret)
    assert "tok-123456" not in repr(cfg)
    assert cfg.sync.device_token.reveal() == "tok-123456"


def test_config_is_frozen():
    cfg = load_config(None, search=False)
    with pytest.raises(Exception):
        cfg.venue.name = "x"  # type: ignore[misc]


def run_cli(*args: str, env_config: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    if env_config:
        env["KIOSK_CONFIG"] = env_config
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).resolve().parent.parent, timeout=60)


def test_cli_config_check_reports_the_bad_key_and_fails(tmp_path):
    path = write(tmp_path, "[display]\nsize = '640x480'\n")
    result = run_cli("config", "check", str(path))
    assert result.returncode == 2
    assert "display.size" in result.stderr and "'800x480'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_config_check_accepts_the_example():
    result = run_cli("config", "check", str(EXAMPLE_CONFIG))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": ok")


def test_cli_stops_on_a_bad_config_before_doing_anything(tmp_path):
    path = write(tmp_path, "[journal]\nretention_days = 0\n")
    result = run_cli("journal", "--json", env_config=str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr and "journal.retention_days" in result.stderr
