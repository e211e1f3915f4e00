"""The deny list kiosks receive, keyed so that it cannot be inverted into ID numbers.

A kiosk must check the list offline, so whatever it computes from an identifier, a thief
holding the card (or any device token) can compute too: the only defence is cost. Each
entry is scrypt(subject key, salt, N, r, p), with a salt made fresh for every published
list and the cost parameters carried in the document. With N=2^16, r=8 one guess costs
about 0.23 s of one x86 core and 64 MiB (bench/sealing_bench.py): searching the ~2.5 x
10^10 plausible ID numbers for one list costs about 185 core-years (N=2^15 measured 90,
under the bar of 100), where plain SHA-256 of `cccd:<id>` fell in minutes. A kiosk pays
the cost once per person per process, and only while a list is held (about 0.8 s on a
Pi 4 core: the price of an offline deny check that cannot be inverted).

The document (published as `denylist`, signed like every other):

    {"scheme": "scrypt-v1", "salt": "<hex>", "n": 65536, "r": 8, "p": 1,
     "entries": [{"hash": "<hex>", "note": "court order"}, ...]}

    >>> body = make_denylist(["cccd:079190000123"], n=2 ** 10)
    >>> params, items = parse(body)
    >>> items[0][0] == deny_hash("cccd:079190000123", params)
    True
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable

from kiosk.errors import TrustError

__all__ = ["DenyParams", "deny_hash", "make_denylist", "parse", "parse_denylist", "store_params", "subject_denied", "refuse_unkeyed",
           "SCHEME", "DEFAULT_N", "DEFAULT_R", "MIN_N"]

SCHEME = "scrypt-v1"
#: scrypt cost: N=2^16, r=8, p=1 is 64 MiB and ~0.23 s per guess on one x86 core.
DEFAULT_N = 2 ** 16
DEFAULT_R = 8
DEFAULT_P = 1
#: A list with a cheaper N is refused by kiosks (it could be searched); the doctest's 2^10
#: is only for building documents quickly, never accepted from a collector.
MIN_N = 2 ** 16
MAX_N = 2 ** 18
SALT_BYTES = 16
DKLEN = 32
#: Journal state holding the held list's parameters (JSON).
PARAMS_STATE = "denylist.params"
#: Hashes of subjects seen since start, kept in memory only (a repeat scan costs nothing).
CACHE_SIZE = 512
_HEX = re.compile(r"^[0-9a-f]{16,128}$")
_NOTE_MAX = 200


@dataclass(frozen=True)
class DenyParams:
    salt: bytes
    n: int = DEFAULT_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P

    def as_json(self) -> dict[str, Any]:
        return {"scheme": SCHEME, "salt": self.salt.hex(), "n": self.n, "r": self.r, "p": self.p}


def deny_hash(subject_key: str, params: DenyParams) -> str:
    """The deny list's hex hash of a subject key (`cccd:<id>`, `dcc:<UVCI>`, `hd1:<idh>`)."""
    return hashlib.scrypt(subject_key.encode("utf-8"), salt=params.salt, n=params.n, r=params.r,
                          p=params.p, maxmem=256 * params.n * params.r, dklen=DKLEN).hex()


def make_denylist(subject_keys: Iterable[str | tuple[str, str]], *, n: int = DEFAULT_N,
                  r: int = DEFAULT_R, p: int = DEFAULT_P) -> bytes:
    """A deny list document for these subject keys (or (subject key, note) pairs), with a
    fresh salt. The collector's admin publishes it: `collector publish denylist FILE`."""
    params = DenyParams(secrets.token_bytes(SALT_BYTES), n, r, p)
    entries = []
    for item in subject_keys:
        key, note = (item, "") if isinstance(item, str) else item
        entries.append({"hash": deny_hash(key.strip(), params), "note": note})
    return json.dumps({**params.as_json(), "entries": entries}, ensure_ascii=False).encode("utf-8")


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


def parse(body: bytes, *, min_n: int = 1) -> tuple[DenyParams | None, list[tuple[str, str]]]:
    """(params, [(hash, note)]) of a deny list document; params None for a bare list of
    hashes (the old, unkeyed form). Raises TrustError on anything malformed."""
    items = parse_denylist(body)
    doc = json.loads(body.decode("utf-8"))
    if not isinstance(doc, dict) or "scheme" not in doc:
        return None, items
    if doc.get("scheme") != SCHEME:
        raise TrustError(f"deny list scheme {doc.get('scheme')!r} is not {SCHEME!r}")
    try:
        params = DenyParams(bytes.fromhex(doc["salt"]), int(doc["n"]), int(doc["r"]), int(doc["p"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise TrustError(f"deny list parameters are malformed: {exc}") from None
    if not (min_n <= params.n <= MAX_N) or params.n & (params.n - 1) or not (1 <= params.r <= 32) \
            or not (1 <= params.p <= 4) or len(params.salt) < 8:
        raise TrustError(f"deny list parameters n={params.n} r={params.r} p={params.p} are not allowed "
                         f"(n a power of two {min_n}..{MAX_N}, r 1..32, p 1..4, salt 8+ bytes)")
    return params, items


def store_params(journal: Any, body: bytes) -> None:
    """Keep the parameters of a deny list just imported (its hashes are in `denylist`).
    A keyed list must cost at least MIN_N per guess."""
    params, items = parse(body, min_n=MIN_N)
    refuse_unkeyed(params, items)
    journal.set_json(PARAMS_STATE, params.as_json() if params is not None else None)


def refuse_unkeyed(params: DenyParams | None, items: list[tuple[str, str]]) -> None:
    """A non-empty list of plain hashes is refused: SHA-256 of `cccd:<id>` is inverted
    by a search of the ID space in minutes."""
    if params is None and items:
        raise TrustError("an unkeyed deny list (plain hashes) is refused: it can be inverted into "
                         "ID numbers; make it with `collector denylist` (scrypt, kiosk.checks.denylist)")


_cache: "OrderedDict[tuple[str, str], str]" = OrderedDict()
_cache_lock = threading.Lock()


def subject_denied(trust: Any, subject_key: str) -> bool:
    """Is this person on the deny list the trust store holds? Computes the (costly)
    keyed hash only while a list is held, once per person per process."""
    journal = getattr(trust, "journal", None)
    if journal is None:
        from kiosk.checks.trust import subject_hash

        return trust.is_denied(subject_hash(subject_key))
    with trust._db():
        held = journal.db.conn.execute("SELECT 1 FROM denylist LIMIT 1").fetchone()
    if held is None:
        return False
    raw = journal.get_json(PARAMS_STATE)
    if not raw:
        from kiosk.checks.trust import subject_hash

        return trust.is_denied(subject_hash(subject_key))  # an old, unkeyed list
    params = DenyParams(bytes.fromhex(raw["salt"]), raw["n"], raw["r"], raw["p"])
    key = (raw["salt"], subject_key)
    with _cache_lock:
        h = _cache.get(key)
    if h is None:
        h = deny_hash(subject_key, params)
        with _cache_lock:
            _cache[key] = h
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return trust.is_denied(h)
