"""The deny list kiosks receive, keyed so that it cannot be inverted into ID numbers.

A kiosk must check the list offline, so whatever it computes from an identifier, a thief
holding the card (or any device token) can compute too: the only defence is cost. Each
entry is SHA-256 over `lanes` independent scrypt(subject key, salt || lane, N, r, 1), with
a salt made fresh for every published list and the cost parameters carried in the
document. As published: 4 lanes of N=2^14, r=8 (16 MiB each). A guess costs the work of
N=2^16 (4 x ~46 ms of one x86 core, bench/sealing_bench.py): searching the ~2.5 x 10^10
plausible ID numbers for one list costs about 120 core-years, above the bar of 100
(issue 11), where plain SHA-256 of `cccd:<id>` fell in minutes.

Why lanes (issue 21): the kiosk pays the same cost once per person per process while a
list is held, and on a Pi 4 one scrypt at N=2^16 is ~0.7 s of one core, on the scan path.
Lowering N would lower the thief's cost with it (N=2^14 alone: 36 core-years). The lanes
are independent, so the kiosk computes them on the Pi's four cores at once (one lane's
time, ~0.15 s, bench/denylist_bench.py --pi4) while a thief still pays all four per guess.
Standard scrypt's p parameter has the same structure, but OpenSSL (hashlib) computes its
lanes one after another, so the lanes are separate scrypt calls, which release the GIL.
The cost is memory per lane: 16 MiB instead of 64, which makes a GPU search cheaper per
guess than a 64 MiB scrypt would (CPU cost, the bar's measure, is unchanged). Lists in the
older single-scrypt form (`scrypt-v1`, N=2^16) are still read.

The document (published as `denylist`, signed like every other):

    {"scheme": "scrypt-lanes-v1", "salt": "<hex>", "n": 16384, "r": 8, "lanes": 4,
     "entries": [{"hash": "<hex>"}, ...]}

A note beside a hash ("court order") may be in the collector's file; kiosks drop it.

    >>> body = make_denylist(["cccd:079190000123"], n=2 ** 10)
    >>> params, items = parse(body)
    >>> items[0][0] == deny_hash("cccd:079190000123", params)
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable

from kiosk.errors import TrustError

__all__ = ["DenyParams", "deny_hash", "make_denylist", "parse", "parse_denylist", "store_params", "subject_denied",
           "refuse_unkeyed", "SCHEME", "SCHEME_V1", "DEFAULT_N", "DEFAULT_R", "DEFAULT_LANES", "MIN_N", "MIN_WORK"]

SCHEME = "scrypt-lanes-v1"
#: The first keyed form: one scrypt with standard p (still read).
SCHEME_V1 = "scrypt-v1"
#: Per lane: N=2^14, r=8, 16 MiB, ~46 ms of one x86 core, ~0.15 s of a Pi 4 core.
DEFAULT_N = 2 ** 14
DEFAULT_R = 8
DEFAULT_P = 1
#: Four lanes: a Pi 4 has four cores.
DEFAULT_LANES = 4
MAX_LANES = 8
#: A list is refused by kiosks and by `collector publish` when a guess costs less than
#: N=2^16 of scrypt work (n x lanes, or n x p for scrypt-v1) or a lane less than 16 MiB:
#: it could be searched. The doctest's 2^10 is only for building documents quickly.
MIN_WORK = 2 ** 16
MIN_N = 2 ** 14
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
    """A list's key: salt and cost. `lanes` None is the older `scrypt-v1` (one scrypt, p)."""
    salt: bytes
    n: int = DEFAULT_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P
    lanes: int | None = DEFAULT_LANES

    @property
    def work(self) -> int:
        """scrypt work per guess, in units of one ROMix step of r: n x lanes (or n x p)."""
        return self.n * (self.lanes or self.p)

    def as_json(self) -> dict[str, Any]:
        if self.lanes is None:
            return {"scheme": SCHEME_V1, "salt": self.salt.hex(), "n": self.n, "r": self.r, "p": self.p}
        return {"scheme": SCHEME, "salt": self.salt.hex(), "n": self.n, "r": self.r, "lanes": self.lanes}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "DenyParams":
        if doc.get("scheme") == SCHEME_V1:
            return cls(bytes.fromhex(doc["salt"]), int(doc["n"]), int(doc["r"]), int(doc["p"]), None)
        return cls(bytes.fromhex(doc["salt"]), int(doc["n"]), int(doc["r"]), 1, int(doc["lanes"]))


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _lanes_pool() -> ThreadPoolExecutor:
    """One worker per core, at most MAX_LANES: hashlib.scrypt releases the GIL."""
    global _pool
    with _pool_lock:
        if _pool is None:
            workers = max(1, min(MAX_LANES, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                 else os.cpu_count() or 1))
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="deny-lane")
        return _pool


def _scrypt(data: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=DKLEN)


def deny_hash(subject_key: str, params: DenyParams) -> str:
    """The deny list's hex hash of a subject key (`cccd:<id>`, `dcc:<UVCI>`, `hd1:<idh>`)."""
    data = subject_key.encode("utf-8")
    if params.lanes is None:
        return _scrypt(data, params.salt, params.n, params.r, params.p).hex()
    salts = [params.salt + bytes([lane]) for lane in range(params.lanes)]
    outs = _lanes_pool().map(lambda s: _scrypt(data, s, params.n, params.r, 1), salts)
    return hashlib.sha256(b"".join(outs)).hexdigest()


def make_denylist(subject_keys: Iterable[str | tuple[str, str]], *, n: int = DEFAULT_N,
                  r: int = DEFAULT_R, lanes: int = DEFAULT_LANES) -> bytes:
    """A deny list document for these subject keys (or (subject key, note) pairs), with a
    fresh salt. The collector's admin publishes it: `collector publish denylist FILE`."""
    params = DenyParams(secrets.token_bytes(SALT_BYTES), n, r, 1, lanes)
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


def parse(body: bytes, *, strict: bool = False) -> tuple[DenyParams | None, list[tuple[str, str]]]:
    """(params, [(hash, note)]) of a deny list document; params None for a bare list of
    hashes (the old, unkeyed form). Raises TrustError on anything malformed; `strict`
    (kiosks, `collector publish`) also refuses a cost under MIN_WORK or MIN_N."""
    items = parse_denylist(body)
    doc = json.loads(body.decode("utf-8"))
    if not isinstance(doc, dict) or "scheme" not in doc:
        return None, items
    if doc.get("scheme") not in (SCHEME, SCHEME_V1):
        raise TrustError(f"deny list scheme {doc.get('scheme')!r} is not {SCHEME!r} (or {SCHEME_V1!r})")
    try:
        params = DenyParams.from_json(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise TrustError(f"deny list parameters are malformed: {exc}") from None
    lanes_ok = params.lanes is None or 1 <= params.lanes <= MAX_LANES
    if not (1 <= params.n <= MAX_N) or params.n & (params.n - 1) or not (1 <= params.r <= 32) \
            or not (1 <= params.p <= 4) or not lanes_ok or len(params.salt) < 8:
        raise TrustError(f"deny list parameters {params.as_json() | {'salt': '...'}} are not allowed "
                         f"(n a power of two up to {MAX_N}, r 1..32, p 1..4, lanes 1..{MAX_LANES}, salt 8+ bytes)")
    if strict and (params.n < MIN_N or params.work < MIN_WORK):
        raise TrustError(f"deny list cost n={params.n} x {params.lanes or params.p} is too cheap to publish: "
                         f"a lane needs n >= {MIN_N} and a guess n x lanes >= {MIN_WORK}, or the list "
                         "could be searched for ID numbers")
    return params, items


def store_params(journal: Any, body: bytes) -> None:
    """Keep the parameters of a deny list just imported (its hashes are in `denylist`).
    A keyed list must cost at least MIN_WORK per guess."""
    params, items = parse(body, strict=True)
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
    params = DenyParams.from_json(raw)
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
