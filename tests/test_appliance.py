"""Promises of the appliance, through the real run loop (kiosk.appliance.Kiosk) on a pty
scanner, headless screen and simulated pins:

- nothing is signalled before its entry is committed: a journal on a full disk shows the
  fault and opens nothing; each light and relay turn-on finds its entry already in the
  journal file (read with a separate SQLite connection);
- rules fetched by sync change the verdicts of a kiosk that is already running;
- a provisioning QR whose collector is slow never holds up the next person's verdict.
"""

from __future__ import annotations

import http.server
import os
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from kiosk import appliance, provision
from kiosk.appliance import Kiosk
from kiosk.checks.trust import TrustStore
from kiosk.config import load_config
from kiosk.demo.material import demo_material
from kiosk.display.signals import Signals
from kiosk.journal import Journal
from kiosk.model import utcnow

#: A safety net only: every test stops its kiosk itself long before this.
SAFETY_S = 30.0


def _cfg(journal_path: Path, port: str, config_file: Path | None = None, **extra):
    overrides = {"journal.path": str(journal_path), "scanner.kind": "serial", "scanner.serial_port": port,
                 "display.backend": "headless", "pins.backend": "mock", "display.verdict_seconds": 0.5,
                 "pins.relay_pulse_s": 0.1}
    overrides.update(extra)
    return load_config(config_file, overrides=overrides, search=False)


def _send(master: int, text: str) -> None:
    os.write(master, text.encode() + b"\r\n")


def _reading(kiosk: Kiosk) -> None:
    """Wait until the scanner thread has the serial port open (it drops what came before)."""
    _wait(lambda: kiosk._source is not None)
    time.sleep(0.1)


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _turned_on(kiosk: Kiosk, device: str) -> bool:
    return any(d == device and v == 1 for _, d, v in kiosk.pin_history)


def _passing(material) -> str:
    return next(text for label, text in material.payloads if material.expected[label] == ("pass", "ok"))


# --- commit before signal ------------------------------------------------------------

def test_a_journal_that_cannot_commit_shows_the_fault_and_opens_nothing(scanner_pty, monkeypatch):
    """A passing code on a full disk: the entry cannot be committed, so no green light,
    no door, no verdict; the screen shows disk_full. Space back: the next one passes."""
    from test_retention import _fill, tiny_filesystem

    monkeypatch.setattr(appliance, "STATUS_PERIOD_S", 0.1)
    master, port = scanner_pty
    material = demo_material(utcnow())
    with tiny_filesystem() as fs:
        path = fs / "journal.db"
        cfg = _cfg(path, port)
        with Journal(path) as journal:
            TrustStore(journal).import_list(material.trust_list_json, now=utcnow())
            # An empty WAL: the next commit needs new space on the disk.
            journal.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = _fill(fs)
            events = []
            kiosk = Kiosk(cfg, headless=True, journal=journal, on_event=events.append)
            threading.Timer(SAFETY_S, kiosk.stop).start()

            def watch():
                _reading(kiosk)
                _send(master, _passing(material))
                _wait(lambda: kiosk.errors > 0 and kiosk.display is not None
                      and "disk_full" in kiosk.display.history[-1].faults)
                filler.unlink()
                time.sleep(0.3)
                _send(master, "HC1:NOT-BASE45!")  # a fail, committed
                _wait(lambda: events)
                kiosk.stop()

            threading.Thread(target=watch, daemon=True).start()
            kiosk.run()
            kiosk.close()
            assert kiosk.errors == 1  # the entry that was not committed
            assert "disk_full" in {f for s in kiosk.display.history for f in s.faults}
            # Nothing was signalled for it: no pass screen, no green light, no door.
            assert [e.verdict.reason.value for e in events] == ["bad_base45"]
            assert "pass" not in [s.kind for s in kiosk.display.history]
            assert not _turned_on(kiosk, "green") and not _turned_on(kiosk, "relay")
            assert [(e.outcome, e.reason) for e in journal.entries()] == [("fail", "bad_base45")]


def test_each_light_and_door_finds_its_entry_already_committed(journal_path, scanner_pty, monkeypatch):
    """An ordering probe on the pins: whenever a verdict turns a light or the relay on,
    a separate SQLite connection must already see that person's entry in the journal file."""
    master, port = scanner_pty
    material = demo_material(utcnow())
    codes = [_passing(material), "HC1:NOT-BASE45!", "https://kiosk.invalid/person-3"]
    probes: list[tuple[str, int]] = []  # (verdict, committed entries seen by the probe)
    real_signal = Signals.signal

    def probed_signal(self, verdict):
        with sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True) as other:
            committed = other.execute("SELECT count(*) FROM entries").fetchone()[0]
        probes.append((verdict.outcome.value, committed))
        return real_signal(self, verdict)

    monkeypatch.setattr(Signals, "signal", probed_signal)
    cfg = _cfg(journal_path, port)
    with Journal(journal_path) as journal:
        TrustStore(journal).import_list(material.trust_list_json, now=utcnow())
        events = []
        kiosk = Kiosk(cfg, headless=True, journal=journal, on_event=events.append)
        def scan_all():
            _reading(kiosk)
            for i, code in enumerate(codes):
                _send(master, code)
                _wait(lambda: len(events) == i + 1)
            kiosk.stop()

        threading.Timer(SAFETY_S, kiosk.stop).start()
        threading.Thread(target=scan_all, daemon=True).start()
        kiosk.run()
        kiosk.close()
    assert [outcome for outcome, _ in probes] == ["pass", "fail", "review"]
    # The n-th signal saw at least n committed entries: its own was written first.
    assert [committed for _, committed in probes] == [1, 2, 3]
    assert _turned_on(kiosk, "relay") and _turned_on(kiosk, "green") and _turned_on(kiosk, "red")


# --- rules fetched by sync reach a running kiosk --------------------------------------

def test_rules_fetched_by_sync_change_the_verdicts_of_a_running_kiosk(journal_path, scanner_pty, tmp_path,
                                                                     monkeypatch):
    """A real collector publishes new venue rules, a real fetch (what `kiosk sync` runs,
    beside the kiosk) stores them in the journal, and the kiosk that is already running
    judges the next person by them."""
    from collector.local import LocalCollector
    from collector.publish import publish
    from collector.storage import Store
    from kiosk.checks.signed import generate_private_key
    from kiosk.sync.fetcher import Fetcher

    monkeypatch.setattr(appliance, "STATUS_PERIOD_S", 0.1)
    master, port = scanner_pty
    cfg = _cfg(journal_path, port)
    publisher = generate_private_key()
    events = []
    with Store(f"sqlite:///{tmp_path / 'collector.db'}") as store, \
            LocalCollector(store, publisher=publisher) as collector, Journal(journal_path) as journal:
        kiosk = Kiosk(cfg, headless=True, journal=journal, on_event=events.append)
        assert kiosk.pipeline.rules.opaque.outcome == "review"  # the built-in rules

        def sync_then_scan():
            _reading(kiosk)
            _send(master, "https://kiosk.invalid/person-1")
            _wait(lambda: len(events) == 1)
            rules = f'venue_type = "{cfg.venue.type}"\n[opaque]\noutcome = "fail"\n'.encode()
            publish(store, "rules", rules, key=publisher, now=datetime.now(timezone.utc),
                    content_type="application/toml")
            token = collector.token(cfg.device.id, venue=cfg.venue.code)
            with Journal(journal_path) as sync_journal, \
                    Fetcher(sync_journal, url=collector.url, token=token,
                            publisher_key=publisher.public_key()) as fetcher:
                fetched.update(fetcher.fetch_all())
            # The running kiosk notices within a few status periods (no restart).
            _wait(lambda: kiosk.pipeline.rules.opaque.outcome == "fail", timeout=5)
            _send(master, "https://kiosk.invalid/person-2")
            _wait(lambda: len(events) == 2)
            kiosk.stop()

        fetched: dict = {}
        threading.Thread(target=sync_then_scan, daemon=True).start()
        threading.Timer(SAFETY_S, kiosk.stop).start()
        kiosk.run()
        kiosk.close()
    assert fetched.get("rules") == "updated", fetched
    assert [(e.scan.text, e.verdict.outcome.value) for e in events] == [
        ("https://kiosk.invalid/person-1", "review"), ("https://kiosk.invalid/person-2", "fail")]


# --- the network is off the scan path --------------------------------------------------

class SlowCollector(http.server.ThreadingHTTPServer):
    """A real HTTP server on loopback that holds each enrolment request until told to
    answer, then refuses it (503): a collector that is slow, then unreachable."""

    daemon_threads = True

    def __init__(self) -> None:
        self.holding = threading.Event()   # an enrolment request has arrived and waits
        self.release = threading.Event()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                collector.holding.set()
                collector.release.wait(SAFETY_S)
                body = b'{"detail": "collector busy"}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


def test_a_provisioning_qr_with_a_slow_collector_does_not_hold_up_the_next_person(tmp_path, scanner_pty):
    """The technician's QR carries an enrolment code for a collector that does not answer.
    The screen says provisioning was accepted and enrolment is pending; the next person is
    judged while the enrolment request is still open; then the enrolment failure shows
    and nothing in the config changed."""
    master, port = scanner_pty
    key = ed25519.Ed25519PrivateKey.generate()
    config_file = tmp_path / "kiosk.toml"
    config_file.write_text(f'[device]\nid = "bv-01"\nstate_dir = "{tmp_path / "state"}"\n'
                           f'provisioning_key = "{provision.public_key_text(key)}"\n')
    before = config_file.read_text()
    cfg = _cfg(tmp_path / "journal.db", port, config_file)
    slow = SlowCollector()
    try:
        qr = provision.make_qr_text({"sync.collector_url": slow.url, "venue.code": "BM-01"}, key,
                                    now=utcnow(), enrol_code="7F3K-92QD", device="bv-01")
        events, during_enrolment = [], []

        def on_event(event):
            events.append(event)
            reason = event.verdict.reason.value
            if reason == "provision_pending":
                # The enrolment request is on its way; the next person steps up.
                threading.Thread(target=lambda: (slow.holding.wait(SAFETY_S),
                                                 _send(master, "HC1:NOT-BASE45!")), daemon=True).start()
            elif reason == "bad_base45":
                during_enrolment.append(slow.holding.is_set() and not slow.release.is_set())
                slow.release.set()  # now the collector answers (503)
            elif reason == "enrol_failed":
                threading.Timer(0.5, kiosk.stop).start()

        with Kiosk(cfg, headless=True, on_event=on_event) as kiosk:
            threading.Thread(target=lambda: (_reading(kiosk), _send(master, qr)), daemon=True).start()
            threading.Timer(SAFETY_S, kiosk.stop).start()
            kiosk.run()
    finally:
        slow.close()
    assert [(e.verdict.outcome.value, e.verdict.reason.value) for e in events] == [
        ("review", "provision_pending"), ("fail", "bad_base45"), ("fail", "enrol_failed")]
    assert during_enrolment == [True]  # judged while the collector still held the request
    assert [s.reason.value for s in kiosk.display.history if s.reason is not None] == [
        "provision_pending", "bad_base45", "enrol_failed"]
    assert config_file.read_text() == before  # a failed enrolment changes nothing


def test_an_accepted_provisioning_qr_lights_green_but_never_opens_the_door(tmp_path, scanner_pty):
    """A technician's QR is not a person: accepted, it shows green with `provisioned`,
    and the door relay stays shut (a pass for a person pulses it)."""
    master, port = scanner_pty
    key = ed25519.Ed25519PrivateKey.generate()
    config_file = tmp_path / "kiosk.toml"
    config_file.write_text(f'[device]\nid = "bv-02"\nstate_dir = "{tmp_path / "state"}"\n'
                           f'provisioning_key = "{provision.public_key_text(key)}"\n')
    cfg = _cfg(tmp_path / "journal.db", port, config_file)
    qr = provision.make_qr_text({"venue.name": "Bệnh viện Đa khoa", "venue.code": "BV-02"}, key,
                                now=utcnow(), device="bv-02")
    events = []
    with Kiosk(cfg, headless=True, on_event=events.append) as kiosk:
        threading.Thread(target=lambda: (_reading(kiosk), _send(master, qr)), daemon=True).start()
        threading.Timer(SAFETY_S, kiosk.stop).start()
        kiosk.run()  # exits by itself: the config changed, systemd restarts it
    assert [(e.verdict.outcome.value, e.verdict.reason.value) for e in events][-1] == ("pass", "provisioned")
    assert "Bệnh viện Đa khoa" in config_file.read_text()
    assert _turned_on(kiosk, "green")
    assert not _turned_on(kiosk, "relay")
