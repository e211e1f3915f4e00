"""The kiosk's SQLite journal: entries, their upload outbox, trust data and small state.

Durability rules (DESIGN.md): WAL, `synchronous=FULL`, file mode 0600, named migrations
run in a transaction at open. `record()` returns only after the entry is committed, so
the caller may signal the verdict knowing a crash cannot lose it. Entry ids are UUIDs
made at scan time; the collector dedupes on them, so re-uploading is harmless.

    >>> with Journal.memory() as j:
    ...     entry = j.record(Scan("hello"), Verdict(Outcome.REVIEW, Reason.OK, "opaque"),
    ...                      venue="V1", device="D1")
    ...     j.counts()["entries"]
    1
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import sqlite_utils

from kiosk.errors import DeviceClosed, JournalError
from kiosk.files import fsync_dir
from kiosk.model import (UNVERIFIED_REASONS, Credential, Outcome, Reason, Scan, Verdict, iso_utc, time_of_id,
                         time_ordered_id, utcnow)

__all__ = ["Entry", "Journal", "MIGRATIONS", "BUSY_TIMEOUT_MS", "UNVERIFIED_REASONS"]

#: State rows older versions kept beside the hashes they keyed (a salt; the collector's
#: tracing key): with them an offline search of the ID space opened every hash.
#: Migration 005 deletes them.
_LEGACY_KEY_STATES = ("salt", "subject.tracing_key")
#: How long a writer waits for the other process (`kiosk sync`) to release the lock.
BUSY_TIMEOUT_MS = 10_000
FILE_MODE = 0o600
#: SD wear (bench/sdwear_bench.py): a new journal gets 512-byte pages, so a commit's WAL
#: frames are ~0.5 KiB each instead of 4; older journals keep the page size they have
#: (changing it needs a VACUUM out of WAL mode). An entry with its sealed tracing fields
#: is ~400 bytes: it still fits one page.
PAGE_SIZE = 512
#: Bytes of the in-memory HMAC kept per hash: 128 bits tell codes and people apart within
#: one repeat window and one process, at half the row of a full hex digest.
HASH_BYTES = 16
#: state row: every entry with a lower seq is uploaded (the outbox's low-water mark).
OUTBOX_FLOOR = "outbox.floor"
#: Checkpoint every 4,000 WAL pages (4 MiB): a page written by many commits is copied
#: back into the database once per checkpoint, so fewer checkpoints mean fewer bytes.
WAL_AUTOCHECKPOINT_PAGES = 4000
#: ...and the WAL is cut back to this size after a checkpoint, never left to grow.
WAL_SIZE_LIMIT = 8 << 20


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- migrations: (name, function). Append only; never edit a released one. -------------

def _m001_entries(db: sqlite_utils.Database) -> None:
    db["entries"].create({
        "id": str,              # UUID made at scan time
        "seq": int,             # local order
        "scanned_at": str,      # ISO 8601 UTC
        "device_id": str,
        "venue_code": str,
        "outcome": str,
        "reason": str,
        "scheme": str,
        "code_hash": str,       # salted hash of the QR text: repeat-scan detection
        "subject_hash": str,    # salted hash of the person's identifier, if known
        "name_masked": str,
        "personal": str,        # JSON of tracing fields, or a sealed box (base64)
        "sealed": int,
        "source": str,
        "engine": str,
        "override_of": str,
        "uploaded_at": str,     # NULL while in the outbox
        "batch_id": str,
    }, pk="seq", not_null={"id", "scanned_at", "outcome", "reason"})
    db.execute("CREATE UNIQUE INDEX entries_id ON entries(id)")
    db.execute("CREATE INDEX entries_outbox ON entries(seq) WHERE uploaded_at IS NULL")
    db.execute("CREATE INDEX entries_code ON entries(code_hash, scanned_at)")
    db.execute("CREATE INDEX entries_subject ON entries(subject_hash, scanned_at)")
    db.execute("CREATE INDEX entries_time ON entries(scanned_at)")


def _m002_state(db: sqlite_utils.Database) -> None:
    db["state"].create({"key": str, "value": str, "updated_at": str}, pk="key")


def _m003_trust(db: sqlite_utils.Database) -> None:
    # Trust list (EU gateway format, plus HD1 issuers): swapped atomically as a whole.
    db["trust_keys"].create({
        "kid": str,             # base64 of the 8-byte kid
        "kind": str,            # DSC | HD1
        "country": str,
        "raw": bytes,           # DER certificate or public key
        "imported_at": str,
    }, pk=("kid", "raw"))
    db.execute("CREATE INDEX trust_keys_kid ON trust_keys(kid)")
    db["revocations"].create({"hash": str}, pk="hash")  # hex, lower case
    db["denylist"].create({"hash": str, "note": str}, pk="hash")


def _m004_override_index(db: sqlite_utils.Database) -> None:
    # The guard button asks "has this fail been answered yet?": without an index that is
    # a scan of three weeks of entries.
    db.execute("CREATE INDEX entries_override ON entries(override_of) WHERE override_of IS NOT NULL")


def _m005_forget_keys(db: sqlite_utils.Database) -> None:
    # The salt and the tracing key sat beside the hashes they keyed: drop both, and the
    # hashes they made (repeat detection restarts, as after any reboot now).
    db.execute("DELETE FROM state WHERE key IN (%s)" % ",".join("?" * len(_LEGACY_KEY_STATES)),
               _LEGACY_KEY_STATES)
    db.execute("UPDATE entries SET code_hash=NULL, subject_hash=NULL")


def _m007_sequential_indexes(db: sqlite_utils.Database) -> None:
    # The repeat and history lookups look minutes back: the scanned_at index finds those
    # rows. Indexes keyed by a (random) HMAC put every insert on a random page, which
    # the WAL then carries and the checkpoint rewrites: most of an entry's bytes on the SD
    # card (issue 21). Entry ids are time-ordered now, so entries_id appends as well.
    db.execute("DROP INDEX IF EXISTS entries_code")
    db.execute("DROP INDEX IF EXISTS entries_subject")


def _m008_no_id_or_outbox_index(db: sqlite_utils.Database) -> None:
    # SD wear (issue 21): each index a commit touches adds a WAL frame. Ids are found by
    # their scan time (a UUIDv7 carries it) on entries_time; the outbox is the rows from
    # the OUTBOX_FLOOR state row up (seq is the rowid, so that is a range scan).
    db.execute("DROP INDEX IF EXISTS entries_id")
    db.execute("DROP INDEX IF EXISTS entries_outbox")


def _m006_drop_deny_notes(db: sqlite_utils.Database) -> None:
    # Deny-list notes ("court order") are the collector's, never the kiosk's (issue 23
    # item 8): a journal from before then drops the ones it held.
    db.execute("UPDATE denylist SET note='' WHERE note != ''")


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_entries", _m001_entries),
    ("002_state", _m002_state),
    ("003_trust", _m003_trust),
    ("004_override_index", _m004_override_index),
    ("005_forget_keys", _m005_forget_keys),
    ("006_drop_deny_notes", _m006_drop_deny_notes),
    ("007_sequential_indexes", _m007_sequential_indexes),
    ("008_no_id_or_outbox_index", _m008_no_id_or_outbox_index),
]


@dataclass(frozen=True)
class Entry:
    """One committed journal entry, as uploaded to the collector."""

    id: str
    scanned_at: str
    device_id: str
    venue_code: str
    outcome: str
    reason: str
    scheme: str
    subject_hash: bytes | None  # the in-memory HMAC (Journal.hash_id), never uploaded
    name_masked: str | None
    personal: str | None
    sealed: bool
    source: str | None
    engine: str | None
    override_of: str | None
    logged: bool = True  # False when this is an earlier entry returned for a repeat scan

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, logged: bool = True) -> "Entry":
        return cls(
            id=row["id"], scanned_at=row["scanned_at"], device_id=row["device_id"],
            venue_code=row["venue_code"], outcome=row["outcome"], reason=row["reason"],
            scheme=row["scheme"], subject_hash=row["subject_hash"],
            name_masked=row["name_masked"], personal=row["personal"],
            sealed=bool(row["sealed"]), source=row["source"], engine=row["engine"],
            override_of=row["override_of"], logged=logged,
        )

    def as_upload(self) -> dict[str, Any]:
        """The entry as the collector's `POST /v1/batches` expects it."""
        return {
            "id": self.id, "scanned_at": self.scanned_at, "device_id": self.device_id,
            "venue_code": self.venue_code, "outcome": self.outcome, "reason": self.reason,
            # The kiosk's subject hash is keyed by a key that dies with the process: it means
            # nothing elsewhere. The collector keys the person from the sealed identifier.
            "scheme": self.scheme, "subject_hash": None,
            "name_masked": self.name_masked, "personal": self.personal,
            "sealed": self.sealed, "override_of": self.override_of,
        }


class Journal:
    """The SQLite journal. Thread-safe for one writer at a time; a context manager.

    Open one per process: the run loop and `kiosk sync` share the file through WAL.
    """

    def __init__(self, path: str | os.PathLike | None, *, repeat_window_s: float = 300.0,
                 sealer: Callable[[bytes], str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.repeat_window = timedelta(seconds=repeat_window_s)
        self._sealer = sealer
        self._lock = threading.RLock()
        self._closed = False
        try:
            if self.path is not None:
                blocking = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
                if blocking is not None:  # mkdir would only say "File exists"
                    raise NotADirectoryError(errno.ENOTDIR, f"{blocking} is a file, not a folder "
                                             "(journal.path must name a file inside a folder)")
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fresh = not self.path.exists()
                if fresh:
                    # Create with 0600 before SQLite opens it, so no moment is world-readable.
                    fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
                    os.close(fd)
                    # The new name must be on the card before the first entry is shown.
                    fsync_dir(self.path.parent)
                else:
                    os.chmod(self.path, FILE_MODE)
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                       isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if self.path is not None:
                if self.path.stat().st_size == 0:
                    # Small pages for a new journal: each commit appends a few pages to
                    # the WAL, and SD wear is counted in those bytes (bench/sdwear_bench.py).
                    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
                conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            # Deleted rows (purged entries, a replaced deny list, sealed clear text) are
            # overwritten with zeros, not left in free pages for a stolen card to show.
            conn.execute("PRAGMA secure_delete=ON")
            self.db = sqlite_utils.Database(conn)
            self._migrate()
            # Repeat-scan and history hashes are keyed by a key that lives only in this
            # process: never written, so the SD card alone cannot be searched for an ID
            # number. A restart forgets who was seen (at most one repeat window).
            self._key = secrets.token_bytes(32)
            if self._sealer is not None:
                self._seal_clear_rows()
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path}: cannot open journal: {exc}") from exc
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot open journal: {exc.strerror or exc}") from exc

    @classmethod
    def memory(cls, **kwargs: Any) -> "Journal":
        return cls(None, **kwargs)

    # --- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.db.conn.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceClosed("journal is closed")

    # --- transactions & migrations -------------------------------------------------
    def atomic(self) -> "_Atomic":
        """`with journal.atomic():` runs the block as one IMMEDIATE transaction."""
        return _Atomic(self)

    def _migrate(self) -> None:
        conn = self.db.conn
        conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-check inside the lock: another process may have migrated meanwhile.
                if conn.execute("SELECT 1 FROM migrations WHERE name=?", (name,)).fetchone():
                    conn.execute("COMMIT")
                    continue
                fn(self.db)
                conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, iso_utc(utcnow())))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def migrations(self) -> list[str]:
        return [r[0] for r in self.db.conn.execute("SELECT name FROM migrations ORDER BY name")]

    # --- state (small key/value store: salt, sync status, trust metadata) ----------
    def get_state(self, key: str, default: str | None = None) -> str | None:
        self._check_open()
        row = self.db.conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_state(self, key: str, value: str, *, now: datetime | None = None) -> None:
        self._check_open()
        with self.atomic():
            self._put_state(key, value, now or utcnow())

    def _put_state(self, key: str, value: str, now: datetime) -> None:
        """set_state inside a transaction the caller holds."""
        self.db.conn.execute(
            "INSERT INTO state(key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
            (key, value, iso_utc(now)))

    def get_json(self, key: str, default: Any = None) -> Any:
        raw = self.get_state(key)
        return json.loads(raw) if raw is not None else default

    def set_json(self, key: str, value: Any, *, now: datetime | None = None) -> None:
        self.set_state(key, json.dumps(value, ensure_ascii=False, sort_keys=True), now=now)

    def _seal_clear_rows(self) -> None:
        """Seal personal fields an older, unsealed configuration left in clear."""
        assert self._sealer is not None
        with self._lock, self.atomic():
            rows = self.db.conn.execute(
                "SELECT seq, personal FROM entries WHERE sealed=0 AND personal IS NOT NULL").fetchall()
            for seq, personal in rows:
                self.db.conn.execute("UPDATE entries SET personal=?, sealed=1 WHERE seq=?",
                                     (self._sealer(personal.encode("utf-8")), seq))

    def hash_id(self, text: str) -> bytes:
        """HMAC-SHA256 of an identifier under this process's in-memory key, its first
        HASH_BYTES bytes (stored as a BLOB): the same person hashes the same until the
        kiosk restarts, and nothing on the SD card can recompute it."""
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).digest()[:HASH_BYTES]

    # --- entries -------------------------------------------------------------------
    def record(self, scan: Scan, verdict: Verdict, credential: Credential | None = None, *,
               venue: str, device: str, override_of: str | None = None) -> Entry:
        """Commit one entry and return it. A repeat of the same code within the repeat
        window is not logged twice: the earlier entry comes back with `logged=False`."""
        self._check_open()
        code_hash = self.hash_id("code:" + scan.text)
        unverified = verdict.reason.value in UNVERIFIED_REASONS
        if unverified:
            credential = None  # a forged or broken credential names no one
        subject_hash = (self.subject_hash(credential.subject_key)
                        if credential is not None and credential.subject_key else None)
        personal, sealed = self._personal(credential)
        row = {
            "id": scan.id, "scanned_at": iso_utc(scan.at), "device_id": device,
            "venue_code": venue, "outcome": verdict.outcome.value, "reason": verdict.reason.value,
            "scheme": verdict.scheme, "code_hash": code_hash, "subject_hash": subject_hash,
            "name_masked": None if unverified else verdict.name, "personal": personal, "sealed": int(sealed),
            "source": scan.source, "engine": scan.engine, "override_of": override_of,
            "uploaded_at": None, "batch_id": None,
        }
        with self._lock, self.atomic():
            if override_of is None:
                earlier = self._recent(code_hash, scan.at)
                if earlier is not None:
                    return Entry.from_row(earlier, logged=False)
            existing = self._row("SELECT * FROM entries WHERE scanned_at=? AND id=?", (row["scanned_at"], scan.id))
            if existing is not None:  # the same scan recorded twice: idempotent
                return Entry.from_row(existing, logged=False)
            self._insert(row)
        return Entry.from_row(row)

    def _insert(self, row: Mapping[str, Any]) -> None:
        # Plain SQL: sqlite-utils' insert commits on its own, which would end our
        # IMMEDIATE transaction between the repeat check and the insert.
        cols = list(row)
        self.db.conn.execute(
            "INSERT INTO entries (%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))),
            tuple(row[c] for c in cols))

    def _personal(self, credential: Credential | None) -> tuple[str | None, bool]:
        """The tracing fields and the identifier as JSON, sealed to the collector when a
        sealer is set: the collector derives the cross-kiosk person key from it."""
        if credential is None or not (credential.personal or credential.subject_key):
            return None, False
        from kiosk.seal import SUBJECT_FIELD

        fields = dict(credential.personal)
        if credential.subject_key:
            fields[SUBJECT_FIELD] = credential.subject_key
        blob = json.dumps(fields, ensure_ascii=False, sort_keys=True)
        if self._sealer is not None:
            return self._sealer(blob.encode("utf-8")), True
        return blob, False

    def _recent(self, code_hash: bytes, at: datetime) -> dict[str, Any] | None:
        if self.repeat_window <= timedelta(0):
            return None
        since = iso_utc(at - self.repeat_window)
        return self._row(
            "SELECT * FROM entries WHERE code_hash=? AND scanned_at>=? AND scanned_at<=? "
            "AND override_of IS NULL ORDER BY scanned_at DESC LIMIT 1",
            (code_hash, since, iso_utc(at)))

    def subject_hash(self, subject_key: str) -> bytes:
        """How this person is found again on this kiosk (repeat rules): keyed with the
        in-memory key, so it is meaningless on a copy of the card and to the collector."""
        return self.hash_id("subject:" + subject_key)

    def seen_subject(self, subject_key: str, since: datetime) -> list[datetime]:
        """Times this person was logged at or after `since` (for repeat-scan policy)."""
        h = self.subject_hash(subject_key)
        rows = self.db.conn.execute(
            "SELECT scanned_at FROM entries WHERE subject_hash=? AND scanned_at>=? ORDER BY scanned_at",
            (h, iso_utc(since))).fetchall()
        return [_parse_iso(r[0]) for r in rows]

    def _row(self, sql: str, params: Iterable[Any]) -> dict[str, Any] | None:
        cur = self.db.conn.execute(sql, tuple(params))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cur.description], row))

    def get(self, entry_id: str) -> Entry | None:
        """The entry with this id. Found by the scan time its UUIDv7 carries (entries_time);
        an id of another form (an old journal's UUIDv4) by reading the table."""
        self._check_open()
        row = None
        at = time_of_id(entry_id)
        if at is not None:
            row = self._row("SELECT * FROM entries WHERE scanned_at>=? AND scanned_at<=? AND id=?",
                            (iso_utc(at - ID_TIME_SLACK), iso_utc(at + ID_TIME_SLACK), entry_id))
        if row is None:
            row = self._row("SELECT * FROM entries WHERE id=?", (entry_id,))
        return Entry.from_row(row) if row else None

    def last(self, *, outcomes: Iterable[str] = ("fail", "review"), since: datetime | None = None) -> Entry | None:
        """The newest entry with one of `outcomes` that no override has answered yet."""
        self._check_open()
        outs = tuple(outcomes)
        sql = ("SELECT * FROM entries e WHERE outcome IN (%s) AND override_of IS NULL "
               "AND NOT EXISTS (SELECT 1 FROM entries o WHERE o.override_of = e.id)" % ",".join("?" * len(outs)))
        params: list[Any] = list(outs)
        if since is not None:
            sql += " AND scanned_at>=?"
            params.append(iso_utc(since))
        row = self._row(sql + " ORDER BY seq DESC LIMIT 1", params)
        return Entry.from_row(row) if row else None

    def override(self, entry_id: str, *, now: datetime, device: str | None = None) -> Entry:
        """A guard admitted the person of `entry_id` after a manual check: log an
        `override` pass that points to it."""
        original = self.get(entry_id)
        if original is None:
            raise JournalError(f"no entry {entry_id} to override")
        with self._lock, self.atomic():
            row = {
                "id": time_ordered_id(now), "scanned_at": iso_utc(now), "device_id": device or original.device_id,
                "venue_code": original.venue_code, "outcome": Outcome.PASS.value, "reason": Reason.OVERRIDE.value,
                "scheme": original.scheme, "code_hash": None, "subject_hash": original.subject_hash,
                "name_masked": original.name_masked, "personal": original.personal,
                "sealed": int(original.sealed), "source": "guard", "engine": "button",
                "override_of": entry_id, "uploaded_at": None, "batch_id": None,
            }
            self._insert(row)
        return Entry.from_row(row)

    def entries(self, *, limit: int | None = None) -> list[Entry]:
        self._check_open()
        sql = "SELECT * FROM entries ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cur = self.db.conn.execute(sql)
        cols = [c[0] for c in cur.description]
        return [Entry.from_row(dict(zip(cols, r))) for r in cur.fetchall()]

    # --- outbox --------------------------------------------------------------------
    # The outbox is every row from the floor (OUTBOX_FLOOR: all lower seqs are uploaded)
    # up with uploaded_at NULL: a rowid range, no index to keep. The floor stays right
    # because a new row's seq is max(seq) + 1, only mark_sent() raises it (inside the
    # transaction that uploads), and purge() and requeue() lower it in theirs.
    _OUTBOX = (f"seq >= coalesce((SELECT CAST(value AS INTEGER) FROM state WHERE key='{OUTBOX_FLOOR}'), 0) "
               "AND uploaded_at IS NULL")

    def pending(self, limit: int = 500) -> list[Entry]:
        """Committed entries not yet acknowledged by the collector, oldest first."""
        self._check_open()
        cur = self.db.conn.execute(f"SELECT * FROM entries WHERE {self._OUTBOX} ORDER BY seq LIMIT ?", (int(limit),))
        cols = [c[0] for c in cur.description]
        return [Entry.from_row(dict(zip(cols, r))) for r in cur.fetchall()]

    def pending_count(self) -> int:
        return self.db.conn.execute(f"SELECT count(*) FROM entries WHERE {self._OUTBOX}").fetchone()[0]

    def oldest_pending_at(self) -> datetime | None:
        row = self.db.conn.execute(
            f"SELECT scanned_at FROM entries WHERE {self._OUTBOX} ORDER BY seq LIMIT 1").fetchone()
        return _parse_iso(row[0]) if row else None

    def mark_sent(self, ids: Iterable[str], *, now: datetime) -> int:
        """Mark entries acknowledged by the collector. Returns how many changed. The row
        gains only its upload time (the batch id is the collector's to keep), so it still
        fits its page."""
        self._check_open()
        ids = list(ids)
        changed = 0
        conn = self.db.conn
        with self._lock, self.atomic():
            for chunk in _chunks(ids, 500):
                cur = conn.execute(f"UPDATE entries SET uploaded_at=? WHERE {self._OUTBOX} AND id IN (%s)"
                                   % ",".join("?" * len(chunk)), (iso_utc(now), *chunk))
                changed += cur.rowcount
            if changed:
                # Raise the floor to the oldest entry still waiting (or past the newest).
                floor = conn.execute(
                    f"SELECT coalesce((SELECT min(seq) FROM entries WHERE {self._OUTBOX}), "
                    "(SELECT coalesce(max(seq), 0) + 1 FROM entries))").fetchone()[0]
                self._put_state(OUTBOX_FLOOR, str(floor), now)
        return changed

    def requeue(self) -> int:
        """Put every entry still in the journal back in the outbox (the collector lost what
        it had acknowledged; it dedupes what it kept). Returns how many were requeued."""
        self._check_open()
        with self._lock, self.atomic():
            cur = self.db.conn.execute("UPDATE entries SET uploaded_at=NULL WHERE uploaded_at IS NOT NULL")
            self.db.conn.execute("DELETE FROM state WHERE key=?", (OUTBOX_FLOOR,))
        return cur.rowcount

    # --- retention & stats ---------------------------------------------------------
    def purge(self, *, now: datetime, retention_days: int) -> int:
        """Delete entries that were uploaded and are older than the retention window."""
        cutoff = iso_utc(now - timedelta(days=retention_days))
        with self._lock, self.atomic():
            cur = self.db.conn.execute(
                "DELETE FROM entries WHERE uploaded_at IS NOT NULL AND scanned_at < ?", (cutoff,))
            # The newest rows gone, SQLite gives their seqs out again: the floor comes down
            # to past the newest row left, or the next entries would never leave.
            self.db.conn.execute(
                "UPDATE state SET value=CAST(min(CAST(value AS INTEGER), "
                "(SELECT coalesce(max(seq), 0) + 1 FROM entries)) AS TEXT) WHERE key=?", (OUTBOX_FLOOR,))
        return cur.rowcount

    def screen_counts(self, *, now: datetime) -> tuple[int, int]:
        """(people logged today, entries waiting for upload): the idle screen's two numbers,
        from two indexed queries, cheap enough to refresh every few seconds."""
        return self._today_count(now), self.pending_count()

    def _today_count(self, now: datetime) -> int:
        self._check_open()
        start = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        return self.db.conn.execute(
            "SELECT count(*) FROM entries WHERE scanned_at>=? AND override_of IS NULL",
            (iso_utc(start),)).fetchone()[0]

    def counts(self, *, today: datetime | None = None) -> dict[str, Any]:
        self._check_open()
        conn = self.db.conn
        by = dict(conn.execute("SELECT outcome, count(*) FROM entries GROUP BY outcome").fetchall())
        reasons = dict(conn.execute("SELECT reason, count(*) FROM entries GROUP BY reason").fetchall())
        out = {
            "entries": sum(by.values()),
            "pending_upload": self.pending_count(),
            "by_verdict": {k: by.get(k, 0) for k in ("pass", "fail", "review")},
            "by_reason": reasons,
        }
        if today is not None:
            out["today"] = self._today_count(today)
        return out

    def integrity(self) -> str:
        """`ok`, or what SQLite's integrity check found."""
        rows = self.db.conn.execute("PRAGMA integrity_check").fetchall()
        return "; ".join(r[0] for r in rows)


class _Atomic:
    """An IMMEDIATE transaction that nests (inner blocks join the outer one)."""

    def __init__(self, journal: Journal) -> None:
        self.j = journal
        self.outer = False

    def __enter__(self) -> None:
        self.j._lock.acquire()
        conn = self.j.db.conn
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")
            self.outer = True

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self.j.db.conn
        try:
            if self.outer:
                if exc_type is None:
                    try:
                        conn.execute("COMMIT")
                    except sqlite3.OperationalError as err:
                        self._rollback(conn)
                        raise JournalError(f"{self.j.path}: commit failed: {err}") from err
                else:
                    self._rollback(conn)
                    if isinstance(exc, sqlite3.OperationalError):
                        # Disk full or I/O error mid-transaction: nothing was committed.
                        raise JournalError(f"{self.j.path}: write failed: {exc}") from exc
        finally:
            self.j._lock.release()

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite has already rolled back by itself after SQLITE_FULL / SQLITE_IOERR.
        if conn.in_transaction:
            conn.execute("ROLLBACK")


#: get(): how far from the time in its UUIDv7 an entry's scanned_at may be (the same
#: instant, rounded to milliseconds; a second of slack costs nothing on the time index).
ID_TIME_SLACK = timedelta(seconds=1)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
