"""The collector's store: one SQLAlchemy Core code path for SQLite and PostgreSQL.

Entries are unique on their UUID (made at scan time on the kiosk); a batch is inserted
with `INSERT ... ON CONFLICT DO NOTHING` in one transaction (on PostgreSQL from a COPY into
a per-session stage), so a resent batch adds nothing and the answer says how many were new
and how many were already there.

    >>> store = Store("sqlite://")
    >>> store.create_enrol_code("kiosk-1", now=datetime(2026, 1, 1, tzinfo=timezone.utc))[:4].isalnum()
    True
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from collector import partitions

from kiosk.checks.signed import DOCUMENTS as SIGNED_DOCUMENTS
from kiosk.checks.signed import SignedDocError, peek

__all__ = [
    "create_once",
    "Store", "BatchResult", "DeviceAuth", "Document", "EnrolError", "REPORT_TZ", "DOCUMENTS",
    "local_day", "metadata",
]


#: Engines each module's own tables were created on, per MetaData (weak: an engine a
#: test dropped never vouches for a new one that happens to reuse its address).
_CREATED: "weakref.WeakKeyDictionary[sa.MetaData, weakref.WeakSet[sa.Engine]]" = weakref.WeakKeyDictionary()


def create_once(metadata: sa.MetaData, engine: sa.Engine) -> None:
    """Create the tables of a module's `metadata` on `engine`, once per process
    (create_all is idempotent, so several processes may race on it harmlessly)."""
    done = _CREATED.setdefault(metadata, weakref.WeakSet())
    if engine not in done:
        metadata.create_all(engine)
        done.add(engine)

#: The report day is Vietnam's local day. Vietnam has had no daylight saving since 1975,
#: so a fixed offset is exact and needs no tz database on the server.
REPORT_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
#: A one-time enrolment code is valid this long after it is minted.
ENROL_CODE_TTL = timedelta(days=7)
#: Documents the collector publishes to kiosks (GET /v1/<name>), each a signed envelope
#: (kiosk.checks.signed; one register() there adds a kind).
DOCUMENTS = tuple(SIGNED_DOCUMENTS)
#: Characters of an enrolment code: no 0/O/1/I/L, so a technician can type it from paper.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Ids per IN (...) when counting a batch's new rows (well under SQLite's parameter limit).
ID_CHUNK = 1000

metadata = sa.MetaData()

entries = sa.Table(
    "entries", metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the kiosk's UUID: the dedupe key
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("venue_code", sa.String(64), nullable=False),
    sa.Column("scanned_at", sa.DateTime(), nullable=False),  # naive UTC on both engines
    # Report keys computed at ingest, so reports group without dialect-specific date math.
    sa.Column("day_local", sa.String(10), nullable=False),
    sa.Column("hour_local", sa.SmallInteger(), nullable=False),
    sa.Column("outcome", sa.String(8), nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("scheme", sa.String(16), nullable=False),
    sa.Column("subject_hash", sa.String(128)),
    sa.Column("name_masked", sa.Text()),
    sa.Column("personal", sa.Text()),
    sa.Column("sealed", sa.Boolean(), nullable=False, default=False),
    sa.Column("override_of", sa.String(36)),
    sa.Column("batch_id", sa.String(64)),
    # One id per accepted request: counts what this very transaction inserted.
    sa.Column("ingest_id", sa.String(32)),
    sa.Column("received_at", sa.DateTime(), nullable=False),
    sa.Index("entries_venue_day", "venue_code", "day_local"),
    sa.Index("entries_venue_time", "venue_code", "scanned_at"),
    sa.Index("entries_subject", "subject_hash"),
)

devices = sa.Table(
    "devices", metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 hex
    sa.Column("enrolled_at", sa.DateTime(), nullable=False),
    # The venue the enrolment code bound the device to: it uploads for no other.
    sa.Column("venue_code", sa.String(64)),
    sa.Column("revoked_at", sa.DateTime()),
    # Rotation: the token being replaced stays valid until the new one is first used,
    # so a lost answer never locks the kiosk out (and never loses its outbox).
    sa.Column("prev_token_hash", sa.String(64)),
    sa.Column("rotate", sa.Boolean(), nullable=False, default=False),
    # The last batch the collector refused (another venue's entries, before enrolment):
    # such a kiosk is failing, whatever else it uploads (issue 23 item 2).
    sa.Column("refused_at", sa.DateTime()),
    sa.Column("refusal", sa.Text()),
)

enrol_codes = sa.Table(
    "enrol_codes", metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("expires_at", sa.DateTime(), nullable=False),
    sa.Column("used_at", sa.DateTime()),
    sa.Column("venue_code", sa.String(64)),
)
#: Columns added after the first release: (table, column), added by Store at open.
_ADDED_COLUMNS = ((devices, "venue_code"), (devices, "revoked_at"), (devices, "prev_token_hash"),
                  (devices, "rotate"), (enrol_codes, "venue_code"), (devices, "refused_at"), (devices, "refusal"))

documents = sa.Table(
    "documents", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("etag", sa.String(80), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)

#: Revocation hashes (16 bytes each, EU DCC revocation design) in immutable chunks; the
#: signed "revocations" index lists them, kiosks fetch the chunks after the last they hold.
revocation_chunks = sa.Table(
    "revocation_chunks", metadata,
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("version", sa.Integer(), nullable=False),  # the index version that added it
    sa.Column("op", sa.String(8), nullable=False),        # add | remove
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
)

#: Software update wheels (collector.updates), by SHA-256; the signed "update" document names one.
update_files = sa.Table(
    "update_files", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
)

#: The daily report's counts, kept at ingest in the transaction that inserts the entries
#: (issue 22): one row per (day, venue, outcome, reason, hour, web form) instead of a
#: GROUP BY over a day's millions of entries. Exactly once: only rows this transaction
#: inserted (carrying its ingest id) are counted.
report_counts = sa.Table(
    "report_counts", metadata,
    sa.Column("day_local", sa.String(10), primary_key=True),
    sa.Column("venue_code", sa.String(64), primary_key=True),
    sa.Column("outcome", sa.String(8), primary_key=True),
    sa.Column("reason", sa.String(40), primary_key=True),
    sa.Column("hour_local", sa.SmallInteger(), primary_key=True, autoincrement=False),
    sa.Column("self_declared", sa.Boolean(), primary_key=True),
    sa.Column("n", sa.BigInteger(), nullable=False),
)

#: One row per accepted upload (device, ingest): the report's "uploading normally" and
#: clock lag without grouping a day's entries by ingest id.
ingests = sa.Table(
    "ingests", metadata,
    sa.Column("ingest_id", sa.String(32), primary_key=True),
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("received_at", sa.DateTime(), nullable=False),
    sa.Column("newest_scanned_at", sa.DateTime(), nullable=False),
    sa.Column("accepted", sa.Integer(), nullable=False),
    sa.Index("ingests_received", "received_at"),
    sa.Index("ingests_device", "device_id", "received_at"),
)
#: The device id of the web form's check-ins (collector.declarations): the rollup counts
#: them apart as self-declared.
FORM_DEVICE = "web-form"
#: The rollup's self-declared key in SQL over entries (the rebuild, the report's cut-off
#: hour); Store._count_in says it in Python, _STAGE_MOVE in the stage's SQL.
SELF_DECLARED = (entries.c.device_id == FORM_DEVICE).label("self_declared")
#: settings row marking that report_counts and ingests were filled from the entries once.
ROLLUP_MARK = "rollup_v1"

#: PostgreSQL's ingest (Store._insert_staged): each session's temporary table a batch is
#: COPYed into, then moved into entries with its rollup counts in one statement.
STAGE_TABLE = "entries_stage"
STAGE_COLUMNS = tuple(c.name for c in entries.columns)
_ROLLUP_KEY = ("day_local", "venue_code", "outcome", "reason", "hour_local")
_STAGE_DDL = f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_TABLE} (LIKE entries) ON COMMIT DELETE ROWS"
_STAGE_COPY = f"COPY {STAGE_TABLE} ({', '.join(STAGE_COLUMNS)}) FROM STDIN"
# RETURNING yields only the rows this statement inserted (a row another upload of the same
# batch committed first is skipped by ON CONFLICT), so the counts are exact under races.
# The ORDER BYs take the rollup's and ingests' row locks in one order: no deadlock.
_STAGE_MOVE = f"""
WITH new AS (
    INSERT INTO entries ({', '.join(STAGE_COLUMNS)})
    SELECT {', '.join(STAGE_COLUMNS)} FROM {STAGE_TABLE}
    ON CONFLICT DO NOTHING
    RETURNING {', '.join(_ROLLUP_KEY)}, device_id, scanned_at
), counted AS (
    INSERT INTO report_counts ({', '.join(_ROLLUP_KEY)}, self_declared, n)
    SELECT {', '.join(_ROLLUP_KEY)}, device_id = %(form_device)s, count(*) FROM new
    GROUP BY {', '.join(_ROLLUP_KEY)}, device_id = %(form_device)s
    ORDER BY {', '.join(_ROLLUP_KEY)}, device_id = %(form_device)s
    ON CONFLICT ({', '.join(_ROLLUP_KEY)}, self_declared) DO UPDATE SET n = report_counts.n + EXCLUDED.n
), uploads AS (
    INSERT INTO ingests (ingest_id, device_id, received_at, newest_scanned_at, accepted)
    SELECT %(ingest_id)s, device_id, %(received_at)s, max(scanned_at), count(*) FROM new
    GROUP BY device_id ORDER BY device_id
)
SELECT count(*) FROM new
"""

#: Collector-wide secrets (the tracing key), made once on first use.
settings = sa.Table(
    "settings", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)
TRACING_KEY = "tracing_key"
TRACING_KEY_BYTES = 32


class EnrolError(Exception):
    """Enrolment refused. `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DeviceAuth:
    """Who a device token belongs to. `rotate`: hand the kiosk a new token now."""

    device_id: str
    venue_code: str | None
    enrolled_at: datetime
    rotate: bool


@dataclass(frozen=True)
class BatchResult:
    accepted: int
    duplicates: int


@dataclass(frozen=True)
class Document:
    name: str
    body: bytes
    content_type: str
    etag: str
    updated_at: datetime


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _naive_utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        return ts
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


def _aware(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=timezone.utc) if ts is not None and ts.tzinfo is None else ts


def local_day(ts: datetime) -> tuple[str, int]:
    """The report day and hour (Vietnam local time) of a UTC instant.

    >>> local_day(datetime(2026, 3, 1, 17, 30, tzinfo=timezone.utc))
    ('2026-03-02', 0)
    """
    local = (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).astimezone(REPORT_TZ)
    return local.date().isoformat(), local.hour


def normalise_url(url: str) -> str:
    """Let operators write `postgresql://...`: use the psycopg 3 driver we ship with."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Store:
    """The collector's database. A context manager; `close()` is idempotent.

    `Store("sqlite:///collector.db")` or `Store("postgresql://user@host/db")`.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = normalise_url(url)
        kwargs: dict[str, Any] = {}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False,
                                      "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            if self.url in ("sqlite://", "sqlite:///:memory:"):
                kwargs["poolclass"] = sa.pool.StaticPool  # one shared in-memory database
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = sa.create_engine(self.url, **kwargs)
        self.dialect = self.engine.dialect.name
        self._tracing_key: str | None = None
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if create:
            partitions.create_entries(self.engine, entries)  # PostgreSQL: one partition a day
            partitions.ensure_time_index(self.engine)  # also on databases made before it
            metadata.create_all(self.engine)
            self._add_columns()
            self._fill_rollup_once()
        self._closed = False

    def _fill_rollup_once(self) -> None:
        """A database from before the rollup: count its entries into it, once. The mark
        and the counts commit together; a second process opening it meanwhile waits on
        the mark's row and then finds it."""
        with self.engine.begin() as conn:
            mark = self._insert(settings).values(name=ROLLUP_MARK, value="1").on_conflict_do_nothing(
                index_elements=["name"]).returning(settings.c.name)
            if conn.execute(mark).first() is not None:  # (rowcount is -1 here on psycopg)
                self._rebuild_rollup(conn)

    def rebuild_rollup(self) -> None:
        """Recount report_counts and ingests from the entries (after a bulk load by COPY)."""
        with self.engine.begin() as conn:
            self._rebuild_rollup(conn)

    def _rebuild_rollup(self, conn: sa.Connection) -> None:
        c = entries.c
        conn.execute(report_counts.delete())
        conn.execute(ingests.delete())
        keys = [c[name] for name in _ROLLUP_KEY]
        groups = sa.select(*keys, SELF_DECLARED, sa.func.count().label("n")).group_by(*keys, SELF_DECLARED)
        conn.execute(report_counts.insert().from_select([*_ROLLUP_KEY, "self_declared", "n"], groups))
        uploads = (sa.select(c.ingest_id, c.device_id, sa.func.max(c.received_at), sa.func.max(c.scanned_at),
                             sa.func.count())
                   .where(c.ingest_id.is_not(None)).group_by(c.ingest_id, c.device_id))
        conn.execute(ingests.insert().from_select(
            ["ingest_id", "device_id", "received_at", "newest_scanned_at", "accepted"], uploads))

    def forget_rollup_before(self, day: date) -> None:
        """Retention dropped whole days: their counts and uploads go too."""
        start, _ = partitions.local_day_bounds(day)
        with self.engine.begin() as conn:
            conn.execute(report_counts.delete().where(report_counts.c.day_local < day.isoformat()))
            conn.execute(ingests.delete().where(ingests.c.received_at < start))

    def _add_columns(self) -> None:
        """Columns newer than a database's tables: added in place (nullable, or with a
        default), so an upgraded collector opens the old database."""
        have = sa.inspect(self.engine)
        with self.engine.begin() as conn:
            for table, name in _ADDED_COLUMNS:
                if name in {c["name"] for c in have.get_columns(table.name)}:
                    continue
                col = table.c[name]
                kind = col.type.compile(dialect=self.engine.dialect)
                extra = " NOT NULL DEFAULT FALSE" if name == "rotate" else ""
                conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN {name} {kind}{extra}'))

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.engine.dispose()

    def reset(self) -> None:
        """Drop and recreate every table (tests and benchmarks only)."""
        metadata.drop_all(self.engine)
        self._tracing_key = None
        partitions.create_entries(self.engine, entries)
        metadata.create_all(self.engine)

    def _insert(self, table: sa.Table):
        return (postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table))

    # --- devices & enrolment --------------------------------------------------------
    def create_enrol_code(self, device_id: str, *, now: datetime, ttl: timedelta = ENROL_CODE_TTL,
                          venue: str | None = None) -> str:
        """Mint a one-time enrolment code for `device_id` at `venue` (the device is bound
        to it: it uploads entries for no other venue); only its hash is stored."""
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        with self.engine.begin() as conn:
            conn.execute(enrol_codes.insert().values(
                code_hash=_hash(code), device_id=device_id, created_at=_naive_utc(now),
                expires_at=_naive_utc(now + ttl), used_at=None, venue_code=venue))
        return code

    def enrol(self, device_id: str, code: str, *, now: datetime) -> str:
        """Trade a one-time code for a device token. The code works once: a second use,
        an unknown or expired code, or a code minted for another device raise EnrolError."""
        return self.enrol_device(device_id, code, now=now)[0]

    def record_refusal(self, device_id: str, message: str, *, now: datetime) -> None:
        """Remember that a batch of `device_id` was refused (the report shows it failing)."""
        with self.engine.begin() as conn:
            conn.execute(devices.update().where(devices.c.device_id == device_id).values(
                refused_at=_naive_utc(now), refusal=message[:500]))

    def enrol_device(self, device_id: str, code: str, *, now: datetime) -> tuple[str, str | None]:
        """`enrol`, returning (token, the venue the code bound the device to)."""
        code = code.strip().upper()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(enrol_codes).where(
                enrol_codes.c.code_hash == _hash(code))).mappings().first()
            if row is None:
                raise EnrolError(401, "unknown enrolment code")
            if row["device_id"] != device_id:
                raise EnrolError(403, f"this code was issued for another device, not {device_id!r}")
            if row["used_at"] is not None:
                raise EnrolError(409, "this enrolment code was already used; mint a new one")
            if row["expires_at"] < _naive_utc(now):
                raise EnrolError(401, "this enrolment code has expired; mint a new one")
            # Conditional update: of two concurrent uses only one sees rowcount 1.
            used = conn.execute(enrol_codes.update().where(
                (enrol_codes.c.code_hash == row["code_hash"]) & enrol_codes.c.used_at.is_(None)
            ).values(used_at=_naive_utc(now)))
            if used.rowcount != 1:
                raise EnrolError(409, "this enrolment code was already used; mint a new one")
            token = secrets.token_urlsafe(32)
            # The device is bound from the moment its code was minted (the admin's decision
            # that it belongs at this venue): it may have logged entries offline between
            # then and the code's use, and those go up; nothing before.
            stmt = self._insert(devices).values(
                device_id=device_id, token_hash=_hash(token), enrolled_at=row["created_at"],
                venue_code=row["venue_code"], revoked_at=None, prev_token_hash=None, rotate=False)
            # Re-enrolling a device (new SD card, new venue) replaces its token, its venue
            # and lifts a revocation; at the same venue it keeps its first enrolment time,
            # so entries it logged since then (still in its outbox) go up.
            same_venue = devices.c.venue_code == stmt.excluded.venue_code
            first = sa.case((same_venue & (devices.c.enrolled_at < stmt.excluded.enrolled_at),
                             devices.c.enrolled_at), else_=stmt.excluded.enrolled_at)
            stmt = stmt.on_conflict_do_update(
                index_elements=["device_id"],
                set_={"enrolled_at": first, **{k: getattr(stmt.excluded, k) for k in (
                    "token_hash", "venue_code", "revoked_at", "prev_token_hash", "rotate")},
                    "refused_at": None, "refusal": None})
            conn.execute(stmt)
        return token, row["venue_code"]

    def device_for_token(self, token: str) -> str | None:
        auth = self.authenticate(token)
        return auth.device_id if auth is not None else None

    def authenticate(self, token: str) -> DeviceAuth | None:
        """The device a token belongs to, or None (unknown or revoked). A token being
        rotated out still works until its successor is first used; that first use
        retires it."""
        h = _hash(token)
        d = devices.c
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(devices).where(
                ((d.token_hash == h) | (d.prev_token_hash == h)) & d.revoked_at.is_(None))).mappings().first()
            if row is None:
                return None
            current = row["token_hash"] == h
            if current and row["prev_token_hash"] is not None:
                conn.execute(devices.update().where(d.device_id == row["device_id"]).values(prev_token_hash=None))
        return DeviceAuth(row["device_id"], row["venue_code"], _aware(row["enrolled_at"]),
                          rotate=bool(row["rotate"]) or not current)

    def rotate_token(self, device_id: str, used_token: str) -> str:
        """A new token for `device_id`, handed out in a batch answer. The token just used
        stays valid until the new one is first used (a lost answer costs nothing)."""
        new = secrets.token_urlsafe(32)
        d = devices.c
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(devices).where(d.device_id == device_id)).mappings().one()
            used = _hash(used_token)
            prev = row["token_hash"] if row["token_hash"] == used else row["prev_token_hash"]
            conn.execute(devices.update().where(d.device_id == device_id).values(
                token_hash=_hash(new), prev_token_hash=prev, rotate=False))
        return new

    def request_rotation(self, device_id: str) -> bool:
        """Mark a device's token for rotation at its next upload. False: no such device."""
        with self.engine.begin() as conn:
            return conn.execute(devices.update().where(devices.c.device_id == device_id)
                                .values(rotate=True)).rowcount == 1

    def revoke_device(self, device_id: str, *, now: datetime) -> bool:
        """Revoke a device's tokens at once (its next request gets 401). False: no such device."""
        with self.engine.begin() as conn:
            return conn.execute(devices.update().where(devices.c.device_id == device_id).values(
                revoked_at=_naive_utc(now), prev_token_hash=None, rotate=False)).rowcount == 1

    def list_devices(self) -> list[dict[str, Any]]:
        """Every enrolled device: id, venue, enrolled_at, revoked_at, rotation pending,
        entries and the last entry's time."""
        d, e = devices.c, entries.c
        counts = (sa.select(e.device_id, sa.func.count().label("entries"),
                            sa.func.max(e.scanned_at).label("last_entry_at"))
                  .group_by(e.device_id).subquery())
        q = (sa.select(d.device_id, d.venue_code, d.enrolled_at, d.revoked_at, d.rotate,
                       counts.c.entries, counts.c.last_entry_at)
             .select_from(devices.outerjoin(counts, counts.c.device_id == d.device_id))
             .order_by(d.device_id))
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q).mappings()]
        for r in rows:
            r["entries"] = int(r["entries"] or 0)
            for k in ("enrolled_at", "revoked_at", "last_entry_at"):
                r[k] = _aware(r[k])
        return rows

    # --- entries --------------------------------------------------------------------
    def insert_batch(self, rows: Sequence[Mapping[str, Any]], *, batch_id: str, now: datetime) -> BatchResult:
        """Insert a batch of validated entries in one transaction; existing ids are skipped.

        Each row needs the upload fields (`id`, `scanned_at` as an aware datetime, ...)."""
        if not rows:
            return BatchResult(0, 0)
        received = _naive_utc(now)
        ingest_id = uuid.uuid4().hex
        values = []
        for r in rows:
            day, hour = local_day(r["scanned_at"])
            values.append({
                "id": r["id"], "device_id": r["device_id"], "venue_code": r["venue_code"],
                "scanned_at": _naive_utc(r["scanned_at"]), "day_local": day, "hour_local": hour,
                "outcome": r["outcome"], "reason": r["reason"], "scheme": r["scheme"],
                "subject_hash": r.get("subject_hash"), "name_masked": r.get("name_masked"),
                "personal": r.get("personal"), "sealed": bool(r.get("sealed")),
                "override_of": r.get("override_of"), "batch_id": batch_id, "ingest_id": ingest_id,
                "received_at": received,
            })
        days = {v["day_local"] for v in values}
        partitions.ensure_days(self.engine, days)
        try:
            accepted = self._insert_values(values, ingest_id)
        except sa.exc.IntegrityError as exc:
            if not partitions.is_missing_partition(exc):
                raise
            partitions.forget_known(self.engine)  # a day dropped by retention since we looked
            partitions.ensure_days(self.engine, days)
            accepted = self._insert_values(values, ingest_id)
        return BatchResult(accepted=accepted, duplicates=len(values) - accepted)

    def _insert_values(self, values: list[dict[str, Any]], ingest_id: str) -> int:
        if self.dialect == "postgresql":
            return self._insert_staged(values, ingest_id)
        # No conflict target: the key is (id) on SQLite, (id, scanned_at) on partitioned
        # PostgreSQL (collector.partitions); a resent entry carries both unchanged.
        stmt = self._insert(entries).on_conflict_do_nothing()
        return self._insert_counted(stmt, values, [v["id"] for v in values], ingest_id)

    def _insert_staged(self, values: list[dict[str, Any]], ingest_id: str) -> int:
        """PostgreSQL: COPY the batch into this session's temporary stage, then one statement
        moves what is new into entries and adds exactly those rows to the rollup (issue 22:
        0.5-0.7x of a bare COPY, against 0.2x for a multi-row INSERT; bench/RESULTS.md)."""
        received = values[0]["received_at"]
        with self.engine.begin() as conn:
            if not conn.connection.info.get(STAGE_TABLE):
                conn.exec_driver_sql(_STAGE_DDL)  # dropped with the session, emptied at each commit
                conn.connection.info[STAGE_TABLE] = True
            raw = conn.connection.driver_connection
            try:
                with raw.cursor() as cur:
                    with cur.copy(_STAGE_COPY) as copy:
                        for v in values:
                            copy.write_row([v[name] for name in STAGE_COLUMNS])
                    cur.execute(_STAGE_MOVE, {"ingest_id": ingest_id, "received_at": received,
                                              "form_device": FORM_DEVICE})
                    row = cur.fetchone()
            except raw.IntegrityError as exc:  # psycopg's own, raised past SQLAlchemy
                raise sa.exc.IntegrityError(_STAGE_MOVE, None, exc) from exc
        return int(row[0])

    def _insert_counted(self, stmt: Any, values: list[dict[str, Any]], ids: list[str], ingest_id: str) -> int:
        with self.engine.begin() as conn:
            conn.execute(stmt, values)
            # What this transaction inserted: rows carrying our ingest id. Exact even when
            # two uploads of one batch race (PostgreSQL's RETURNING over executemany would
            # also be exact, but measured 3x slower: bench/RESULTS.md "## Sync").
            mine: set[str] = set()
            for i in range(0, len(ids), ID_CHUNK):
                mine.update(conn.execute(sa.select(entries.c.id).where(
                    entries.c.id.in_(ids[i:i + ID_CHUNK]), entries.c.ingest_id == ingest_id)).scalars())
            if mine:
                self._count_in(conn, [v for v in values if v["id"] in mine], ingest_id)
        return len(mine)

    def _count_in(self, conn: sa.Connection, rows: list[dict[str, Any]], ingest_id: str) -> None:
        """Add the inserted rows to the rollup, in the same transaction (exactly once)."""
        counts: dict[tuple, int] = {}
        uploads: dict[str, tuple[datetime, int]] = {}
        for v in rows:
            key = (*(v[name] for name in _ROLLUP_KEY), v["device_id"] == FORM_DEVICE)
            counts[key] = counts.get(key, 0) + 1
            newest, n = uploads.get(v["device_id"], (v["scanned_at"], 0))
            uploads[v["device_id"]] = (max(newest, v["scanned_at"]), n + 1)
        names = (*_ROLLUP_KEY, "self_declared")
        # Sorted, so two transactions add to shared rows in one order (no deadlock).
        add = [dict(zip(names, key), n=n) for key, n in sorted(counts.items())]
        stmt = self._insert(report_counts)
        conn.execute(stmt.on_conflict_do_update(index_elements=list(names),
                                                set_={"n": report_counts.c.n + stmt.excluded.n}), add)
        received = rows[0]["received_at"]
        conn.execute(ingests.insert(), [{"ingest_id": ingest_id, "device_id": d, "received_at": received,
                                         "newest_scanned_at": newest, "accepted": n}
                                        for d, (newest, n) in sorted(uploads.items())])

    def ping(self) -> None:
        """One round trip to the database (the health check: no table is read)."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def count_entries(self, *, device_id: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(entries)
        if device_id is not None:
            q = q.where(entries.c.device_id == device_id)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def entry_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(entries.c.id).order_by(entries.c.id))]

    # --- the tracing key ------------------------------------------------------------
    def tracing_key(self) -> str:
        """This collector's tracing key (hex), made on first use; concurrent first uses
        agree on one. Never changes after, so each Store reads it once (not once per upload)."""
        if self._tracing_key is None:
            self._tracing_key = self._read_or_make_tracing_key()
        return self._tracing_key

    def _read_or_make_tracing_key(self) -> str:
        with self.engine.connect() as conn:  # the common case: one read, no write transaction
            key = conn.execute(sa.select(settings.c.value).where(settings.c.name == TRACING_KEY)).scalar()
        if key is not None:
            return key
        with self.engine.begin() as conn:
            stmt = self._insert(settings).values(name=TRACING_KEY, value=secrets.token_hex(TRACING_KEY_BYTES))
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
            return conn.execute(sa.select(settings.c.value).where(settings.c.name == TRACING_KEY)).scalar_one()

    # --- documents (trust list, rules, deny list) ----------------------------------
    def publish(self, name: str, body: bytes, *, content_type: str, now: datetime) -> Document:
        """Store a new version of a published document; its ETag is a hash of the body.
        Only signed envelopes of `name` are stored (collector.publish signs them)."""
        if name not in SIGNED_DOCUMENTS:
            raise ValueError(f"unknown document {name!r}; one of {', '.join(SIGNED_DOCUMENTS)}")
        try:
            held = peek(body).name
        except SignedDocError as exc:
            raise ValueError(f"{name}: only signed documents are published ({exc}); "
                             "`collector publish` signs them") from None
        if held != name:
            raise ValueError(f"the envelope holds {held!r}, not {name!r}")
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        stmt = self._insert(documents).values(
            name=name, body=body, content_type=content_type, etag=etag, updated_at=_naive_utc(now))
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={
            "body": stmt.excluded.body, "content_type": stmt.excluded.content_type,
            "etag": stmt.excluded.etag, "updated_at": stmt.excluded.updated_at})
        with self.engine.begin() as conn:
            conn.execute(stmt)
        return Document(name, body, content_type, etag, now)

    def document(self, name: str) -> Document | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(documents).where(documents.c.name == name)).mappings().first()
        if row is None:
            return None
        return Document(row["name"], bytes(row["body"]), row["content_type"], row["etag"],
                        _aware(row["updated_at"]))

    # --- revocation chunks ----------------------------------------------------------
    def add_revocation_chunks(self, bodies: Sequence[tuple[str, int, bytes]], *, version: int,
                              now: datetime) -> None:
        """Append chunks [(op, count, body)] in one transaction, in order."""
        with self.engine.begin() as conn:
            for op, count, body in bodies:
                conn.execute(revocation_chunks.insert().values(
                    version=version, op=op, count=count, sha256=hashlib.sha256(body).hexdigest(),
                    body=body, created_at=_naive_utc(now)))

    def revocation_index(self) -> list[dict[str, Any]]:
        """Every chunk's seq, version, op, count and SHA-256 (hex), oldest first."""
        c = revocation_chunks.c
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(c.seq, c.version, c.op, c.count, c.sha256)
                                                  .order_by(c.seq)).mappings()]

    def revocation_chunk(self, seq: int) -> bytes | None:
        with self.engine.connect() as conn:
            body = conn.execute(sa.select(revocation_chunks.c.body).where(
                revocation_chunks.c.seq == seq)).scalar()
        return None if body is None else bytes(body)

    # --- software update files ------------------------------------------------------
    def add_update_file(self, name: str, body: bytes, *, now: datetime) -> str:
        """Keep a wheel (once per content); returns its SHA-256."""
        digest = hashlib.sha256(body).hexdigest()
        with self.engine.begin() as conn:
            conn.execute(self._insert(update_files).values(sha256=digest, name=name, body=body,
                                                           created_at=_naive_utc(now))
                         .on_conflict_do_nothing(index_elements=["sha256"]))
        return digest

    def update_file(self, sha256: str) -> bytes | None:
        with self.engine.connect() as conn:
            body = conn.execute(sa.select(update_files.c.body).where(update_files.c.sha256 == sha256)).scalar()
        return None if body is None else bytes(body)

    # --- retention ------------------------------------------------------------------
    def purge_personal(self, *, before: datetime) -> int:
        """Forget who was there in entries scanned before `before`: personal fields,
        masked name and person key go; the rows, and with them the report counts, stay.
        Returns how many entries were cleared."""
        c = entries.c
        with self.engine.begin() as conn:
            return conn.execute(entries.update().where(
                c.scanned_at < _naive_utc(before),
                (c.personal.is_not(None) | c.subject_hash.is_not(None) | c.name_masked.is_not(None)),
            ).values(personal=None, subject_hash=None, name_masked=None)).rowcount

    # --- report & tracing -----------------------------------------------------------
    def day_counts(self, day: date) -> list[dict[str, Any]]:
        """Counts for one local day grouped by venue, outcome, reason and hour."""
        c = entries.c
        q = (sa.select(c.venue_code, c.outcome, c.reason, c.hour_local, sa.func.count().label("n"))
             .where(c.day_local == day.isoformat(), partitions.day_bounds_clause(c.scanned_at, day))
             .group_by(c.venue_code, c.outcome, c.reason, c.hour_local))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def visits(self, *, venue: str | None, start: datetime, end: datetime,
               subject_hash: str | Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Entries at `venue` (any venue when None) with start <= scanned_at <= end, of
        `subject_hash` (one person key or several) when given."""
        c = entries.c
        q = sa.select(entries).where(_window(start, end, venue))
        if isinstance(subject_hash, str):
            q = q.where(c.subject_hash == subject_hash)
        elif subject_hash is not None:
            q = q.where(c.subject_hash.in_(list(subject_hash)))
        with self.engine.connect() as conn:
            return _aware_times([dict(r) for r in conn.execute(q.order_by(c.scanned_at, c.id)).mappings()])

    def visits_in(self, windows: Sequence[tuple[datetime, datetime, str | None]]) -> list[dict[str, Any]]:
        """Entries in any of `windows` (start, end, venue or None for any venue), each once,
        oldest first: one query per WINDOWS_PER_QUERY windows, an OR of (venue, time range)
        conditions the (venue_code, scanned_at) index answers and the partitions prune by."""
        out: dict[str, dict[str, Any]] = {}
        windows = list(windows)
        with self.engine.connect() as conn:
            for i in range(0, len(windows), WINDOWS_PER_QUERY):
                conds = [_window(*w) for w in windows[i:i + WINDOWS_PER_QUERY]]
                result = conn.execute(sa.select(entries).where(sa.or_(*conds)))
                keys = list(result.keys())
                at = keys.index("id")
                for row in result.all():  # one fetch, not a fetchone per contact
                    out.setdefault(row[at], dict(zip(keys, row)))
        return _aware_times(sorted(out.values(), key=lambda r: (r["scanned_at"], r["id"])))


def _window(start: datetime, end: datetime, venue: str | None) -> Any:
    """start <= scanned_at <= end, at `venue` (any venue when None)."""
    c = entries.c
    cond = sa.and_(c.scanned_at >= _naive_utc(start), c.scanned_at <= _naive_utc(end))
    return cond if venue is None else sa.and_(c.venue_code == venue, cond)


def _aware_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        r["scanned_at"] = _aware(r["scanned_at"])
        r["received_at"] = _aware(r["received_at"])
    return rows


#: Tracing windows per query (an OR of that many conditions).
WINDOWS_PER_QUERY = 100


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")
