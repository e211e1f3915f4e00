"""End to end, as a technician runs it: `collector serve`, `collector enrol-code`,
`kiosk enrol`, `kiosk demo`, `kiosk sync --once` (twice), and `kiosk sync` stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector_helpers import RunningCollector, fill_journal, open_store
from collector_process import free_port
from faultproxy import FaultProxy
from kiosk.journal import Journal

ROOT = Path(__file__).resolve().parent.parent
DEVICE = "demo-kiosk"  # the built-in default device id, which the demo uses
PROCESS_TIMEOUT_S = 120


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path / "state"),
                "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "GPIOZERO_PIN_FACTORY": "mock"})
    env.pop("KIOSK_CONFIG", None)
    env.pop("COLLECTOR_CONFIG", None)
    return env


def _run(tmp_path, *argv, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", *argv], env=_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _kiosk(tmp_path, *argv, url, check=True, journal=None):
    journal = journal or tmp_path / "journal.db"
    return _run(tmp_path, "kiosk.cli", "--set", f"journal.path={journal}",
                "--set", f"sync.collector_url={url}", "--set", "sync.timeout_s=3", *argv, check=check)


@pytest.fixture
def served(tmp_path):
    """`collector serve` as its own process on a free port, SQLite in tmp_path."""
    db = f"sqlite:///{tmp_path / 'collector.db'}"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "collector.cli", "serve", "--db", db, "--port", str(port),
                             "--log-level", "warning"], env=_env(tmp_path), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("collector serve did not start:\n" + proc.stdout.read())
            time.sleep(0.1)
    yield {"url": f"http://127.0.0.1:{port}", "db": db}
    proc.terminate()
    # uvicorn shuts down gracefully, then re-raises SIGTERM: systemd counts that as a clean stop.
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)


def test_demo_then_sync_once_leaves_the_collector_with_exactly_the_kiosks_entries(tmp_path, served):
    url, db = served["url"], served["db"]
    journal_path = tmp_path / "journal.db"
    # The code binds the kiosk to its venue from the moment it is minted: entries the
    # kiosk logs before it uses the code go up, entries from before the code would not.
    code = _run(tmp_path, "collector.cli", "enrol-code", "--device", DEVICE, "--venue", "DEMO-001",
                "--db", db).stdout.strip()
    # The demo fills this journal with no collector of its own (it refuses to upload to
    # one named on the command line); `kiosk sync` then takes the real road.
    _run(tmp_path, "kiosk.cli", "--set", f"journal.path={journal_path}", "demo", "--headless", "--fresh",
         "--no-collector")

    assert _kiosk(tmp_path, "enrol", "--code", code, url=url).stdout.startswith(f"enrolled {DEVICE}")
    again = _kiosk(tmp_path, "enrol", "--code", code, url=url, check=False)
    assert again.returncode != 0 and "already used" in again.stderr
    with Journal(journal_path) as j:
        ids = sorted(e.id for e in j.entries())
    assert ids

    first = _kiosk(tmp_path, "sync", "--once", "--no-fetch", url=url)
    assert f"uploaded {len(ids)} entries" in first.stdout and "0 left" in first.stdout
    rules = tmp_path / "rules.toml"
    rules.write_text('venue_type = "hospital"\n[dcc]\nmin_days_after_dose = 21\n', encoding="utf-8")
    keygen = _run(tmp_path, "collector.cli", "publisher-keygen", "--out", str(tmp_path / "publisher.pem"))
    public = keygen.stdout.split('publisher_key = "')[1].split('"')[0]
    _run(tmp_path, "collector.cli", "publish", "rules", str(rules), "--db", db, "--key", str(tmp_path / "publisher.pem"))
    second = _kiosk(tmp_path, "--set", f"sync.publisher_key={public}", "sync", "--once", url=url)  # with the fetch
    assert "uploaded 0 entries" in second.stdout
    assert "rules: updated" in second.stdout and "denylist: absent" in second.stdout
    with Journal(journal_path) as j:
        assert j.get_state("rules.fetched") == 'venue_type = "hospital"\n[dcc]\nmin_days_after_dose = 21\n'

    count = _run(tmp_path, "collector.cli", "count", "--db", db).stdout.strip()
    assert count == str(len(ids))
    store = open_store("sqlite", tmp_path)
    assert store.entry_ids() == ids
    store.close()
    status = _kiosk(tmp_path, "sync", "--status", url=url).stdout
    assert '"offline": false' in status and '"pending": 0' in status


def test_sync_once_exits_non_zero_when_entries_are_left(tmp_path):
    journal_path = tmp_path / "journal.db"
    with Journal(journal_path) as j:
        fill_journal(j, 7, device=DEVICE)
    down = f"http://127.0.0.1:{free_port()}"
    proc = _kiosk(tmp_path, "--set", "sync.device_token=some-token", "sync", "--once", "--no-fetch",
                  "--max-attempts", "2", url=down, check=False)
    assert proc.returncode == 1
    assert "7 left" in proc.stdout and "cannot reach the collector" in proc.stdout


def test_sync_without_a_token_says_how_to_get_one(tmp_path):
    proc = _kiosk(tmp_path, "sync", "--once", url="http://127.0.0.1:9", check=False)
    assert proc.returncode == 2 and "kiosk enrol --code" in proc.stderr


def test_sigterm_stops_kiosk_sync_promptly_and_cleanly(tmp_path):
    store = open_store("sqlite", tmp_path)
    journal_path = tmp_path / "journal.db"
    with Journal(journal_path) as j:
        ids = fill_journal(j, 20, device=DEVICE)
    with RunningCollector(store) as collector, FaultProxy(collector.port) as proxy:
        token = collector.token(DEVICE)
        proxy.queue("pass")        # the first round goes through...
        proxy.default = "503:3600"  # ...then the collector asks the kiosk to wait an hour
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "--set", f"journal.path={journal_path}",
             "--set", f"sync.collector_url={proxy.url}", "--set", f"sync.device_token={token}",
             "--set", "sync.batch_max_age_s=0.0", "--set", "sync.interval_s=1.0", "sync", "--no-fetch"],
            env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while store.count_entries() < len(ids) and time.monotonic() < deadline:
                time.sleep(0.1)
            with Journal(journal_path) as j:
                fill_journal(j, 3, device=DEVICE)  # these meet the 503 + Retry-After: 3600
            while not any(f.startswith("503") for f, _ in proxy.log) and time.monotonic() < deadline:
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)  # far less than the hour it was told to wait
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert sorted(store.entry_ids()) == sorted(ids)
    with Journal(journal_path) as j:
        assert j.pending_count() == 3
    store.close()


def test_kiosk_sync_before_enrolment_waits_for_the_token_then_uploads(tmp_path):
    """A fresh kiosk's sync service must not crash-loop before it is provisioned."""
    from kiosk.sync import store_token

    store = open_store("sqlite", tmp_path)
    journal_path = tmp_path / "journal.db"
    with Journal(journal_path) as j:
        ids = fill_journal(j, 5, device=DEVICE)
    with RunningCollector(store) as collector:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "--set", f"journal.path={journal_path}",
             "--set", f"sync.collector_url={collector.url}", "--set", "sync.interval_s=1.0",
             "--set", "sync.batch_max_age_s=0.0", "sync", "--no-fetch"],
            env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2.5)
            assert proc.poll() is None, proc.communicate()[1]
            assert store.count_entries() == 0
            with Journal(journal_path) as j:
                store_token(j, collector.token(DEVICE))  # what `kiosk enrol` does
            deadline = time.monotonic() + 60
            while store.count_entries() < len(ids) and time.monotonic() < deadline:
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "waiting for `kiosk enrol" in err
    assert sorted(store.entry_ids()) == sorted(ids)
    store.close()
