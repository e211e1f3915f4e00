"""The systemd units: they load cleanly, the kiosk is sandboxed, and the watchdog
client speaks the sd_notify protocol a real systemd understands."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from kiosk import watchdog

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
UNIT_FILES = ["kiosk.service", "kiosk-sync.service", "collector.service",
              "kiosk-retention.service", "kiosk-retention.timer", "kiosk-reload.path", "kiosk-reload.service",
              "collector-retention.service", "collector-retention.timer",
              "collector-report.service", "collector-report.timer"]
#: The issue's bar: `systemd-analyze security` rates kiosk.service 4.0 or better (lower is safer).
MAX_EXPOSURE = 4.0
INSTALL_PREFIX = "/opt/kiosk/venv/bin"

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze not installed (apt-get install systemd)")


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    # Repeated keys (DeviceAllow=) are legal in units; configparser keeps the last one.
    parser.read_string(re.sub(r"^(DeviceAllow|Environment|SystemCallFilter)=", r"#\1=",
                              (UNITS / name).read_text(), flags=re.M))
    return parser


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at stand-in executables, as verify checks them."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for exe in ("kiosk", "collector"):
        (bindir / exe).write_text("#!/bin/sh\nexit 0\n")
        (bindir / exe).chmod(0o755)
    for name in UNIT_FILES:
        text = (UNITS / name).read_text().replace(INSTALL_PREFIX, str(bindir))
        (tmp_path / name).write_text(text)
    return tmp_path


def _verify(folder: Path, names: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", *names], cwd=folder,
                          capture_output=True, text=True, timeout=120)


@needs_analyze
def test_units_pass_systemd_analyze_verify(staged: Path) -> None:
    result = _verify(staged, UNIT_FILES)
    # verify exits 0 on unknown keys and bad values; it only warns. Treat any word
    # about our files as a failure.
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if any(name in line for name in UNIT_FILES)]
    assert result.returncode == 0, result.stderr
    assert complaints == []


@needs_analyze
def test_verify_catches_a_broken_unit(staged: Path) -> None:
    # Guards the test above: a typo must show up as a complaint.
    broken = staged / "kiosk.service"
    broken.write_text(broken.read_text().replace("Restart=always", "Restart=sometimes"))
    result = _verify(staged, ["kiosk.service"])
    assert "kiosk.service" in result.stdout + result.stderr


@needs_analyze
def test_kiosk_service_is_rated_safe_by_systemd_analyze_security() -> None:
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                             "kiosk.service"], cwd=UNITS, capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for kiosk\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_kiosk_service_runs_as_a_notify_service_with_a_watchdog() -> None:
    service = _unit("kiosk.service")["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "always"
    assert 0 < int(service["WatchdogSec"].rstrip("s")) <= 120
    assert service["User"] == "kiosk"
    assert set(service["SupplementaryGroups"].split()) >= {"gpio", "video", "dialout"}
    assert service["StateDirectory"] == "kiosk"
    for key in ("ProtectSystem", "ProtectHome", "NoNewPrivileges", "PrivateTmp"):
        assert service[key] in ("strict", "yes"), key
    text = (UNITS / "kiosk.service").read_text()
    for device in ("char-gpiochip", "char-video4linux", "char-drm", "char-fb", "char-ttyAMA", "char-ttyUSB"):
        assert f"DeviceAllow={device}" in text


def test_only_network_facing_units_wait_for_the_network() -> None:
    assert "network-online.target" in _unit("kiosk-sync.service")["Unit"]["After"]
    assert "network-online.target" in _unit("kiosk-sync.service")["Unit"]["Wants"]
    assert "network-online.target" not in (UNITS / "kiosk.service").read_text()


@pytest.mark.parametrize("side, command", [("kiosk", "kiosk retention"), ("collector", "collector retention")])
def test_retention_timer_fires_daily_and_catches_up(side: str, command: str) -> None:
    timer = _unit(f"{side}-retention.timer")["Timer"]
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d|daily", timer["OnCalendar"])
    assert timer["Persistent"] == "yes"
    assert _unit(f"{side}-retention.service")["Service"]["ExecStart"].endswith(command)


# --- the sd_notify client -----------------------------------------------------------

@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_watchdog_sends_ready_ping_status_and_stopping(notify_socket: socket.socket) -> None:
    assert watchdog.ready()
    assert watchdog.status("scanning\n  42 today")
    assert watchdog.ping()
    assert watchdog.stopping()
    got = [notify_socket.recv(4096).decode() for _ in range(4)]
    assert got == ["READY=1", "STATUS=scanning 42 today", "WATCHDOG=1", "STOPPING=1"]


def test_watchdog_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"kiosk-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        with watchdog.Notifier("@" + name) as notifier:
            assert notifier.ping()
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_watchdog_is_a_no_op_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert watchdog.ready() is False
    assert watchdog.ping() is False


def test_watchdog_survives_a_vanished_socket(tmp_path: Path) -> None:
    notifier = watchdog.Notifier(str(tmp_path / "gone"))
    assert notifier.ping() is False  # logged once, never raised
    assert notifier.ping() is False


def test_watchdog_interval_is_half_of_watchdog_sec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog.watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog.watchdog_interval_s() is None


def test_kiosk_run_notifies_ready_pets_the_watchdog_and_says_stopping(tmp_path: Path) -> None:
    """`kiosk run` as systemd starts it (Type=notify): READY=1 once up, WATCHDOG=1 while
    frames are processed, STOPPING=1 at the end (here: the replay ran out)."""
    import subprocess
    import sys

    import segno

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        segno.make(f"https://kiosk.invalid/{i}", error="m").save(str(frames / f"{i:03}.png"), scale=8)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify"), KIOSK_PINS="mock",
               SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYTHONPATH=str(ROOT))
    overrides = {"journal.path": tmp_path / "j.db", "scanner.kind": "replay", "scanner.replay_path": frames,
                 "scanner.replay_interval_s": 0.2, "pins.backend": "mock"}
    argv = [sys.executable, "-m", "kiosk.cli"]
    for key, value in overrides.items():
        argv += ["--set", f"{key}={value}"]
    proc = subprocess.Popen(argv + ["run", "--headless"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    messages: list[str] = []
    try:
        while not messages or messages[-1] != "STOPPING=1":
            messages.append(sock.recv(4096).decode())
    finally:
        out, err = proc.communicate(timeout=60)
        sock.close()
    assert proc.returncode == 0, err
    assert messages[0] == "READY=1"
    assert "WATCHDOG=1" in messages
    assert messages[-1] == "STOPPING=1"
