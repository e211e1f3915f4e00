"""Issue 24, the fleet at a glance: kiosks send a heartbeat with their sync rounds
(`kiosk sync --once`, the real command, to the real collector); the collector keeps the
latest per device; `collector fleet` and the fleet page list them, red for silent,
stale, faulted or refused; the daily report links the page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from collector import fleet
from collector_helpers import ADMIN_TOKEN, DEVICE, fill_journal, sqlite_collector  # noqa: F401 (fixture)
from kiosk.journal import Journal
from kiosk.sync.client import store_token
from kiosk.sync.heartbeat import FAULTS_KEY, collect

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _kiosk(tmp_path: Path, journal: Path, url: str, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("KIOSK_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "--set", f"journal.path={journal}",
                           "--set", f"device.id={DEVICE}", "--set", "venue.code=V1",
                           "--set", f"sync.collector_url={url}", *argv],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def _collector_cli(store, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("COLLECTOR_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "collector.cli", *argv, "--db", store.url],
                          env=env, capture_output=True, text=True, timeout=120)


def test_a_sync_round_leaves_a_heartbeat_the_fleet_page_and_command_show(tmp_path, collector):
    now = datetime.now(timezone.utc)
    journal = tmp_path / "journal.db"
    token = collector.token(DEVICE, venue="V1", since=now - timedelta(days=1))
    collector.token("kiosk-silent", venue="V2", since=now - timedelta(days=1))   # enrolled, never heard from
    with Journal(journal) as j:
        store_token(j, token)
        fill_journal(j, 5, venue="V1", start=now - timedelta(minutes=10), step=timedelta(seconds=30))
        j.set_json(FAULTS_KEY, ["camera_fault"])  # what the run loop keeps when its screen shows one
    done = _kiosk(tmp_path, journal, collector.url, "sync", "--once", "--no-fetch")
    assert done.returncode == 0, done.stderr
    [kiosk] = [r for r in requests.get(f"{collector.url}/v1/fleet.json", headers=ADMIN, timeout=10).json()["kiosks"]
               if r["device_id"] == DEVICE]
    assert kiosk["version"] and kiosk["pending"] == 0 and kiosk["faults"] == ["camera_fault"]
    assert kiosk["states"] == ["faulted"] and kiosk["red"]
    assert abs(kiosk["clock_offset_s"]) < 5 and kiosk["disk_free_pct"] > 0
    assert kiosk["last_scan_at"].startswith(str((now - timedelta(minutes=10) + timedelta(seconds=120)).year))
    page = requests.get(f"{collector.url}/v1/fleet", headers=ADMIN, timeout=10).text
    assert "kiosk-silent" in page and "im lặng / silent" in page and "có lỗi / faulted" in page
    assert requests.get(f"{collector.url}/v1/fleet", timeout=10).status_code == 401
    daily = requests.get(f"{collector.url}/v1/reports/daily", headers=ADMIN, timeout=10).text
    assert 'href="../fleet"' in daily
    # The command: red ones first, exit 1 while any needs a look.
    cli = _collector_cli(collector.store, "fleet")
    assert cli.returncode == 1 and "2 of 2 kiosks need a look" in cli.stdout
    listed = json.loads(_collector_cli(collector.store, "fleet", "--json").stdout)["kiosks"]
    assert {r["device_id"]: r["states"] for r in listed} == {DEVICE: ["faulted"], "kiosk-silent": ["silent"]}


def test_each_state_a_technician_must_see(tmp_path, collector):
    now = datetime.now(timezone.utc)
    base = {"version": "0.1.0", "sent_at": now.isoformat(), "faults": [], "pending": 0, "refused": 0}
    cases = {
        "k-ok": base,
        "k-stale": {**base, "documents": {"trust": {"version": 3, "age_s": 5 * 86400}}},
        "k-expired": {**base, "documents": {"denylist": {"version": 1, "age_s": 60,
                                                         "expires_at": (now - timedelta(hours=1)).isoformat()}}},
        "k-refused": {**base, "refused": 12},
        "k-clock": {**base, "sent_at": (now + timedelta(minutes=10)).isoformat()},
    }
    for device, body in cases.items():
        token = collector.token(device, venue="V1", since=now - timedelta(days=1))
        r = requests.post(f"{collector.url}/v1/heartbeat", json=body, timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    states = {k.device_id: k.states for k in fleet.fleet(collector.store, now=datetime.now(timezone.utc))}
    assert states == {"k-ok": [], "k-stale": ["stale"], "k-expired": ["stale"], "k-refused": ["refused"],
                      "k-clock": ["clock"]}
    # A heartbeat older than SILENT_AFTER is silence.
    later = datetime.now(timezone.utc) + fleet.SILENT_AFTER + timedelta(minutes=1)
    assert "silent" in {k.device_id: k.states for k in fleet.fleet(collector.store, now=later)}["k-ok"]


@pytest.mark.parametrize("body, why", [
    ({"version": "x" * 41, "sent_at": "2026-03-02T08:00:00Z"}, "version"),
    ({"version": "1", "sent_at": "2026-03-02T08:00:00"}, "sent_at"),          # no offset
    ({"version": "1", "sent_at": "2026-03-02T08:00:00Z", "disk_free_pct": 140}, "disk_free_pct"),
    ({"version": "1", "sent_at": "2026-03-02T08:00:00Z", "faults": ["f"] * 21}, "faults"),
])
def test_a_bad_heartbeat_is_a_422_naming_the_field(collector, body, why):
    token = collector.token(DEVICE)
    r = requests.post(f"{collector.url}/v1/heartbeat", json=body, headers={"Authorization": f"Bearer {token}"},
                      timeout=10)
    assert r.status_code == 422 and why in json.dumps(r.json())
    assert requests.post(f"{collector.url}/v1/heartbeat", json=body, timeout=10).status_code == 401


def test_the_heartbeat_reads_the_pi_temperature_where_it_exists(tmp_path):
    from kiosk.config import load_config

    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    with Journal(tmp_path / "j.db") as j:
        beat = collect(load_config(None, search=False, overrides={"journal.path": str(tmp_path / "j.db")}), j,
                       datetime.now(timezone.utc), zone=zone)
    assert beat["cpu_temp_c"] == 48.3 and beat["disk_free_bytes"] > 0
