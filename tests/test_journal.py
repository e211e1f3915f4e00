"""Journal: committed entries survive kills, the repeat window holds, the outbox is exact."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk.errors import DeviceClosed, JournalError
from kiosk.journal import MIGRATIONS, Journal
from kiosk.model import Credential, Outcome, Reason, Scan, Verdict

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
FAIL = Verdict(Outcome.FAIL, Reason.SYMPTOMS, "hd1", "Nguyễn V*** A")
PASS = Verdict(Outcome.PASS, Reason.OK, "dcc", "Trần T*** B")


def rec(j: Journal, text: str, at: datetime, verdict: Verdict = PASS, **kw):
    return j.record(Scan(text, at=at), verdict, venue="V1", device="D1", **kw)


def test_file_is_private_and_in_wal_mode(journal_path):
    with Journal(journal_path) as j:
        rec(j, "a", T0)
        assert j.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert j.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert stat.S_IMODE(os.stat(journal_path).st_mode) == 0o600


def test_the_journal_is_laid_out_for_few_bytes_per_entry(journal_path):
    """SD wear (issue 21, bench/sdwear_bench.py): small pages, ids in scan order, no index
    keyed by a random HMAC, and the repeat check still finds the earlier scan."""
    with Journal(journal_path) as j:
        first = rec(j, "same code", T0)
        later = [rec(j, f"code {i}", T0 + timedelta(seconds=i + 1)) for i in range(5)]
        again = rec(j, "same code", T0 + timedelta(seconds=30))
        conn = j.db.conn
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 512
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        # Each index a commit touches is one more WAL frame: only the time index is left.
        assert not indexes & {"entries_code", "entries_subject", "entries_id", "entries_outbox"}
        assert "entries_time" in indexes
        ids = [first.id] + [e.id for e in later]
        assert ids == sorted(ids)  # time-ordered: every insert lands at the index's right edge
        assert not again.logged and again.id == first.id


def test_an_older_journal_loses_its_hmac_indexes_and_keeps_its_page_size(journal_path):
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(journal_path)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    with Journal(journal_path) as j:
        j.db.conn.execute("DELETE FROM migrations WHERE name='007_sequential_indexes'")
        j.db.execute("CREATE INDEX entries_code ON entries(code_hash, scanned_at)")
    with Journal(journal_path) as j:
        indexes = {r[0] for r in j.db.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "entries_code" not in indexes
        assert j.db.conn.execute("PRAGMA page_size").fetchone()[0] == 4096


def test_migrations_run_once_and_reopen_keeps_entries(journal_path):
    with Journal(journal_path) as j:
        e = rec(j, "a", T0)
        assert j.migrations() == sorted(name for name, _ in MIGRATIONS)
    with Journal(journal_path) as j:
        assert j.get(e.id) is not None
        assert j.migrations() == sorted(name for name, _ in MIGRATIONS)


def test_repeat_scan_within_window_is_not_logged_twice(journal_path):
    with Journal(journal_path, repeat_window_s=300) as j:
        first = rec(j, "HC1:same", T0)
        again = rec(j, "HC1:same", T0 + timedelta(seconds=299))
        assert first.logged and not again.logged
        assert again.id == first.id
        later = rec(j, "HC1:same", T0 + timedelta(seconds=301))
        assert later.logged
        other = rec(j, "HC1:other", T0 + timedelta(seconds=10))
        assert other.logged
        assert j.counts()["entries"] == 3


def test_zero_window_logs_every_scan():
    with Journal.memory(repeat_window_s=0) as j:
        assert rec(j, "x", T0).logged and rec(j, "x", T0).logged


def test_outbox_marks_only_acknowledged_entries(journal_path):
    with Journal(journal_path, repeat_window_s=0) as j:
        ids = [rec(j, f"code{i}", T0 + timedelta(seconds=i)).id for i in range(10)]
        assert [e.id for e in j.pending(4)] == ids[:4]
        assert j.mark_sent(ids[:4], now=T0) == 4
        assert j.mark_sent(ids[:4], now=T0) == 0  # a repeated ack changes nothing
        assert [e.id for e in j.pending(100)] == ids[4:]
        assert j.pending_count() == 6
        assert j.oldest_pending_at() == T0 + timedelta(seconds=4)


def test_upload_form_carries_no_raw_identifier():
    with Journal.memory() as j:
        cred = Credential("cccd", name="Nguyễn Văn An", subject_key="079123456789",
                          personal={"name": "Nguyễn Văn An", "phone": "09xx"})
        e = j.record(Scan("079123456789|...", at=T0), FAIL, cred, venue="V", device="D")
        up = e.as_upload()
        assert "079123456789" not in str({k: v for k, v in up.items() if k != "personal"})
        # The kiosk's own subject hash dies with the process: the collector keys the
        # person from the identifier in the personal fields (sealed wherever it is remote).
        assert up["subject_hash"] is None
        assert json.loads(up["personal"]) == {"name": "Nguyễn Văn An", "phone": "09xx",
                                              "subject": "079123456789"}  # unsealed: loopback
        assert j.seen_subject("079123456789", T0 - timedelta(minutes=1)) == [T0]


def test_personal_fields_sealed_when_a_sealer_is_set():
    with Journal.memory(sealer=lambda data: "sealed:" + str(len(data))) as j:
        cred = Credential("cccd", subject_key="1", personal={"name": "Nguyễn Văn An"})
        e = j.record(Scan("x", at=T0), PASS, cred, venue="V", device="D")
        assert e.sealed and e.personal.startswith("sealed:")


def test_override_answers_the_last_fail_once(journal_path):
    with Journal(journal_path) as j:
        failed = rec(j, "a", T0, FAIL)
        assert j.last().id == failed.id
        o = j.override(failed.id, now=T0 + timedelta(seconds=5))
        assert (o.outcome, o.reason, o.override_of) == ("pass", "override", failed.id)
        assert o.name_masked == "Nguyễn V*** A"
        assert j.last() is None
        with pytest.raises(JournalError):
            j.override("no-such-id", now=T0)


def test_purge_keeps_unsent_and_recent(journal_path):
    with Journal(journal_path, repeat_window_s=0) as j:
        old_sent = rec(j, "a", T0 - timedelta(days=30))
        old_unsent = rec(j, "b", T0 - timedelta(days=30))
        new_sent = rec(j, "c", T0 - timedelta(days=1))
        j.mark_sent([old_sent.id, new_sent.id], now=T0)
        assert j.purge(now=T0, retention_days=21) == 1
        assert j.get(old_sent.id) is None
        assert j.get(old_unsent.id) is not None and j.get(new_sent.id) is not None


def test_closed_journal_refuses_use_and_close_is_idempotent():
    j = Journal.memory()
    j.close()
    j.close()
    with pytest.raises(DeviceClosed):
        rec(j, "a", T0)


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="journal.db"):
        Journal(path)


def test_two_processes_share_the_file(journal_path):
    """The run loop writes while `kiosk sync` marks entries sent, through WAL."""
    with Journal(journal_path, repeat_window_s=0) as writer, Journal(journal_path) as sync:
        a = rec(writer, "a", T0)
        assert [e.id for e in sync.pending()] == [a.id]
        sync.mark_sent([a.id], now=T0)
        b = rec(writer, "b", T0)
        assert [e.id for e in writer.pending()] == [b.id]


WRITER = textwrap.dedent("""
    import sys
    from kiosk.journal import Journal
    from kiosk.model import Scan, Verdict, Outcome, Reason
    j = Journal(sys.argv[1], repeat_window_s=0)
    i = 0
    while True:
        e = j.record(Scan(f"code-{i}"), Verdict(Outcome.PASS, Reason.OK, "opaque"), venue="V", device="D")
        print(e.id, flush=True)   # the verdict would be signalled now
        i += 1
""")


def test_sigkill_loses_no_committed_entry(journal_path):
    journal_path.parent.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(journal_path)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parent.parent)
    signalled = []
    deadline = time.monotonic() + 30
    while len(signalled) < 200 and time.monotonic() < deadline:
        signalled.append(proc.stdout.readline().strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    signalled += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    assert len(signalled) >= 200
    with Journal(journal_path) as j:
        assert j.integrity() == "ok"
        stored = {e.id for e in j.entries()}
    missing = [i for i in signalled if i not in stored]
    assert missing == []


def test_journal_readable_by_plain_sqlite(journal_path):
    with Journal(journal_path) as j:
        rec(j, "a", T0)
    conn = sqlite3.connect(journal_path)
    assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 1
