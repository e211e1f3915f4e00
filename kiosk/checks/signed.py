"""Signed documents: everything the collector publishes for kiosks (trust list, rules,
deny list, revocation index, tracing parameters, value sets...) travels inside a
COSE_Sign1 envelope signed by the health department's publishing key (Ed25519).

The envelope's payload is a CBOR map:

    {"doc": "trust", "v": 7, "iat": epoch, "exp": epoch, "ctype": "application/json",
     "body": b"...the document as before (the trust list in the EU gateway's format)..."}

A kiosk pins the publisher's public key at provisioning (`sync.publisher_key`) and takes
in a document only when it is signed by that key, names the document it asked for, is
not older than the version it holds and is not past its valid-until time
(TUF's rollback and freeze-attack rules). Freshness is the document's own `iat`/`exp`,
never the HTTP answer's.

A new kind of document is one `register()` call (the collector then serves it at
`/v1/<path>` and `kiosk sync` fetches it once an importer is registered there).

Pure: no hardware and no HTTP here, so the collector imports it too.

    >>> from datetime import datetime, timezone
    >>> key = generate_private_key()
    >>> now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    >>> raw = sign_document("rules", b"[dcc]", key, version=3, now=now)
    >>> doc = open_document(raw, key.public_key(), name="rules", now=now, held_version=2)
    >>> doc.version, doc.body
    (3, b'[dcc]')
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from kiosk.checks.cose import CheckFailed, parse_sign1, sign1, verify
from kiosk.errors import TrustError
from kiosk.model import iso_utc

__all__ = [
    "DocumentKind", "DOCUMENTS", "register", "SignedDocument", "SignedDocError",
    "sign_document", "open_document", "peek", "CONTENT_TYPE", "generate_private_key",
    "load_public_key", "public_key_text", "private_key_pem", "load_private_key_pem", "key_id",
]

#: The media type of an envelope on the wire.
CONTENT_TYPE = "application/cose"
#: A published document is good for this long unless its kind says otherwise; the
#: collector re-signs it (version + 1, same body) when half of it has passed.
DEFAULT_VALID_FOR = timedelta(days=7)
#: An envelope may be dated this far after the kiosk's clock (a kiosk running late).
CLOCK_SKEW = timedelta(minutes=10)
#: The longest validity a kiosk believes, whatever the envelope says.
MAX_VALID_FOR = timedelta(days=90)
#: Largest envelope opened (the trust list of the whole EU gateway fits easily).
MAX_ENVELOPE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class DocumentKind:
    """One kind of published document: its name, its URL path under /v1 and defaults."""

    name: str
    path: str
    content_type: str
    valid_for: timedelta = DEFAULT_VALID_FOR


#: Every kind of signed document, by name.
DOCUMENTS: dict[str, DocumentKind] = {}


def register(name: str, *, path: str | None = None, content_type: str = "application/json",
             valid_for: timedelta = DEFAULT_VALID_FOR) -> DocumentKind:
    """Add a kind of published document (issue: value sets are `register("valuesets")`)."""
    kind = DocumentKind(name, path or name, content_type, valid_for)
    DOCUMENTS[name] = kind
    return kind


register("trust")
register("rules", content_type="application/toml")
register("denylist")
#: The revocation index: which chunks of hashes exist (see kiosk.sync.fetcher).
register("revocations", valid_for=timedelta(days=2))
#: The EU DCC value sets (kiosk.checks.dcc_schema.parse_valuesets; kiosk/data/valuesets.json format).
register("valuesets", valid_for=timedelta(days=30))
#: The software update offer (kiosk.update): version, wheel SHA-256, staged rollout.
register("update", valid_for=timedelta(days=2))
# No "tracing_key": the collector derives the person key at ingest; devices never hold it.


class SignedDocError(TrustError):
    """A published document was refused; `reason` is a stable code:
    unsigned | bad_signature | other_key | wrong_document | older | expired |
    not_yet_valid | bad_envelope | no_publisher_key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class SignedDocument:
    name: str
    version: int
    issued_at: datetime
    valid_until: datetime
    content_type: str
    body: bytes

    def meta(self) -> dict[str, Any]:
        """What a kiosk remembers of the document it holds (journal state)."""
        return {"version": self.version, "iat": iso_utc(self.issued_at, timespec="seconds"),
                "exp": iso_utc(self.valid_until, timespec="seconds")}


# --- keys ------------------------------------------------------------------------------

def generate_private_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate()


def private_key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key_pem(data: bytes, where: str) -> Any:
    """The publishing key from a PEM file's bytes; TrustError naming `where` otherwise."""
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise TrustError(f"{where}: not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise TrustError(f"{where}: the publishing key must be an Ed25519 key (collector publisher-keygen)")
    return key


def public_key_text(key: Any) -> str:
    """base64 of the 32 raw public key bytes: what goes in a kiosk's `sync.publisher_key`."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = key.public_key() if hasattr(key, "public_key") else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def load_public_key(text: str) -> Any:
    """A pinned publisher key from its text; ValueError saying what is expected."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise ValueError("expected base64 of a 32-byte Ed25519 public key "
                         "(`collector publisher-keygen` prints it)") from None


def key_id(key: Any) -> bytes:
    """The COSE kid of a publisher key: the first 8 bytes of SHA-256 of the raw key."""
    return hashlib.sha256(base64.b64decode(public_key_text(key))).digest()[:8]


# --- the envelope ----------------------------------------------------------------------

def sign_document(name: str, body: bytes, private_key: Any, *, version: int, now: datetime,
                  valid_for: timedelta | None = None, content_type: str | None = None) -> bytes:
    """The envelope around `body`, as the collector serves it."""
    kind = DOCUMENTS.get(name) or DocumentKind(name, name, "application/octet-stream")
    valid = valid_for or kind.valid_for
    if version < 1:
        raise ValueError("versions start at 1")
    claims = {"doc": name, "v": int(version), "iat": int(now.timestamp()),
              "exp": int((now + valid).timestamp()), "ctype": content_type or kind.content_type,
              "body": bytes(body)}
    return sign1(claims, private_key, kid=key_id(private_key))


def _decode(raw: bytes) -> tuple[Any, SignedDocument]:
    if not isinstance(raw, (bytes, bytearray)) or len(raw) > MAX_ENVELOPE_BYTES:
        raise SignedDocError("bad_envelope", "too large or not bytes")
    try:
        msg = parse_sign1(bytes(raw))
    except CheckFailed as exc:
        raise SignedDocError("unsigned", f"not a COSE_Sign1 envelope ({exc.detail or exc.reason.value})") from None
    c = msg.claims
    name, version, iat, exp = c.get("doc"), c.get("v"), c.get("iat"), c.get("exp")
    body, ctype = c.get("body"), c.get("ctype", "application/octet-stream")
    ints = [x for x in (version, iat, exp) if isinstance(x, int) and not isinstance(x, bool)]
    if not isinstance(name, str) or len(ints) != 3 or not isinstance(body, bytes) \
            or not isinstance(ctype, str):
        raise SignedDocError("bad_envelope", "payload lacks doc/v/iat/exp/body")
    try:
        doc = SignedDocument(name, version, datetime.fromtimestamp(iat, timezone.utc),
                             datetime.fromtimestamp(exp, timezone.utc), ctype, body)
    except (OverflowError, OSError, ValueError):
        raise SignedDocError("bad_envelope", "iat/exp out of range") from None
    return msg, doc


def peek(raw: bytes) -> SignedDocument:
    """The envelope's content WITHOUT checking the signature (the collector numbering
    the next version of what it already stores). Never trust what this returns."""
    return _decode(raw)[1]


def open_document(raw: bytes, public_key: Any, *, name: str, now: datetime,
                  held_version: int | None = None) -> SignedDocument:
    """Verify an envelope against the pinned key and the kiosk's clock; SignedDocError
    (a TrustError) says why it is refused. An envelope of the version already held is
    returned as is (the caller sees `version == held_version`: nothing new)."""
    if public_key is None:
        raise SignedDocError("no_publisher_key", "no publisher key pinned (sync.publisher_key): "
                             "nothing from the collector is trusted")
    msg, doc = _decode(raw)
    if msg.kid is not None and msg.kid != key_id(public_key):
        raise SignedDocError("other_key", f"signed by key {msg.kid.hex()}, not the pinned "
                             f"publisher key {key_id(public_key).hex()}")
    try:
        verify(msg, public_key)
    except CheckFailed as exc:
        raise SignedDocError("bad_signature", f"signature does not verify with the pinned publisher key ({exc.detail})") from None
    if doc.name != name:
        raise SignedDocError("wrong_document", f"asked for {name!r}, the envelope holds {doc.name!r}")
    if held_version is not None and doc.version < held_version:
        raise SignedDocError("older", f"version {doc.version} is older than the version {held_version} held")
    if doc.issued_at > now + CLOCK_SKEW:
        raise SignedDocError("not_yet_valid", f"issued {iso_utc(doc.issued_at, timespec='seconds')}, after the kiosk's clock")
    valid_until = min(doc.valid_until, doc.issued_at + MAX_VALID_FOR)
    if now >= valid_until:
        raise SignedDocError("expired", f"valid until {iso_utc(valid_until, timespec='seconds')}")
    return doc if valid_until == doc.valid_until else SignedDocument(
        doc.name, doc.version, doc.issued_at, valid_until, doc.content_type, doc.body)

