"""Publishing: sign documents with the health department's publishing key and store them.

Every document served to kiosks is a signed envelope (kiosk.checks.signed) whose version
is one more than the one stored before, so a kiosk can tell a replayed old document from
a new one. Revocations are published as immutable chunks of 16-byte hashes plus a signed
index listing each chunk's SHA-256: a kiosk fetches only the chunks after the last one it
applied (the delta), and a cut connection costs at most the chunk in flight.

    >>> from datetime import datetime, timezone
    >>> from collector.storage import Store
    >>> from kiosk.checks.signed import generate_private_key
    >>> key, now = generate_private_key(), datetime(2026, 3, 1, tzinfo=timezone.utc)
    >>> with Store("sqlite://") as store:
    ...     publish(store, "denylist", b"[]", key=key, now=now).name
    ...     revoke(store, ["ab" * 16, "cd" * 16], key=key, now=now)
    'denylist'
    2
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

from kiosk.checks.revocation import HASH_BYTES, normalise
from kiosk.checks.signed import (CONTENT_TYPE, DOCUMENTS, SignedDocError, load_private_key_pem,
                                 peek, sign_document)
from kiosk.errors import ConfigError, TrustError

__all__ = ["publish", "revoke", "refresh_due", "load_signing_key", "write_signing_key",
           "validate", "REVOCATION_CHUNK_ENTRIES", "VALIDATORS"]

#: Hashes per revocation chunk: 100,000 x 16 bytes = 1.6 MB, one request each.
REVOCATION_CHUNK_ENTRIES = 100_000
KEY_FILE_MODE = 0o600


def load_signing_key(path: str | os.PathLike) -> Any:
    """The publishing key (Ed25519 PEM) from `publisher_key_file`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"publisher_key_file {path}: cannot read: {exc.strerror or exc}") from None
    try:
        return load_private_key_pem(data, f"publisher_key_file {path}")
    except TrustError as exc:
        raise ConfigError(str(exc)) from None


def write_signing_key(path: str | os.PathLike, pem: bytes) -> None:
    """Write a new key file readable by its owner only; refuse to overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


# --- what each document must look like before it is signed -----------------------------

def _trust(body: bytes) -> None:
    from kiosk.checks.trust import parse_list

    parse_list(body)


def _denylist(body: bytes) -> None:
    from kiosk.checks.denylist import parse, refuse_unkeyed

    refuse_unkeyed(*parse(body, strict=True))


def _rules(body: bytes) -> None:
    from kiosk.checks.rules import FETCHED_WHERE, parse_rules_text

    try:
        parse_rules_text(body.decode("utf-8"), FETCHED_WHERE, None)
    except UnicodeDecodeError:
        raise TrustError("rules are not UTF-8 text") from None
    except ConfigError as exc:
        raise TrustError(str(exc)) from None


def _json(body: bytes) -> None:
    try:
        json.loads(body)
    except ValueError as exc:
        raise TrustError(f"not valid JSON: {exc}") from None


#: A check per document kind, run before signing: what kiosks would refuse is not published.
#: Kinds without one are checked as JSON when their content type is JSON.
def _valuesets(body: bytes) -> None:
    from kiosk.checks.dcc_schema import parse_valuesets

    parse_valuesets(body)


def _update(body: bytes) -> None:
    from kiosk.update import parse_offer

    parse_offer(body)


VALIDATORS: dict[str, Callable[[bytes], None]] = {"trust": _trust, "denylist": _denylist, "rules": _rules,
                                                  "valuesets": _valuesets, "update": _update}


def validate(name: str, body: bytes, content_type: str) -> None:
    """Raise TrustError (a ValueError) when `body` is not a valid `name` document."""
    check = VALIDATORS.get(name) or (_json if content_type.endswith("json") else None)
    if check is not None:
        check(body)


def _next_version(store: Any, name: str) -> int:
    held = store.document(name)
    if held is None:
        return 1
    try:
        return peek(held.body).version + 1
    except SignedDocError:
        return 1  # a legacy unsigned row: kiosks never took it in


def publish(store: Any, name: str, body: bytes, *, key: Any, now: datetime,
            content_type: str | None = None, valid_for: timedelta | None = None):
    """Validate, sign (version = stored version + 1) and store one document."""
    if name not in DOCUMENTS:
        raise ValueError(f"unknown document {name!r}; one of {', '.join(DOCUMENTS)}")
    ctype = content_type or DOCUMENTS[name].content_type
    validate(name, body, ctype)
    signed = sign_document(name, body, key, version=_next_version(store, name), now=now,
                           valid_for=valid_for, content_type=ctype)
    return store.publish(name, signed, content_type=CONTENT_TYPE, now=now)


def publish_revocation_index(store: Any, *, key: Any, now: datetime):
    chunks = store.revocation_index()
    body = json.dumps({"hash_bytes": HASH_BYTES, "chunks": chunks}, separators=(",", ":")).encode()
    return publish(store, "revocations", body, key=key, now=now)


def revoke(store: Any, hashes: Iterable[str], *, key: Any, now: datetime, remove: bool = False,
           chunk_entries: int = REVOCATION_CHUNK_ENTRIES) -> int:
    """Publish revocations (or, with `remove`, withdraw them): new chunks, then a new
    signed index. Returns how many distinct hashes the chunks hold."""
    items = sorted({normalise(h) for h in hashes})
    if not items:
        return 0
    version = _next_version(store, "revocations")
    op = "remove" if remove else "add"
    bodies = []
    for i in range(0, len(items), chunk_entries):
        part = items[i:i + chunk_entries]
        bodies.append((op, len(part), bytes.fromhex("".join(part))))
    store.add_revocation_chunks(bodies, version=version, now=now)
    publish_revocation_index(store, key=key, now=now)
    return len(items)


def refresh_due(store: Any, name: str, *, key: Any, now: datetime) -> bool:
    """Re-sign a stored document (same body, version + 1) once half its validity has
    passed, so kiosks never see a still-current document age out. True when re-signed."""
    held = store.document(name)
    if held is None or key is None:
        return False
    try:
        doc = peek(held.body)
    except SignedDocError:
        return False
    valid_for = doc.valid_until - doc.issued_at
    if now < doc.issued_at + valid_for / 2:
        return False
    signed = sign_document(name, doc.body, key, version=doc.version + 1, now=now,
                           valid_for=valid_for, content_type=doc.content_type)
    store.publish(name, signed, content_type=CONTENT_TYPE, now=now)
    return True
