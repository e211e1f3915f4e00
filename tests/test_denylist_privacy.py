"""Issue 23 item 8: what a stolen SD card shows of the deny list. A list synced from a
real collector keeps only the keyed hashes on the kiosk: the reasons ("why is this
person denied") stay at the collector, in neither the journal file nor its WAL; the
journal overwrites what it deletes (PRAGMA secure_delete), so a replaced list or a
purged entry does not linger in free pages; a journal written before this drops the
notes it held when opened."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

from collector_helpers import PUBLISHER_KEY, RunningCollector, open_store, publish_raw
from kiosk.checks.denylist import MIN_N, make_denylist, subject_denied
from kiosk.checks.trust import TrustStore
from kiosk.journal import Journal
from kiosk.sync import Fetcher

NOW = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
NOTE = "lệnh của toà án 0412/QĐ"  # a court order, as an officer would write it


def _card(path) -> bytes:
    """Every byte a thief gets: the journal file and its write-ahead log."""
    out = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return out + (wal.read_bytes() if wal.exists() else b"")


def test_a_synced_deny_list_leaves_no_note_on_the_card(tmp_path):
    store = open_store("sqlite", tmp_path)
    path = tmp_path / "journal.db"
    with RunningCollector(store) as collector, Journal(path) as journal:
        publish_raw(store, "denylist", make_denylist([("cccd:079190000001", NOTE)], n=MIN_N), now=NOW)
        with Fetcher(journal, url=collector.url, token=collector.token(), publisher_key=PUBLISHER_KEY) as f:
            assert f.fetch("denylist") == "updated"
        assert subject_denied(TrustStore(journal), "cccd:079190000001")  # still enforced
        card = _card(path)
    store.close()
    assert NOTE.encode() not in card and "0412/QĐ".encode() not in card


def _connect_with_secure_delete_off(real_connect):
    """SQLite as builds without SQLITE_SECURE_DELETE open it (python.org's, pysqlite3
    wheels); Debian's, which this machine runs, turns it on at compile time."""
    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete=OFF")
        return conn
    return connect


def test_the_journal_overwrites_what_it_deletes(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite3, "connect", _connect_with_secure_delete_off(sqlite3.connect))
    probe = "Nguyen Van Bi Mat 079190000001 " * 40  # ASCII: stored as these very bytes
    path = tmp_path / "journal.db"
    with Journal(path) as journal:
        conn = journal.db.conn
        journal.set_state("other", "x")
        journal.set_state("probe", probe)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert b"Bi Mat 079190000001" in _card(path)  # the probe really reached the file
        conn.execute("DELETE FROM state WHERE key='probe'")  # as a purge deletes rows
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"Bi Mat" not in _card(path) and b"079190000001" not in _card(path)


def test_notes_from_an_older_journal_are_dropped_when_it_opens(tmp_path):
    path = tmp_path / "journal.db"
    with Journal(path):
        pass
    conn = sqlite3.connect(path)  # as a kiosk before this fix left it
    conn.execute("INSERT INTO denylist(hash, note) VALUES (?, ?)", ("ab" * 32, NOTE))
    conn.execute("DELETE FROM migrations WHERE name='006_drop_deny_notes'")
    conn.commit()
    conn.close()
    with Journal(path) as journal:
        assert journal.db.conn.execute("SELECT note FROM denylist").fetchall() == [("",)]
        journal.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert NOTE.encode() not in _card(path)
