"""Fetch the trust list, venue rules and deny list from the collector, with ETags.

Each document is requested with `If-None-Match: <ETag we hold>`; 304 means nothing to
do. A new version is checked and swapped in as a whole, in one transaction, and only
then is its ETag stored: a half-imported list is never in use, and a failed import is
fetched again next time. A 404 (nothing published yet) leaves what the kiosk has.

- trust: `kiosk.checks.trust.TrustStore(journal).import_list(body, now=now)`
- rules: the text as published (TOML or JSON), in journal state `rules.fetched`
- denylist: the journal's `denylist` table, replaced whole. JSON: a list of hex hashes
  or of `{"hash": ..., "note": ...}` objects (or `{"entries": [...]}` holding that list).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Callable

import requests

from kiosk.errors import SyncError, TrustError
from kiosk.model import utcnow
from kiosk.sync import state

__all__ = ["Fetcher", "DOCUMENTS", "parse_denylist", "MAX_DOCUMENT_BYTES"]

log = logging.getLogger("kiosk.sync")

DOCUMENTS = ("trust", "rules", "denylist")
#: A tracing key shorter than this is refused (HMAC-SHA256 wants 32 bytes).
TRACING_KEY_MIN_BYTES = 16
#: A published document larger than this is refused rather than held in memory.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: TrustStore's "imported at" state key: the trust list's age is measured from it.
TRUST_CONFIRMED_KEY = "trust.imported_at"
_HEX = re.compile(r"^[0-9a-f]{16,128}$")
_NOTE_MAX = 200


def parse_denylist(body: bytes) -> list[tuple[str, str]]:
    """The deny list as (hash, note) pairs; raises TrustError on anything malformed.

    >>> parse_denylist(b'["AB12cd34ef567890", {"hash": "00112233445566778899", "note": "court order"}]')
    [('ab12cd34ef567890', ''), ('00112233445566778899', 'court order')]
    """
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TrustError(f"deny list is not JSON: {exc}") from None
    if isinstance(doc, dict):
        doc = doc.get("entries")
    if not isinstance(doc, list):
        raise TrustError("deny list must be a JSON list of hashes or {hash, note} objects")
    out: dict[str, str] = {}
    for i, item in enumerate(doc):
        if isinstance(item, str):
            h, note = item, ""
        elif isinstance(item, dict) and isinstance(item.get("hash"), str):
            h, note = item["hash"], str(item.get("note") or "")[:_NOTE_MAX]
        else:
            raise TrustError(f"deny list item {i} is neither a hash nor a {{hash, note}} object")
        h = h.strip().lower()
        if not _HEX.match(h):
            raise TrustError(f"deny list item {i}: {h[:40]!r} is not a hex hash")
        out[h] = note
    return list(out.items())


def _default_trust_importer(journal: Any) -> Callable[[bytes, Any], Any]:
    def importer(body: bytes, now: Any) -> Any:
        try:
            from kiosk.checks.trust import TrustStore
        except ImportError as exc:  # the trust store ships with the checks package
            raise TrustError(f"no trust store to import into: {exc}") from exc
        return TrustStore(journal).import_list(body, now=now)
    return importer


class Fetcher:
    """Pulls the collector's documents into the journal. Close it (or use `with`)."""

    def __init__(self, journal: Any, *, url: str, token: str, timeout_s: float = 10.0,
                 session: requests.Session | None = None,
                 trust_importer: Callable[[bytes, Any], Any] | None = None,
                 clock: Callable[[], Any] = utcnow) -> None:
        self.journal = journal
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self._own_session = session is None
        self.import_trust = trust_importer or _default_trust_importer(journal)
        self.clock = clock

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def etags(self) -> dict[str, str]:
        return dict(self.journal.get_json(state.ETAGS_KEY) or {})

    def fetch(self, name: str) -> str:
        """Fetch one document: returns "updated", "unchanged" or "absent"; raises SyncError
        (network, HTTP error) or TrustError (the document itself is bad)."""
        if name not in DOCUMENTS:
            raise ValueError(f"unknown document {name!r}")
        etag = self.etags().get(name)
        headers = {"Authorization": f"Bearer {self.token}"}
        if etag:
            headers["If-None-Match"] = etag
        try:
            resp = self.session.get(f"{self.url}/v1/{name}", headers=headers, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise SyncError(f"cannot fetch {name}: {exc}") from exc
        if resp.status_code == 304:
            if name == "trust":
                # The list we hold is confirmed current: its age (the screen's "trust list
                # stale" warning) counts from now, not from when it last changed.
                self.journal.set_state(TRUST_CONFIRMED_KEY, state._iso(self.clock()))
            return "unchanged"
        if resp.status_code == 404:
            return "absent"
        if resp.status_code != 200:
            raise SyncError(f"fetching {name}: collector answered {resp.status_code}")
        body = resp.content
        if len(body) > MAX_DOCUMENT_BYTES:
            raise TrustError(f"{name} is larger than {MAX_DOCUMENT_BYTES} bytes")
        new_etag = resp.headers.get("ETag")
        now = self.clock()
        if name == "trust":
            self.import_trust(body, now)
            self._set_etag(name, new_etag, now)
        elif name == "rules":
            text = _check_rules(body, resp.headers.get("Content-Type", ""))
            with self.journal.atomic():
                self.journal.set_state(state.RULES_KEY, text, now=now)
                self._set_etag(name, new_etag, now)
        else:
            items = parse_denylist(body)
            with self.journal.atomic():
                conn = self.journal.db.conn
                conn.execute("DELETE FROM denylist")
                conn.executemany("INSERT INTO denylist(hash, note) VALUES (?, ?)", items)
                self._set_etag(name, new_etag, now)
        return "updated"

    def _set_etag(self, name: str, etag: str | None, now: Any) -> None:
        with self.journal.atomic():
            tags = self.etags()
            if etag:
                tags[name] = etag
            else:
                tags.pop(name, None)
            self.journal.set_json(state.ETAGS_KEY, tags, now=now)

    def fetch_tracing_key(self) -> str:
        """Fetch the collector's tracing key, under which the journal keys people from now
        on: "updated", "unchanged" or "absent" (a collector without one)."""
        from kiosk.journal import TRACING_KEY_STATE

        try:
            resp = self.session.get(f"{self.url}/v1/tracing-key", timeout=self.timeout_s,
                                    headers={"Authorization": f"Bearer {self.token}"})
        except requests.RequestException as exc:
            raise SyncError(f"cannot fetch the tracing key: {exc}") from exc
        if resp.status_code == 404:
            return "absent"
        if resp.status_code != 200:
            raise SyncError(f"fetching the tracing key: collector answered {resp.status_code}")
        try:
            key = resp.json()["key"]
            if len(bytes.fromhex(key)) < TRACING_KEY_MIN_BYTES:
                raise ValueError("too short")
        except (ValueError, KeyError, TypeError) as exc:
            raise TrustError(f"the collector's tracing key is not a hex key: {exc}") from None
        if self.journal.get_state(TRACING_KEY_STATE) == key:
            return "unchanged"
        self.journal.set_state(TRACING_KEY_STATE, key, now=self.clock())
        return "updated"

    def fetch_all(self) -> dict[str, str]:
        """Fetch every document; a failure of one does not stop the others. Returns
        {name: "updated" | "unchanged" | "absent" | "error: ..."} and stores it with
        the time in journal state `sync.fetch`."""
        results: dict[str, str] = {}
        for name in (*DOCUMENTS, "tracing_key"):
            try:
                results[name] = self.fetch_tracing_key() if name == "tracing_key" else self.fetch(name)
            except (SyncError, TrustError) as exc:
                log.warning("fetch %s: %s", name, exc)
                results[name] = f"error: {exc}"
        now = self.clock()
        self.journal.set_json(state.FETCH_KEY, {"at": state._iso(now), "results": results}, now=now)
        return results


def _check_rules(body: bytes, content_type: str) -> str:
    """The rules text, refused (the old rules kept) unless the kiosk could run with it."""
    from kiosk.checks.rules import FETCHED_WHERE, parse_rules_text
    from kiosk.errors import ConfigError

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise TrustError("rules are not UTF-8 text") from None
    try:
        parse_rules_text(text, FETCHED_WHERE, None)
    except ConfigError as exc:
        raise TrustError(str(exc)) from None
    return text
