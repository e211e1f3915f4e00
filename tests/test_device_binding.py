"""Devices are bound to their venue and time, can be revoked and rotated (issue 11).

Real kiosk journals upload through the real uploader to a real collector on loopback:
a stolen kiosk cannot plant visits at another venue, before it was enrolled or in the
future, and a revoked token is refused at once. Rotation hands the kiosk a new token
in a batch answer without losing anything pending."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from collector import cli
from collector_helpers import RunningCollector, open_store
from kiosk.journal import Journal
from kiosk.model import Credential, Outcome, Reason, Scan, Verdict
from kiosk.sync import resolve_token
from kiosk.sync.uploader import Uploader

ENROLLED = datetime.now(timezone.utc) - timedelta(hours=2)
PASS = Verdict(Outcome.PASS, Reason.OK, "cccd", "Nguyễn V*** A")


def _record(journal, at, *, venue="CHO-BEN-THANH", device="kiosk-1"):
    return journal.record(Scan(f"code-{uuid.uuid4()}", at=at), PASS,
                          Credential("cccd", subject_key=f"cccd:{uuid.uuid4().int % 10**12:012d}"),
                          venue=venue, device=device)


def _post(collector, token, entries, device="kiosk-1"):
    body = gzip.compress(json.dumps({"device_id": device, "batch_id": str(uuid.uuid4()),
                                     "entries": entries}).encode())
    return requests.post(f"{collector.url}/v1/batches", data=body, timeout=10, headers={
        "Authorization": f"Bearer {token}", "Content-Encoding": "gzip", "Content-Type": "application/json"})


@pytest.fixture
def collector(tmp_path):
    with RunningCollector(open_store("sqlite", tmp_path)) as running:
        yield running


def test_entries_for_another_venue_or_an_impossible_time_are_refused_and_kept(collector, journal_path):
    token = collector.token("kiosk-1", venue="CHO-BEN-THANH", since=ENROLLED)
    now = datetime.now(timezone.utc)
    with Journal(journal_path, repeat_window_s=0) as journal:
        good = _record(journal, now - timedelta(minutes=5))
        elsewhere = _record(journal, now - timedelta(minutes=4), venue="BV-CHO-RAY")
        before = _record(journal, ENROLLED - timedelta(days=3))
        future = _record(journal, now + timedelta(hours=2))
        with Uploader(journal, url=collector.url, device_id="kiosk-1", token=token) as up:
            result = up.drain()
        assert {e.id for e in journal.pending(10)} == {elsewhere.id, before.id, future.id}
    assert collector.store.entry_ids() == [good.id]
    assert "bound to venue 'CHO-BEN-THANH'" in result.error or "refused 3 entries" in result.error
    # The collector's answer names the device, its venue and each entry.
    r = _post(collector, token, [elsewhere.as_upload() | {"scanned_at": elsewhere.scanned_at}])
    assert r.status_code == 403
    assert r.json()["detail"][0]["msg"] == ("entry for venue 'BV-CHO-RAY': device 'kiosk-1' is bound "
                                            "to venue 'CHO-BEN-THANH'")
    r = _post(collector, token, [future.as_upload()])
    assert r.status_code == 403 and "more than 10 minutes after" in r.json()["detail"][0]["msg"]
    r = _post(collector, token, [before.as_upload()])
    assert r.status_code == 403 and "before device 'kiosk-1' was enrolled" in r.json()["detail"][0]["msg"]


def test_a_revoked_device_gets_401_at_once(collector, journal_path, capsys):
    token = collector.token("kiosk-1", venue="CHO-BEN-THANH", since=ENROLLED)
    with Journal(journal_path) as journal:
        _record(journal, datetime.now(timezone.utc) - timedelta(minutes=1))
        assert cli.main(["device", "revoke", "kiosk-1", "--db", collector.store.url]) == 0
        assert "revoked" in capsys.readouterr().out
        with Uploader(journal, url=collector.url, device_id="kiosk-1", token=token) as up:
            result = up.drain()
        assert journal.pending_count() == 1  # nothing lost
    assert "401" in result.error
    assert requests.get(f"{collector.url}/v1/trust", timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert cli.main(["device", "list", "--db", collector.store.url]) == 0
    assert "revoked" in capsys.readouterr().out
    assert cli.main(["device", "revoke", "kiosk-404", "--db", collector.store.url]) == 2
    assert "no enrolled device 'kiosk-404'" in capsys.readouterr().err


def test_rotation_hands_the_kiosk_a_new_token_without_losing_entries(collector, tmp_path, capsys):
    from kiosk.config import load_config

    token = collector.token("kiosk-1", venue="CHO-BEN-THANH", since=ENROLLED)
    cfg = load_config(None, search=False, overrides={
        "device.id": "kiosk-1", "venue.code": "CHO-BEN-THANH", "journal.path": str(tmp_path / "j.db"),
        "sync.collector_url": collector.url, "sync.device_token": token, "sync.batch_size": 2})
    now = datetime.now(timezone.utc)
    with Journal(cfg.journal_path(), repeat_window_s=0) as journal:
        for i in range(5):
            _record(journal, now - timedelta(minutes=10 - i))
        assert cli.main(["device", "rotate", "kiosk-1", "--db", collector.store.url]) == 0
        assert "rotation pending" in (cli.main(["device", "list", "--db", collector.store.url]) == 0
                                      and capsys.readouterr().out)
        with Uploader.from_config(cfg, journal, token=resolve_token(cfg, journal)) as up:
            assert up.drain().left == 0
            new = up.token
        assert new != token and resolve_token(cfg, journal) == new  # the configured one yields
        _record(journal, now - timedelta(minutes=1))
        with Uploader.from_config(cfg, journal, token=resolve_token(cfg, journal)) as up:
            assert up.drain().left == 0
    assert collector.store.count_entries(device_id="kiosk-1") == 6
    # The new token has been used: the old one is refused from now on.
    assert requests.get(f"{collector.url}/v1/trust", timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert requests.get(f"{collector.url}/v1/trust", timeout=10,
                        headers={"Authorization": f"Bearer {new}"}).status_code in (200, 404)


def test_enrolment_codes_name_their_venue(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert cli.main(["enrol-code", "--device", "kiosk-7", "--venue", "BV CHO RAY", "--db", db]) == 2
    assert "venue code" in capsys.readouterr().err


def test_kiosk_sync_once_adopts_a_rotated_token_end_to_end(collector, tmp_path):
    """`kiosk sync --once`, as the timer runs it, twice: the first run gets the rotated
    token in a batch answer, the second uses it although the config still holds the old."""
    import subprocess
    import sys

    token = collector.token("kiosk-1", venue="CHO-BEN-THANH", since=ENROLLED)
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[device]\nid = "kiosk-1"\nstate_dir = "{tmp_path}"\n[venue]\ncode = "CHO-BEN-THANH"\n'
                      f'[sync]\ncollector_url = "{collector.url}"\ndevice_token = "{token}"\n', encoding="utf-8")
    now = datetime.now(timezone.utc)
    with Journal(tmp_path / "journal.db", repeat_window_s=0) as journal:
        first = [_record(journal, now - timedelta(minutes=3)).id]
    assert cli.main(["device", "rotate", "kiosk-1", "--db", collector.store.url]) == 0
    sync = [sys.executable, "-m", "kiosk.cli", "--config", str(config), "sync", "--once", "--no-fetch"]
    run = subprocess.run(sync, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    with Journal(tmp_path / "journal.db", repeat_window_s=0) as journal:
        second = [_record(journal, now - timedelta(minutes=1)).id]
    # The old token is retired once the new one is used; the next run must use the new one.
    run = subprocess.run(sync, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "uploaded 1 entries" in run.stdout and token not in run.stdout + run.stderr
    assert sorted(collector.store.entry_ids()) == sorted(first + second)
    assert requests.get(f"{collector.url}/v1/trust", timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_device_enrolled_before_venue_binding_must_enrol_again(tmp_path):
    """An upgraded collector opens its old database; a device enrolled without a venue
    uploads for none until it is enrolled again with a venue-bound code."""
    import hashlib
    import sqlite3

    from collector.storage import Store

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # the devices and codes tables as the first release made them
        conn.execute("CREATE TABLE devices (device_id VARCHAR(64) PRIMARY KEY, "
                     "token_hash VARCHAR(64) NOT NULL UNIQUE, enrolled_at DATETIME NOT NULL)")
        conn.execute("CREATE TABLE enrol_codes (code_hash VARCHAR(64) PRIMARY KEY, device_id VARCHAR(64) NOT NULL, "
                     "created_at DATETIME NOT NULL, expires_at DATETIME NOT NULL, used_at DATETIME)")
        conn.execute("INSERT INTO devices VALUES ('kiosk-1', ?, '2026-01-01 00:00:00')",
                     (hashlib.sha256(b"old-token").hexdigest(),))
    conn.close()
    with RunningCollector(Store(f"sqlite:///{db}")) as old:
        entry = {"id": str(uuid.uuid4()), "scanned_at": datetime.now(timezone.utc).isoformat(),
                 "device_id": "kiosk-1", "venue_code": "V1", "outcome": "pass", "reason": "ok", "scheme": "cccd"}
        r = _post(old, "old-token", [entry])
        assert r.status_code == 403 and "not bound to a venue" in r.json()["detail"][0]["msg"]
        assert [d["venue_code"] for d in old.store.list_devices()] == [None]
