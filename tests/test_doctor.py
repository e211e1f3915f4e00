"""`kiosk doctor`: with simulated pins, a replay camera, a real journal and the real
collector on 127.0.0.1 it reports every check; broken parts show up as failures and a
non-zero exit code."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import tty
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk import doctor
from kiosk.config import load_config
from kiosk.journal import Journal

ROOT = Path(__file__).resolve().parent.parent
VALID = {doctor.OK, doctor.WARN, doctor.FAIL, doctor.SKIP, doctor.SIMULATED}


@pytest.fixture
def replay_dir(tmp_path: Path) -> Path:
    """What the replay camera shows: an empty frame, then a QR code held up."""
    import cv2
    import numpy as np
    import segno

    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), np.full((480, 640, 3), 200, np.uint8))
    segno.make("https://kiosk.invalid/test-code", error="m").save(str(folder / "001.png"), scale=8, border=4)
    return folder


@pytest.fixture
def collector(tmp_path: Path):
    from tests.collector_helpers import RunningCollector, open_store

    with RunningCollector(open_store("sqlite", tmp_path)) as running:
        yield running


def _write_config(tmp_path: Path, **keys: object) -> Path:
    sections: dict[str, dict[str, object]] = {}
    for dotted, value in keys.items():
        section, _, key = dotted.partition("__")
        sections.setdefault(section, {})[key] = value
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    path = tmp_path / "kiosk.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _base(tmp_path: Path, replay_dir: Path, url: str, token: str = "") -> dict[str, object]:
    return {"device__id": "kiosk-1", "journal__path": str(tmp_path / "journal.db"),
            "scanner__kind": "replay", "scanner__replay_path": str(replay_dir),
            "scanner__replay_interval_s": 0.05, "pins__backend": "mock",
            "sync__collector_url": url, "sync__device_token": token}


def _with_trust(journal_path: Path, at: datetime) -> None:
    from kiosk.checks.trust import TrustStore

    with Journal(journal_path) as j:
        TrustStore(j).import_list(b"[]", now=at)


def _doctor_json(config: Path) -> tuple[int, dict]:
    env = dict(os.environ, KIOSK_PINS="mock", SDL_VIDEODRIVER="dummy", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(config), "doctor", "--json"],
                            capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


def _by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_doctor_json_reports_every_check(tmp_path, replay_dir, collector) -> None:
    config = _write_config(tmp_path, **_base(tmp_path, replay_dir, collector.url, collector.token("kiosk-1")))
    _with_trust(tmp_path / "journal.db", datetime.now(timezone.utc) - timedelta(hours=1))

    code, report = _doctor_json(config)

    checks = _by_name(report)
    assert [c["name"] for c in report["checks"]] == list(doctor.CHECKS)
    assert all(c["status"] in VALID and c["detail"] for c in report["checks"])
    for name in ("config", "camera", "camera_decode", "journal", "collector", "trust_list"):
        assert checks[name]["status"] == "ok", checks[name]
    for name in ("light_green", "light_red", "buzzer", "relay", "guard_button"):
        assert checks[name]["status"] == "simulated", checks[name]  # never "ok" on MockFactory
    assert checks["serial_scanner"]["status"] == "skip"
    assert checks["clock"]["status"] in ("ok", "warn")  # depends on this machine's NTP
    assert "GPIO17" in checks["light_green"]["detail"] and "GPIO23" in checks["relay"]["detail"]
    assert "token accepted" in checks["collector"]["detail"]
    assert code == (1 if report["status"] == "fail" else 0)
    assert report["status"] in ("ok", "warn")


def test_unreachable_collector_and_refused_token_fail(tmp_path, replay_dir, collector) -> None:
    config = _write_config(tmp_path, **_base(tmp_path, replay_dir, collector.url, "not-a-token"))
    code, report = _doctor_json(config)
    assert _by_name(report)["collector"]["status"] == "fail"
    assert "refused" in _by_name(report)["collector"]["detail"]
    assert code == 1 and report["status"] == "fail"

    config = _write_config(tmp_path, **_base(tmp_path, replay_dir, "http://127.0.0.1:9"))
    code, report = _doctor_json(config)
    assert _by_name(report)["collector"]["status"] == "fail"
    assert "unreachable" in _by_name(report)["collector"]["detail"]
    assert code == 1


def _run(cfg, **kwargs) -> dict[str, doctor.Check]:
    from gpiozero.pins.mock import MockFactory

    kwargs.setdefault("pin_factory", MockFactory())
    kwargs.setdefault("clock_probe", lambda: True)
    return {c.name: c for c in doctor.Doctor(cfg, **kwargs).run()}


def _cfg(tmp_path: Path, **overrides):
    base = {"journal.path": str(tmp_path / "journal.db"), "scanner.kind": "stdin",
            "sync.collector_url": "http://127.0.0.1:9", "pins.backend": "mock"}
    base.update(overrides)
    return load_config(None, search=False, overrides=base)


def test_stale_trust_list_and_damaged_journal_fail(tmp_path) -> None:
    cfg = _cfg(tmp_path, **{"trust.max_age_hours": 24.0})
    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    _with_trust(tmp_path / "journal.db", now - timedelta(days=3))
    checks = _run(cfg, now=lambda: now)
    assert checks["journal"].status == "ok"
    assert checks["trust_list"].status == "fail" and "older than" in checks["trust_list"].detail

    (tmp_path / "journal.db").write_bytes(b"this is not a database" * 100)
    for side in ("-wal", "-shm"):
        Path(str(tmp_path / "journal.db") + side).unlink(missing_ok=True)
    checks = _run(cfg, now=lambda: now)
    assert checks["journal"].status == "fail"
    assert doctor.overall(list(checks.values())) == "fail"


def test_clock_checks(tmp_path) -> None:
    cfg = _cfg(tmp_path)
    assert _run(cfg, now=lambda: datetime(1970, 1, 1, tzinfo=timezone.utc))["clock"].status == "fail"
    assert _run(cfg, clock_probe=lambda: False)["clock"].status == "warn"
    assert _run(cfg, clock_probe=lambda: None)["clock"].status == "warn"
    assert _run(cfg, clock_probe=lambda: True)["clock"].status == "ok"


def test_relay_wired_active_low_is_driven_low(tmp_path) -> None:
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    checks = _run(_cfg(tmp_path, **{"pins.relay_active_low": True}), pin_factory=factory)
    assert checks["relay"].status == "simulated"
    assert [s.state for s in factory.pin(23).states][-1] == 1  # active low: left high (off)


class BenchPins:
    """Pins on a test bench: gpiozero's mock underneath, but the doctor treats them as
    real (it cannot read back a lamp), so it must ask the technician."""

    @staticmethod
    def make():
        from gpiozero.pins.mock import MockFactory

        return type("BenchFactory", (MockFactory,), {})()


def test_interactive_doctor_asks_the_technician_about_real_pins(tmp_path) -> None:
    factory = BenchPins.make()
    questions: list[str] = []
    answers = iter(["y", "n", "yes", "y"])  # the red light did not come on

    def ask(question: str) -> str:
        questions.append(question)
        return next(answers)

    def say(text: str) -> None:
        if "Press the guard button" in text:  # the technician presses it
            threading.Timer(0.1, factory.pin(24).drive_low).start()

    checks = _run(_cfg(tmp_path), pin_factory=factory, interactive=True, ask=ask, say=say,
                  button_timeout_s=5)
    assert len(questions) == 4 and "red light" in questions[1]
    assert checks["light_green"].status == "ok"
    assert checks["light_red"].status == "fail" and "wiring" in checks["light_red"].detail
    assert checks["guard_button"].status == "ok"


def test_guard_button_not_pressed_in_time_fails(tmp_path) -> None:
    checks = _run(_cfg(tmp_path), pin_factory=BenchPins.make(), interactive=True, ask=lambda q: "y",
                  say=lambda t: None, button_timeout_s=0.2)
    assert checks["guard_button"].status == "fail"


def test_fleet_mode_never_waits_for_a_person_on_real_pins(tmp_path) -> None:
    checks = _run(_cfg(tmp_path), pin_factory=BenchPins.make(), interactive=False)
    assert checks["guard_button"].status == "skip"
    assert checks["buzzer"].status == "ok" and "not confirmed" in checks["buzzer"].detail


# --- serial scanner over a real pty pair --------------------------------------------

def _gm65(master: int, answer: bytes | None, stop: threading.Event) -> None:
    """Plays the GM65 module on the pty's other end."""
    got = b""
    while not stop.is_set():
        try:
            chunk = os.read(master, 64)
        except OSError:
            return
        got += chunk
        if doctor.GM65_QUERY in got and answer is not None:
            os.write(master, answer)
            got = b""


@pytest.mark.parametrize("answer,status", [(bytes.fromhex("02 00 00 01 00 33 31"), "ok"), (None, "warn")])
def test_serial_scanner_answers(tmp_path, answer, status) -> None:
    master, slave = pty.openpty()
    tty.setraw(slave)
    stop = threading.Event()
    thread = threading.Thread(target=_gm65, args=(master, answer, stop), daemon=True)
    thread.start()
    try:
        cfg = _cfg(tmp_path, **{"scanner.kind": "serial", "scanner.serial_port": os.ttyname(slave)})
        checks = _run(cfg)
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
    assert checks["serial_scanner"].status == status
    assert checks["camera"].status == "skip"


def test_missing_serial_scanner_fails(tmp_path) -> None:
    cfg = _cfg(tmp_path, **{"scanner.kind": "serial", "scanner.serial_port": str(tmp_path / "qrscanner")})
    check = _run(cfg)["serial_scanner"]
    assert check.status == "fail" and "udev" in check.detail


# --- issue 17: the self-test tells the truth ------------------------------------------------

def test_simulated_pins_say_simulated_and_the_button_is_not_pressed_by_the_doctor(tmp_path) -> None:
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    checks = _run(_cfg(tmp_path), pin_factory=factory, on_pi=lambda: False)
    for name in ("light_green", "light_red", "buzzer", "relay", "guard_button"):
        assert checks[name].status == doctor.SIMULATED and "simulated pins" in checks[name].detail
    levels = [s.state for s in factory.pin(24).states]
    assert levels[-1] and not [level for level in levels[levels.index(True):] if not level]  # never pressed


def test_on_a_raspberry_pi_simulated_pins_fail(tmp_path) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    assert doctor.running_on_pi(model) and not doctor.running_on_pi(tmp_path / "none")
    checks = _run(_cfg(tmp_path), on_pi=lambda: doctor.running_on_pi(model))
    for name in ("light_green", "light_red", "buzzer", "relay", "guard_button"):
        assert checks[name].status == doctor.FAIL and "pins.backend" in checks[name].detail
    assert doctor.overall(list(checks.values())) == doctor.FAIL


def test_screen_test_pattern_goes_through_the_real_display_backend(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    checks = _run(_cfg(tmp_path, **{"display.backend": "pygame", "display.sound": True}))
    assert checks["screen"].status == doctor.SIMULATED and "dummy" in checks["screen"].detail
    assert checks["speaker"].status == doctor.SIMULATED and "dummy" in checks["speaker"].detail
    headless = _run(_cfg(tmp_path, **{"display.backend": "headless"}))
    assert headless["screen"].status == doctor.SKIP and headless["speaker"].status == doctor.SKIP


def test_no_camera_fault_line_after_the_summary(tmp_path) -> None:
    config = _write_config(tmp_path, **{"journal__path": str(tmp_path / "j.db"), "scanner__kind": "camera",
                                        "scanner__camera": "/dev/video97", "sync__collector_url": "http://127.0.0.1:9"})
    env = dict(os.environ, KIOSK_PINS="mock", SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(config), "doctor", "--no-interactive"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, env=env,
                            stdin=subprocess.DEVNULL)
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("FAIL: "), lines[-3:]
    assert not [line for line in lines if line.startswith("camera fault")]
    assert any("[FAIL] camera " in line and "/dev/video97" in line for line in lines)
