"""The real run loop on a serial scanner (a pty pair), headless screen and simulated pins."""

from __future__ import annotations

import os
import threading
import time

import pytest

from kiosk.appliance import Kiosk
from kiosk.demo.material import demo_material
from kiosk.checks.trust import TrustStore
from kiosk.config import load_config
from kiosk.journal import Journal
from kiosk.model import utcnow


def make_cfg(journal_path, port, **extra):
    overrides = {"journal.path": str(journal_path), "scanner.kind": "serial", "scanner.serial_port": port,
                 "display.backend": "headless", "pins.backend": "mock", "display.verdict_seconds": 0.5,
                 "pins.relay_pulse_s": 0.3}
    overrides.update(extra)
    return load_config(None, search=False, overrides=overrides)


def scan_once(journal, cfg, master: int, line: bytes, *, seconds: float = 2.0):
    """Run the kiosk, have the pty scanner send `line`, stop after `seconds`. Returns the
    kiosk (its display history stays readable) and the events it signalled."""
    events = []
    kiosk = Kiosk(cfg, headless=True, journal=journal, on_event=events.append)
    threading.Timer(0.3, lambda: os.write(master, line + b"\r\n")).start()
    threading.Timer(seconds, kiosk.stop).start()
    kiosk.run()
    kiosk.close()
    return kiosk, events


def test_fail_then_guard_override_then_pass(journal_path, scanner_pty):
    master, port = scanner_pty
    cfg = make_cfg(journal_path, port)
    material = demo_material(utcnow())
    passing = next(text for label, text in material.payloads if material.expected[label] == ("pass", "ok"))
    events = []

    with Journal(journal_path) as journal:
        TrustStore(journal).import_list(material.trust_list_json, now=utcnow())
        kiosk = Kiosk(cfg, headless=True, journal=journal)

        def on_event(event):
            events.append(event)
            if event.verdict.outcome.value == "fail":
                button = kiosk.pins.pin("button")
                button.drive_low()
                button.drive_high()
            elif event.verdict.reason.value == "override":
                # after the override's door pulse is over, the next person
                threading.Timer(0.8, lambda: os.write(master, (passing + "\r\n").encode())).start()
            elif event.verdict.reason.value == "ok":
                threading.Thread(target=stop_when_idle, daemon=True).start()

        def stop_when_idle():
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and kiosk.display.history[-1].kind != "idle":
                time.sleep(0.05)
            kiosk.stop()

        kiosk.on_event = on_event
        threading.Timer(0.3, lambda: os.write(master, "HC1:NOT-BASE45!\r\n".encode())).start()
        threading.Timer(30, kiosk.stop).start()  # a safety net: never hang the suite
        kiosk.run()

        reasons = [e.verdict.reason.value for e in events]
        assert reasons == ["bad_base45", "override", "ok"]
        fail, override, ok = (e.entry for e in events)
        stored = {e.id: e for e in journal.entries()}
        assert stored[override.id].override_of == fail.id
        assert stored[ok.id].outcome == "pass"
        shown = [s.kind for s in kiosk.display.history]
        assert shown.index("fail") < shown.index("pass")
        assert "idle" in shown
        # The door opened for the pass and the override, and for as long as configured.
        relay = [(t, v) for t, d, v in kiosk.pin_history if d == "relay"]
        opened = [t for t, v in relay if v == 1]
        closed = [t for t, v in relay if v == 0 and t > opened[0]]
        assert len(opened) == 2 and len(closed) >= 2
        assert all(c - o >= 0.29 for o, c in zip(opened, closed))
        green = [v for _, d, v in kiosk.pin_history if d == "green"]
        red = [v for _, d, v in kiosk.pin_history if d == "red"]
        assert 1 in green and 1 in red
        kiosk.close()


def test_provisioning_qr_is_not_a_person_and_unsigned_is_refused(journal_path, scanner_pty, tmp_path):
    master, port = scanner_pty
    cfg = make_cfg(journal_path, port)
    with Journal(journal_path) as journal:
        _, events = scan_once(journal, cfg, master, b"KP1:forged-configuration")
        assert [(e.verdict.outcome.value, e.verdict.scheme) for e in events] == [("fail", "provision")]
        assert journal.counts()["entries"] == 0


def test_serial_unplugged_shows_scanner_fault(journal_path, tmp_path):
    cfg = make_cfg(journal_path, str(tmp_path / "no-such-tty"), **{"scanner.reopen_backoff_max_s": 0.2})
    with Journal(journal_path) as journal:
        kiosk = Kiosk(cfg, headless=True, journal=journal)
        threading.Timer(1.5, kiosk.stop).start()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("kiosk.appliance.STATUS_PERIOD_S", 0.2)
            kiosk.run()
        faults = {f for s in kiosk.display.history for f in s.faults}
        assert "scanner_fault" in faults
        kiosk.close()


def test_kiosk_started_on_a_full_disk_shows_the_fault_and_opens_when_space_returns(monkeypatch, scanner_pty):
    """One main loop: on a full disk the screen shows disk_full and the kiosk keeps
    trying; once space is back it opens the journal and the next person is judged."""
    from test_retention import _fill, tiny_filesystem

    from kiosk import appliance

    monkeypatch.setattr(appliance, "JOURNAL_RETRY_S", 0.2)
    master, port = scanner_pty
    with tiny_filesystem() as fs:
        filler = _fill(fs)
        cfg = make_cfg(fs / "journal.db", port)
        events = []
        kiosk = Kiosk(cfg, headless=True, on_event=events.append)
        assert kiosk.journal is None  # not crashed: waiting for space
        runner = threading.Thread(target=kiosk.run)
        runner.start()
        try:
            time.sleep(1.0)
            assert runner.is_alive() and kiosk.journal is None
            assert kiosk.display.history[-1].faults == ("disk_full",)
            filler.unlink()
            deadline = time.monotonic() + 20
            while kiosk.journal is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert kiosk.journal is not None
            time.sleep(0.5)  # the scanner thread opens the pty
            os.write(master, b"HC1:NOT-BASE45!\r\n")
            deadline = time.monotonic() + 10
            while not events and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            kiosk.stop()
            runner.join(timeout=10)
        assert [e.verdict.reason.value for e in events] == ["bad_base45"]
        assert kiosk.journal.get(events[0].entry.id) is not None  # committed after the wait
        kiosk.close()


def test_one_bad_frame_is_skipped_and_the_gate_keeps_working(journal_path, tmp_path, monkeypatch):
    import segno

    from kiosk.scanner.decoder import Decoder

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        segno.make(f"https://kiosk.invalid/person-{i}", error="m").save(str(frames / f"{i}.png"), scale=8)
    real_decode, calls = Decoder.decode, []

    def flaky(self, image):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a decoder bug on one strange frame")
        return real_decode(self, image)

    monkeypatch.setattr(Decoder, "decode", flaky)
    cfg = load_config(None, search=False, overrides={
        "journal.path": str(journal_path), "scanner.kind": "replay", "scanner.replay_path": str(frames),
        "scanner.replay_interval_s": 0.05, "display.backend": "headless", "pins.backend": "mock"})
    events = []
    with Journal(journal_path) as journal:
        kiosk = Kiosk(cfg, headless=True, journal=journal, on_event=events.append)
        assert kiosk.run() == 0
        assert kiosk.errors == 1
        assert [e.scan.text for e in events] == ["https://kiosk.invalid/person-1"]
        assert journal.counts()["entries"] == 1
        kiosk.close()


def test_clock_not_yet_synchronised_shows_a_banner_but_still_judges(journal_path, scanner_pty, tmp_path,
                                                                     monkeypatch):
    from kiosk import appliance, health

    timesync = tmp_path / "timesync"
    assert health.clock_synchronised_flag(timesync) is None  # no timesyncd: unknown, no banner
    timesync.mkdir()
    assert health.clock_synchronised_flag(timesync) is False
    (timesync / "synchronized").touch()
    assert health.clock_synchronised_flag(timesync) is True

    monkeypatch.setattr(appliance, "clock_synchronised_flag", lambda: False)
    master, port = scanner_pty
    cfg = make_cfg(journal_path, port)
    with Journal(journal_path) as journal:
        kiosk, events = scan_once(journal, cfg, master, b"HC1:NOT-BASE45!")
    assert "clock_unsynced" in kiosk.display.history[0].faults
    # the clock is plausible, so the code is still judged on its merits
    assert [e.verdict.reason.value for e in events] == ["bad_base45"]
