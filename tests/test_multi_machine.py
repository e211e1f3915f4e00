"""The collector on more than one machine (issue 22), on real parts started here: a
PostgreSQL primary and a streaming replica made by pg_basebackup, two `collector serve`
processes behind haproxy (Debian's), kiosks uploading through haproxy with the real
Uploader from real journals.

- One collector is killed (SIGKILL, mid-run): the kiosks carry on through the other; at
  the end every entry of every journal is at the collector once, and the report's
  rollup counts each once.
- The daily report is read from the replica: with the replica's replay paused, new
  entries are on the primary but not in the report; resumed, they are.

Needs PostgreSQL's server binaries and haproxy (scripts/setup.sh --dev installs both);
about 15 s. With CI=true it fails instead of skipping.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from collector import report
from collector.storage import REPORT_TZ, Store
from collector_helpers import ADMIN_TOKEN, fill_journal
from collector_process import ServerProcess, free_port
from kiosk.journal import Journal
from kiosk.sync import Uploader

KIOSKS = 6
ROUND = 25  # entries a kiosk records between uploads


def _cannot_run(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI installs it (scripts/setup.sh --dev)")
    pytest.skip(why)


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        _cannot_run("PostgreSQL server binaries not installed (Debian package postgresql)")
    return found[-1].parent


def _as_pg(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


def _run(*cmd: str) -> None:
    result = subprocess.run(_as_pg(*cmd), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.fixture(scope="module")
def databases():
    """(primary URL, replica URL, psql-able replica port): a fresh cluster and its standby."""
    bin_ = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="kiosk-repl-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    primary, replica = base / "primary", base / "replica"
    p1, p2 = free_port(), free_port()
    _run(str(bin_ / "initdb"), "-D", str(primary), "-U", "kiosk", "-A", "trust", "-E", "UTF8", "--no-locale")
    common = "-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
    _run(str(bin_ / "pg_ctl"), "-D", str(primary), "-l", str(base / "primary.log"), "-w", "start",
         "-o", f"{common} -p {p1} -k {base} -c wal_level=replica -c max_wal_senders=4")
    started = [primary]
    try:
        _run(str(bin_ / "createdb"), "-h", "127.0.0.1", "-p", str(p1), "-U", "kiosk", "collector")
        # The standby: a base backup that writes its own primary_conninfo (-R), streaming;
        # a fast checkpoint (the default spreads it over minutes).
        _run(str(bin_ / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(p1), "-U", "kiosk", "-D", str(replica),
             "-R", "-X", "stream", "--checkpoint=fast")
        _run(str(bin_ / "pg_ctl"), "-D", str(replica), "-l", str(base / "replica.log"), "-w", "start",
             "-o", f"{common} -p {p2} -k {base} -c hot_standby=on")
        started.append(replica)
        yield (f"postgresql+psycopg://kiosk@127.0.0.1:{p1}/collector",
               f"postgresql+psycopg://kiosk@127.0.0.1:{p2}/collector")
    finally:
        for data in reversed(started):
            subprocess.run(_as_pg(str(bin_ / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
                           capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


HAPROXY = """global
    maxconn 500
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend collectors
    bind 127.0.0.1:{port}
    default_backend collectors
backend collectors
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
    server a 127.0.0.1:{a} check
    server b 127.0.0.1:{b} check
"""


@pytest.fixture
def balanced(databases, tmp_path):
    if shutil.which("haproxy") is None:
        _cannot_run("haproxy not installed (Debian package haproxy)")
    primary, replica = databases
    Store(primary).close()  # the tables, made once before two servers race to make them
    env = {"COLLECTOR_ADMIN_TOKEN": ADMIN_TOKEN, "COLLECTOR_READ_DB_URL": replica}
    a, b = ServerProcess(primary, env=env), ServerProcess(primary, env=env)
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY.format(port=port, a=a.port, b=b.port))
    proxy = subprocess.Popen(["haproxy", "-f", str(cfg), "-db"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline and proxy.poll() is None, proxy.stderr.read()
        time.sleep(0.1)
    try:
        yield url, a, b, primary, replica
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        a.close()
        b.close()


def _report_total(url: str, day) -> int:
    body = requests.get(f"{url}/v1/reports/daily.csv", params={"date": day.isoformat()},
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    body.raise_for_status()
    rows = list(csv.DictReader(io.StringIO(body.text.lstrip("\ufeff"))))
    return sum(int(r["entries"]) for r in rows)


def test_a_killed_collector_loses_nothing_and_reports_read_the_replica(balanced, tmp_path):
    url, a, b, primary_url, replica_url = balanced
    primary = Store(primary_url, create=False)
    now = datetime.now(timezone.utc)
    day = now.astimezone(REPORT_TZ).date()
    # Scans from two hours ago (or local midnight), all on today's report.
    start = max(now - timedelta(hours=2), datetime.combine(day, datetime.min.time(), REPORT_TZ) + timedelta(minutes=1))
    enrolled = start - timedelta(seconds=30)
    kiosks = []
    for i in range(KIOSKS):
        device = f"kiosk-{i}"
        token = primary.enrol(device, primary.create_enrol_code(device, now=enrolled, venue=f"V{i}"), now=enrolled)
        kiosks.append((device, token, Journal(tmp_path / f"{device}.db")))
    recorded: dict[str, list[str]] = {d: [] for d, _, _ in kiosks}
    killed = threading.Event()
    stop = threading.Event()
    errors: list[str] = []

    def run(device: str, token: str, journal: Journal, n: int) -> None:
        up = Uploader(journal, url=url, device_id=device, token=token, batch_size=50, timeout_s=5,
                      base_backoff_s=0.05, max_backoff_s=0.5)
        rounds = 0
        while not stop.is_set():
            at = start + timedelta(seconds=rounds * ROUND / 10 + n * 600)
            recorded[device] += fill_journal(journal, ROUND, venue=f"V{n}", device=device, start=at,
                                             step=timedelta(milliseconds=100))
            result = up.drain(force=True)
            if result.error:
                errors.append(result.error)
            rounds += 1
        deadline = time.monotonic() + 60
        while journal.pending_count() and time.monotonic() < deadline:  # what is left, after the run
            up.drain(force=True)
            time.sleep(0.2)
        up.close()

    threads = [threading.Thread(target=run, args=(d, t, j, n)) for n, (d, t, j) in enumerate(kiosks)]
    for t in threads:
        t.start()
    time.sleep(3)
    os.killpg(a.proc.pid, signal.SIGKILL)  # one machine gone, mid-upload
    killed.set()
    before_kill = sum(len(v) for v in recorded.values())
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    total = sum(len(v) for v in recorded.values())
    assert total > before_kill > 0  # the kiosks carried on after the kill

    for device, _, journal in kiosks:
        assert journal.pending_count() == 0, device
    from collector.storage import entries

    with primary.engine.connect() as conn:
        ids = set(conn.execute(sa.select(entries.c.id)).scalars())
    assert ids == {i for v in recorded.values() for i in v}  # none lost, none extra
    assert sum(n for *_, n in [tuple(r.values()) for r in report._counts(primary, day, None)]) == total

    # Reports come from the replica: once it has caught up, they show everything...
    deadline = time.monotonic() + 30
    while _report_total(url, day) != total:
        assert time.monotonic() < deadline, "the replica never caught up"
        time.sleep(0.5)
    # ...and with its replay paused, what arrives now is on the primary, not in the report.
    replica = sa.create_engine(replica_url)
    with replica.connect() as conn:
        conn.execute(sa.text("SELECT pg_wal_replay_pause()"))
        conn.commit()
    device, token, journal = kiosks[0]
    more = fill_journal(journal, 5, venue="V0", device=device, start=start + timedelta(minutes=90),
                        step=timedelta(seconds=1))
    with Uploader(journal, url=url, device_id=device, token=token) as up:
        assert up.drain(force=True).error is None
    assert primary.count_entries() == total + len(more)
    assert _report_total(url, day) == total
    with replica.connect() as conn:
        conn.execute(sa.text("SELECT pg_wal_replay_resume()"))
        conn.commit()
    deadline = time.monotonic() + 30
    while _report_total(url, day) != total + len(more):
        assert time.monotonic() < deadline, "the replica did not resume"
        time.sleep(0.3)
    replica.dispose()
    primary.close()
    for _, _, journal in kiosks:
        journal.close()
    print(f"{total} entries from {KIOSKS} kiosks, {before_kill} before the kill; "
          f"{len(errors)} upload rounds ended early and were retried")
