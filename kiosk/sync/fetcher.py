"""Fetch the collector's signed documents (trust list, rules, deny list, revocations
... every kind in `kiosk.checks.signed.DOCUMENTS` with an importer here).

Each document arrives in a COSE_Sign1 envelope signed by the health department's
publishing key, which the kiosk pinned at provisioning (`sync.publisher_key`). An
envelope that is unsigned, signed by another key, older than the version held or past
its valid-until is refused ("refused: <reason>") and the document held stays in use;
the screen shows why (`collector_untrusted`). A new version is checked and swapped in
as a whole, in one transaction together with its version and ETag, so a half-imported
document is never in use and a failed import is fetched again next time. `304 Not
Modified` only saves the download: freshness is the signed document's own times.

- trust: `TrustStore(journal).import_list(body, now=<iat>, valid_until=<exp>)`
- rules: the text as published (TOML or JSON), in journal state `rules.fetched`
- denylist: the journal's `denylist` table, replaced whole. JSON: a list of hex hashes
  or of `{"hash": ..., "note": ...}` objects (or `{"entries": [...]}` holding that list).
- update: the software update offer (kiosk.update.stage): judged, downloaded, staged
  for the root half (`kiosk update apply`).
- revocations: a signed index of chunks of 16-byte hashes (EU DCC revocation design);
  the chunks after the last one applied are fetched, each checked against the SHA-256
  in the index and applied in its own transaction: an update is a delta, and a cut
  connection resumes at the chunk it lost.

A new kind is `register_importer(name, fn)` beside `kiosk.checks.signed.register(name)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any, Callable

import requests

from kiosk.checks.signed import DOCUMENTS as SIGNED_DOCUMENTS
from kiosk.checks.signed import SignedDocError, SignedDocument, load_public_key, open_document
from kiosk.checks.denylist import parse_denylist
from kiosk.checks.freshness import HELD_KEY as _HELD_KEY
from kiosk.errors import SyncError, TrustError
from kiosk.model import iso_utc, utcnow
from kiosk.sync import state

__all__ = ["Fetcher", "DOCUMENTS", "IMPORTERS", "register_importer", "parse_denylist",
           "MAX_DOCUMENT_BYTES", "HELD_KEY", "REVOCATION_CURSOR_KEY", "refused"]

log = logging.getLogger("kiosk.sync")

#: A published document (or revocation chunk) larger than this is refused rather than held in memory.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: Journal state: {name: {"version", "iat", "exp"}} of each signed document held
#: (defined beside the checks that judge its age: kiosk.checks.freshness).
HELD_KEY = _HELD_KEY
#: Journal state: the seq of the last revocation chunk applied.
REVOCATION_CURSOR_KEY = "revocations.cursor"
#: Bytes read per step when streaming a chunk (so a huge answer stops at the limit).
STREAM_STEP = 256 * 1024


def refused(results: dict[str, str]) -> list[str]:
    """Names of documents the last fetch refused (signature, key, version, expiry).

    >>> refused({"trust": "refused: other_key: ...", "rules": "unchanged"})
    ['trust']
    """
    return [name for name, result in results.items() if str(result).startswith("refused")]


# --- importers: one per kind of document --------------------------------------------

Importer = Callable[["Fetcher", SignedDocument], None]


def _import_trust(fetcher: "Fetcher", doc: SignedDocument) -> None:
    from kiosk.checks.trust import TrustStore

    TrustStore(fetcher.journal).import_list(doc.body, now=doc.issued_at, valid_until=doc.valid_until)


def _import_rules(fetcher: "Fetcher", doc: SignedDocument) -> None:
    fetcher.journal.set_state(state.RULES_KEY, _check_rules(doc.body, doc.content_type), now=fetcher.clock())


def _import_valuesets(fetcher: "Fetcher", doc: SignedDocument) -> None:
    from kiosk.checks.dcc_schema import parse_valuesets
    from kiosk.checks.rules import FETCHED_VALUESETS_KEY

    parse_valuesets(doc.body, "value sets from the collector")  # refused whole if bad
    fetcher.journal.set_state(FETCHED_VALUESETS_KEY, doc.body.decode("utf-8"), now=fetcher.clock())


def _import_denylist(fetcher: "Fetcher", doc: SignedDocument) -> None:
    from kiosk.checks.denylist import store_params
    from kiosk.checks.trust import TrustStore

    # The hashes and the scrypt parameters that make them (kiosk.checks.denylist) together.
    with fetcher.journal.atomic():
        TrustStore(fetcher.journal).import_denylist(parse_denylist(doc.body))
        store_params(fetcher.journal, doc.body)


def _revocation_index(body: bytes) -> list[dict[str, Any]]:
    try:
        index = json.loads(body)
        chunks = index["chunks"]
        if index.get("hash_bytes", 16) != 16 or not isinstance(chunks, list):
            raise ValueError("expected 16-byte hashes and a list of chunks")
        out = []
        for c in chunks:
            seq, count, op, digest = int(c["seq"]), int(c["count"]), c["op"], str(c["sha256"])
            if op not in ("add", "remove") or count < 0 or not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(f"chunk {seq}: bad op, count or sha256")
            out.append({"seq": seq, "count": count, "op": op, "sha256": digest})
    except (ValueError, KeyError, TypeError) as exc:
        raise TrustError(f"revocation index is malformed: {exc}") from None
    return sorted(out, key=lambda c: c["seq"])


def _import_revocations(fetcher: "Fetcher", doc: SignedDocument) -> None:
    from kiosk.checks.trust import TrustStore

    store = TrustStore(fetcher.journal)
    cursor = int(fetcher.journal.get_state(REVOCATION_CURSOR_KEY) or 0)
    for chunk in _revocation_index(doc.body):
        if chunk["seq"] <= cursor:
            continue  # applied in an earlier sync: the delta starts after it
        raw = fetcher.get_bytes(f"/v1/revocations/chunks/{chunk['seq']}", what=f"revocation chunk {chunk['seq']}")
        if hashlib.sha256(raw).hexdigest() != chunk["sha256"] or len(raw) != 16 * chunk["count"]:
            raise TrustError(f"revocation chunk {chunk['seq']} does not match the signed index")
        hashes = [raw[i:i + 16].hex() for i in range(0, len(raw), 16)]
        with fetcher.journal.atomic():
            if chunk["op"] == "add":
                store.apply_revocations(add=hashes)
            else:
                store.apply_revocations(remove=hashes)
            fetcher.journal.set_state(REVOCATION_CURSOR_KEY, str(chunk["seq"]), now=fetcher.clock())
        cursor = chunk["seq"]


def _import_update(fetcher: "Fetcher", doc: SignedDocument) -> None:
    from kiosk.update import stage

    stage(fetcher, doc)


#: name -> importer. Only documents with an importer are fetched.
IMPORTERS: dict[str, Importer] = {
    "trust": _import_trust, "rules": _import_rules, "denylist": _import_denylist,
    "revocations": _import_revocations, "valuesets": _import_valuesets, "update": _import_update,
}


def register_importer(name: str, importer: Importer) -> None:
    """Fetch the signed document `name` (registered in kiosk.checks.signed) too."""
    if name not in SIGNED_DOCUMENTS:
        raise ValueError(f"register {name!r} in kiosk.checks.signed first")
    IMPORTERS[name] = importer


def _documents() -> tuple[str, ...]:
    return tuple(n for n in SIGNED_DOCUMENTS if n in IMPORTERS)


DOCUMENTS = _documents()


#: Refusals that are the health department's own documents gone out of date (the
#: collector stopped re-signing, or the kiosk's clock is off): stale, not untrusted.
STALE_REASONS = frozenset({"expired", "not_yet_valid"})


def fetch_faults(journal: Any) -> set[str]:
    """The screen's faults from the last fetch: `collector_untrusted` when a document was
    refused as not the health department's (unsigned, another key, an older version
    replayed, no key pinned), `trust_stale` when one was refused as out of date.

    >>> class J:
    ...     def get_json(self, key):
    ...         return {"results": {"trust": "refused: other_key: ...", "rules": "refused: expired: ..."}}
    >>> sorted(fetch_faults(J()))
    ['collector_untrusted', 'trust_stale']
    """
    results = (journal.get_json(state.FETCH_KEY) or {}).get("results") or {}
    reasons = {str(results[name]).split(": ")[1] if ": " in str(results[name]) else "" for name in refused(results)}
    faults = set()
    if reasons - STALE_REASONS:
        faults.add("collector_untrusted")
    if reasons & STALE_REASONS:
        faults.add("trust_stale")
    return faults


class Fetcher:
    """Pulls the collector's signed documents into the journal. Close it (or use `with`).

    `publisher_key`: the pinned key (text of `sync.publisher_key`, or a key object);
    without it every document is refused. `ca_file`: the collector's CA (PEM), for
    requests' `verify=`; empty: the system's CAs.
    """

    def __init__(self, journal: Any, *, url: str, token: str, publisher_key: Any = "",
                 ca_file: str = "", timeout_s: float = 10.0,
                 session: requests.Session | None = None,
                 clock: Callable[[], Any] = utcnow) -> None:
        self.journal = journal
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self._own_session = session is None
        # Per request, not on the session: requests lets $REQUESTS_CA_BUNDLE override a
        # session's `verify`, and the pinned CA must win.
        self.verify = ca_file or None
        if isinstance(publisher_key, str):
            try:
                publisher_key = load_public_key(publisher_key) if publisher_key.strip() else None
            except ValueError as exc:
                raise TrustError(f"sync.publisher_key: {exc}") from None
        self.publisher_key = publisher_key
        self.clock = clock
        #: The kiosk's config (from_config), for importers that judge by it (the update rollout).
        self.config: Any = None
        #: The envelope being imported, as received (the update stages it for root to check again).
        self.last_envelope = b""

    @classmethod
    def from_config(cls, cfg: Any, journal: Any, *, token: str, **kwargs: Any) -> "Fetcher":
        s = cfg.sync
        fetcher = cls(journal, url=s.collector_url, token=token, publisher_key=s.publisher_key,
                      ca_file=s.ca_file, timeout_s=s.timeout_s, **kwargs)
        fetcher.config = cfg
        return fetcher

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def etags(self) -> dict[str, str]:
        return dict(self.journal.get_json(state.ETAGS_KEY) or {})

    def held(self) -> dict[str, dict[str, Any]]:
        """What the kiosk holds of each signed document: version, iat, exp."""
        return dict(self.journal.get_json(HELD_KEY) or {})

    def _get(self, path: str, what: str, headers: dict[str, str] | None = None) -> requests.Response:
        try:
            return self.session.get(f"{self.url}{path}", timeout=self.timeout_s, stream=True,
                                    verify=self.verify, headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
        except requests.RequestException as exc:
            raise SyncError(f"cannot fetch {what}: {exc}") from exc

    def _read(self, resp: requests.Response, what: str) -> bytes:
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
            resp.close()
            raise TrustError(f"{what} is larger than {MAX_DOCUMENT_BYTES} bytes")
        parts, size = [], 0
        try:
            for part in resp.iter_content(STREAM_STEP):
                size += len(part)
                if size > MAX_DOCUMENT_BYTES:
                    raise TrustError(f"{what} is larger than {MAX_DOCUMENT_BYTES} bytes")
                parts.append(part)
        except requests.RequestException as exc:
            raise SyncError(f"fetching {what} was cut: {exc}") from exc
        finally:
            resp.close()
        return b"".join(parts)

    def get_bytes(self, path: str, *, what: str) -> bytes:
        """GET one immutable resource (a revocation chunk) with the size limit."""
        resp = self._get(path, what)
        if resp.status_code != 200:
            resp.close()
            raise SyncError(f"fetching {what}: collector answered {resp.status_code}")
        return self._read(resp, what)

    def fetch(self, name: str) -> str:
        """Fetch one document: returns "updated", "unchanged" or "absent"; raises SyncError
        (network, HTTP error), SignedDocError (refused envelope) or TrustError (the
        document inside is bad). The document held stays in use on any error."""
        if name not in IMPORTERS or name not in SIGNED_DOCUMENTS:
            raise ValueError(f"unknown document {name!r}")
        kind = SIGNED_DOCUMENTS[name]
        held = self.held().get(name)
        etag = self.etags().get(name) if held else None
        resp = self._get(f"/v1/{kind.path}", name, {"If-None-Match": etag} if etag else None)
        if resp.status_code in (304, 404):
            resp.close()
            return "unchanged" if resp.status_code == 304 else "absent"
        if resp.status_code != 200:
            resp.close()
            raise SyncError(f"fetching {name}: collector answered {resp.status_code}")
        body = self._read(resp, name)
        doc = open_document(body, self.publisher_key, name=name, now=self.clock(),
                            held_version=held["version"] if held else None)
        if held is None or doc.version != held["version"]:
            self.last_envelope = body
            IMPORTERS[name](self, doc)
        with self.journal.atomic():
            docs = self.held()
            docs[name] = doc.meta()
            self.journal.set_json(HELD_KEY, docs, now=self.clock())
            self._set_etag(name, resp.headers.get("ETag"))
        return "updated" if held is None or doc.version != held["version"] else "unchanged"

    def _set_etag(self, name: str, etag: str | None) -> None:
        with self.journal.atomic():
            tags = self.etags()
            if etag:
                tags[name] = etag
            else:
                tags.pop(name, None)
            self.journal.set_json(state.ETAGS_KEY, tags, now=self.clock())

    def fetch_all(self) -> dict[str, str]:
        """Fetch every document; a failure of one does not stop the others. Returns
        {name: "updated" | "unchanged" | "absent" | "refused: ..." | "error: ..."} and
        stores it with the time in journal state `sync.fetch`."""
        results: dict[str, str] = {}
        for name in _documents():
            try:
                results[name] = self.fetch(name)
            except SignedDocError as exc:
                log.error("fetch %s refused: %s", name, exc)
                results[name] = f"refused: {exc}"
            except (SyncError, TrustError) as exc:
                log.warning("fetch %s: %s", name, exc)
                results[name] = f"error: {exc}"
        now = self.clock()
        self.journal.set_json(state.FETCH_KEY, {"at": iso_utc(now), "results": results}, now=now)
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
