"""The trust store: signer keys (EU gateway trust list format, DSC and HD1 entries), the
revocation list and the deny list, kept in the journal's SQLite (tables of migration
003_trust) or, for `kiosk check --trust FILE` and tests, in memory.

A trust list is a JSON list (or `{"certificates": [...]}`) of
`{"kid": base64, "country": "VN", "certificateType": "DSC"|"HD1", "rawData": base64 DER}`.
An import replaces the whole list in one transaction, so a reader sees the old list or
the new one, never half of each. Keys are parsed once and cached; the cache follows a
generation number in the journal's state, so an import by `kiosk sync` (another process)
is picked up by the run loop at its next lookup.

    >>> store = TrustStore.from_list(b'[]')
    >>> store.keys_for(b"12345678")
    []
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kiosk.errors import TrustError
from kiosk.model import iso_utc

__all__ = ["TrustKey", "TrustStore", "ImportResult", "KIND_DSC", "KIND_HD1", "subject_hash",
           "USAGE_OIDS", "trust_entry"]

KIND_DSC = "DSC"
KIND_HD1 = "HD1"
KINDS = (KIND_DSC, KIND_HD1)
#: Other certificate types in real gateway lists (CSCA, UPLOAD, AUTHENTICATION) are
#: skipped: the kiosk only verifies document signatures.
MAX_KID_BYTES = 64
MAX_ENTRIES = 100_000
REVOCATION_CHUNK = 5_000

#: Extended key usage OIDs of a DSC (EU DCC spec, "Certificate Governance"), including
#: the variant with an extra ".0" that some member states issued. A DSC that carries
#: none of them may sign every certificate type.
USAGE_OIDS = {
    "1.3.6.1.4.1.1847.2021.1.1": "t", "1.3.6.1.4.1.1847.2021.1.2": "v", "1.3.6.1.4.1.1847.2021.1.3": "r",
    "1.3.6.1.4.1.0.1847.2021.1.1": "t", "1.3.6.1.4.1.0.1847.2021.1.2": "v", "1.3.6.1.4.1.0.1847.2021.1.3": "r",
}

_STATE_GENERATION = "trust.generation"
_STATE_IMPORTED_AT = "trust.imported_at"
_STATE_REVOCATIONS_AT = "trust.revocations_at"
#: The valid-until time of the signed trust list held: past it the list is stale.
_STATE_VALID_UNTIL = "trust.valid_until"


def subject_hash(subject_key: str) -> str:
    """The deny list's identifier hash: unsalted SHA-256 (hex) of a credential's subject
    key, so the collector can compute it too (`subject_hash("cccd:079123456789")`)."""
    return hashlib.sha256(subject_key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrustKey:
    """One parsed trust list entry."""

    kid: bytes
    kind: str
    country: str
    public_key: Any
    usages: frozenset[str] | None = None   # DCC types this DSC may sign; None: all
    not_before: datetime | None = None
    not_after: datetime | None = None


@dataclass(frozen=True)
class ImportResult:
    keys: int
    skipped: int
    imported_at: datetime


def trust_entry(kid: bytes, kind: str, der: bytes, country: str = "VN") -> dict[str, str]:
    """One trust list entry in the gateway's JSON shape."""
    return {"kid": base64.b64encode(kid).decode(), "country": country, "certificateType": kind,
            "rawData": base64.b64encode(der).decode()}


def _b64(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise TrustError(f"{where}: expected a base64 string")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise TrustError(f"{where}: not base64") from None


def parse_key(kid: bytes, kind: str, country: str, raw: bytes) -> TrustKey:
    """Parse DER (a certificate, or for HD1 also a bare SubjectPublicKeyInfo)."""
    try:
        cert = x509.load_der_x509_certificate(raw)
    except ValueError:
        cert = None
    if cert is None:
        if kind != KIND_HD1:
            raise TrustError("rawData is not a DER certificate")
        try:
            return TrustKey(kid, kind, country, serialization.load_der_public_key(raw))
        except (ValueError, TypeError):
            raise TrustError("rawData is neither a DER certificate nor a DER public key") from None
    try:
        public_key = cert.public_key()
    except (ValueError, TypeError) as exc:
        raise TrustError(f"certificate key cannot be used: {exc}") from None
    return TrustKey(kid, kind, country, public_key, _usages(cert),
                    cert.not_valid_before_utc, cert.not_valid_after_utc)


_OID_EKU = "2.5.29.37"


def _der(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER item at `pos`; ValueError if cut."""
    if pos + 2 > len(data):
        raise ValueError("truncated")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("truncated")
    return tag, pos, pos + length


def _oid(raw: bytes) -> str:
    if not raw:
        raise ValueError("empty OID")
    arcs, value = [raw[0] // 40, raw[0] % 40], 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if raw[-1] & 0x80:
        raise ValueError("cut OID")
    return ".".join(map(str, arcs))


def _usages(cert: x509.Certificate) -> frozenset[str] | None:
    """The DCC types a DSC may sign, from its extended key usage, read from the DER
    itself. No extension, or one without any OID (EU test case CO15): None, all types.
    A malformed extension signs nothing (an empty set): a key whose restriction cannot
    be read must not be taken as unrestricted."""
    data = cert.tbs_certificate_bytes
    try:
        _, pos, end = _der(data, 0)
        while pos < end:   # tbsCertificate's fields; extensions are [3] EXPLICIT
            tag, start, stop = _der(data, pos)
            if tag == 0xA3:
                _, epos, eend = _der(data, start)
                while epos < eend:
                    _, f, fend = _der(data, epos)
                    _, oid_start, oid_end = _der(data, f)
                    if _oid(data[oid_start:oid_end]) == _OID_EKU:
                        tag, vstart, vend = _der(data, oid_end)
                        if tag == 0x01:   # critical flag
                            tag, vstart, vend = _der(data, vend)
                        return _eku_value(data[vstart:vend]) if tag == 0x04 else frozenset()
                    epos = fend
                return None
            pos = stop
    except ValueError:
        return frozenset()
    return None


def _eku_value(value: bytes) -> frozenset[str] | None:
    try:
        tag, pos, end = _der(value, 0)
        if tag != 0x30 or end != len(value):
            return frozenset()
        found: set[str] = set()
        while pos < end:
            tag, start, stop = _der(value, pos)
            if tag != 0x06:
                return frozenset()
            oid = _oid(value[start:stop])
            if oid in USAGE_OIDS:
                found.add(USAGE_OIDS[oid])
            pos = stop
    except ValueError:
        return frozenset()
    return frozenset(found) if found else None


def parse_list(json_bytes: bytes | str) -> tuple[list[tuple[bytes, str, str, bytes]], int]:
    """Validate a trust list; returns ([(kid, kind, country, der)], skipped)."""
    try:
        data = json.loads(json_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrustError(f"trust list is not JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("certificates")
    if not isinstance(data, list):
        raise TrustError("trust list must be a JSON list or {\"certificates\": [...]}")
    if len(data) > MAX_ENTRIES:
        raise TrustError(f"trust list has {len(data)} entries; at most {MAX_ENTRIES} allowed")
    rows, skipped = [], 0
    for i, item in enumerate(data):
        where = f"trust list entry {i}"
        if not isinstance(item, dict):
            raise TrustError(f"{where}: expected an object")
        kind = item.get("certificateType")
        if kind not in KINDS:
            skipped += 1
            continue
        kid = _b64(item.get("kid"), f"{where} 'kid'")
        if not 1 <= len(kid) <= MAX_KID_BYTES:
            raise TrustError(f"{where} 'kid': {len(kid)} bytes; expected 1 to {MAX_KID_BYTES}")
        raw = _b64(item.get("rawData"), f"{where} 'rawData'")
        country = item.get("country") or ""
        if not isinstance(country, str):
            raise TrustError(f"{where} 'country': expected a string")
        try:
            parse_key(kid, kind, country, raw)
        except TrustError as exc:
            raise TrustError(f"{where}: {exc}") from None
        rows.append((kid, kind, country, raw))
    return rows, skipped


class TrustStore:
    """Signer keys, revocations and deny list. Journal-backed (`TrustStore(journal)`) or
    in memory (`TrustStore.from_list(data)`), same interface either way."""

    def __init__(self, journal: Any | None) -> None:
        self.journal = journal
        self._lock = threading.RLock()
        self._generation: str | None = None
        self._cache: dict[bytes, list[TrustKey]] = {}
        # memory mode
        self._rows: list[tuple[bytes, str, str, bytes]] = []
        self._revoked: set[str] = set()
        self._denied: set[str] = set()
        self._imported_at: datetime | None = None
        self._valid_until: datetime | None = None

    @classmethod
    def from_list(cls, json_bytes: bytes | str, *, now: datetime | None = None) -> "TrustStore":
        """An in-memory store holding one trust list (for `kiosk check --trust` and tests)."""
        store = cls(None)
        store.import_list(json_bytes, now=now or datetime.now(timezone.utc))
        return store

    # --- imports ---------------------------------------------------------------------
    def import_list(self, json_bytes: bytes | str, *, now: datetime,
                    valid_until: datetime | None = None) -> ImportResult:
        """Replace the whole trust list atomically. A bad list raises TrustError and
        leaves the current one in place. From a signed document `now` is its issued-at
        time and `valid_until` its own: the list's age counts from when it was signed."""
        rows, skipped = parse_list(json_bytes)
        if self.journal is None:
            with self._lock:
                self._rows = rows
                self._imported_at = now
                self._valid_until = valid_until
                self._cache = {}
                self._generation = None
            return ImportResult(len(rows), skipped, now)
        j = self.journal
        with j.atomic():
            conn = j.db.conn
            conn.execute("DELETE FROM trust_keys")
            conn.executemany(
                "INSERT OR IGNORE INTO trust_keys(kid, kind, country, raw, imported_at) VALUES (?,?,?,?,?)",
                [(base64.b64encode(k).decode(), kind, c, raw, iso_utc(now, timespec="seconds"))
                 for k, kind, c, raw in rows])
            j.set_state(_STATE_IMPORTED_AT, iso_utc(now, timespec="seconds"), now=now)
            j.set_state(_STATE_VALID_UNTIL, iso_utc(valid_until, timespec="seconds") if valid_until else "",
                        now=now)
            j.set_state(_STATE_GENERATION, uuid.uuid4().hex, now=now)
        return ImportResult(len(rows), skipped, now)

    def import_revocations(self, hashes: Iterable[str], *, now: datetime | None = None,
                           progress: Callable[[int, int], None] | None = None) -> int:
        """Replace the revocation list (hex hashes of certificate identifiers). Fast at
        200,000 entries: one transaction, batched inserts, primary-key lookups.
        `progress(done, total)` is called after each chunk."""
        clean = {h.strip().lower() for h in hashes if isinstance(h, str) and h.strip()}
        if self.journal is None:
            with self._lock:
                self._revoked = clean
            return len(clean)
        j = self.journal
        items = sorted(clean)  # sorted inserts keep the B-tree appends cheap
        with j.atomic():
            conn = j.db.conn
            conn.execute("DELETE FROM revocations")
            for i in range(0, len(items), REVOCATION_CHUNK):
                conn.executemany("INSERT OR IGNORE INTO revocations(hash) VALUES (?)",
                                 [(h,) for h in items[i:i + REVOCATION_CHUNK]])
                if progress is not None:
                    progress(min(i + REVOCATION_CHUNK, len(items)), len(items))
            if now is not None:
                j.set_state(_STATE_REVOCATIONS_AT, iso_utc(now, timespec="seconds"), now=now)
        return len(items)

    def apply_revocations(self, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> int:
        """A delta of the revocation list (hex hashes), in the caller's transaction when
        there is one. Returns how many rows changed."""
        plus = sorted({h.lower() for h in add})
        minus = sorted({h.lower() for h in remove})
        if self.journal is None:
            with self._lock:
                before = len(self._revoked)
                self._revoked.update(plus)
                self._revoked.difference_update(minus)
                return abs(len(self._revoked) - before)
        changed = 0
        with self.journal.atomic():
            conn = self.journal.db.conn
            for i in range(0, len(plus), REVOCATION_CHUNK):
                changed += conn.executemany("INSERT OR IGNORE INTO revocations(hash) VALUES (?)",
                                            [(h,) for h in plus[i:i + REVOCATION_CHUNK]]).rowcount
            for i in range(0, len(minus), REVOCATION_CHUNK):
                changed += conn.executemany("DELETE FROM revocations WHERE hash=?",
                                            [(h,) for h in minus[i:i + REVOCATION_CHUNK]]).rowcount
        return changed

    def import_denylist(self, items: Iterable[str | tuple[str, str]]) -> int:
        """Replace the deny list, in one transaction: hex `subject_hash()` values, or
        (hash, note) pairs as `kiosk.checks.denylist.parse_denylist` gives; notes are
        dropped."""
        clean: dict[str, str] = {}
        for item in items:
            h = item[0] if isinstance(item, tuple) else item
            if isinstance(h, str) and h.strip():
                # The note (why a person is denied: "court order", "fake certificate")
                # stays at the collector: the kiosk needs only the hash, and a stolen SD
                # card must not say why anyone is on the list.
                clean[h.strip().lower()] = ""
        if self.journal is None:
            with self._lock:
                self._denied = set(clean)
            return len(clean)
        with self.journal.atomic():
            conn = self.journal.db.conn
            conn.execute("DELETE FROM denylist")
            conn.executemany("INSERT INTO denylist(hash, note) VALUES (?, ?)", sorted(clean.items()))
        return len(clean)

    # --- lookups ---------------------------------------------------------------------
    def _db(self):
        """The journal's lock: the run loop's scanner thread and its UI thread share one
        sqlite3 connection, which must not run two statements at once."""
        return getattr(self.journal, "_lock", None) or contextlib.nullcontext()

    def _load(self) -> None:
        """Refresh the parsed-key cache when the stored list changed."""
        if self.journal is None:
            if self._generation is None:
                self._cache = self._index(self._rows)
                self._generation = "memory"
            return
        with self._db():
            gen = self.journal.get_state(_STATE_GENERATION, "")
            if gen == self._generation:
                return
            rows = self.journal.db.conn.execute("SELECT kid, kind, country, raw FROM trust_keys").fetchall()
        self._cache = self._index([(base64.b64decode(k), kind, c, raw) for k, kind, c, raw in rows])
        self._generation = gen

    @staticmethod
    def _index(rows: list[tuple[bytes, str, str, bytes]]) -> dict[bytes, list[TrustKey]]:
        index: dict[bytes, list[TrustKey]] = {}
        for kid, kind, country, raw in rows:
            try:
                key = parse_key(kid, kind, country, raw)
            except TrustError:
                continue  # validated at import; a key that no longer parses cannot verify anything
            index.setdefault(kid, []).append(key)
        return index

    def keys_for(self, kid: bytes) -> list[TrustKey]:
        """All trusted keys with this kid (DSC and HD1 alike; the caller checks the kind)."""
        with self._lock:
            self._load()
            return list(self._cache.get(kid, ()))

    def __len__(self) -> int:
        with self._lock:
            self._load()
            return sum(len(v) for v in self._cache.values())

    def is_revoked(self, hashes: Iterable[str]) -> bool:
        """True when any of these hex hashes is on the revocation list."""
        items = [h.lower() for h in hashes]
        if not items:
            return False
        if self.journal is None:
            return any(h in self._revoked for h in items)
        with self._db():
            row = self.journal.db.conn.execute(
                "SELECT 1 FROM revocations WHERE hash IN (%s) LIMIT 1" % ",".join("?" * len(items)),
                items).fetchone()
        return row is not None

    def is_denied(self, hash_: str) -> bool:
        """True when this `subject_hash()` is on the deny list."""
        h = hash_.lower()
        if self.journal is None:
            return h in self._denied
        with self._db():
            return self.journal.db.conn.execute("SELECT 1 FROM denylist WHERE hash=?", (h,)).fetchone() is not None

    def imported_at(self) -> datetime | None:
        if self.journal is None:
            return self._imported_at
        raw = self.journal.get_state(_STATE_IMPORTED_AT)
        return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None

    def valid_until(self) -> datetime | None:
        """The signed trust list's own valid-until time (None: imported by hand)."""
        if self.journal is None:
            return self._valid_until
        raw = self.journal.get_state(_STATE_VALID_UNTIL)
        return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None

    def age(self, now: datetime) -> timedelta | None:
        """How old the trust list is, or None when none was ever imported."""
        at = self.imported_at()
        return None if at is None else now - at

    def stale(self, now: datetime, max_age: timedelta) -> bool:
        """True when there is no list, it is older than `max_age` or past its own
        valid-until time (show a warning; the list stays in use meanwhile)."""
        age = self.age(now)
        until = self.valid_until()
        return age is None or age > max_age or (until is not None and now >= until)
