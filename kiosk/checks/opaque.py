"""Personal app codes that cannot be verified offline (PC-Covid / VNeID tokens, legacy
declaration links). They are logged; the venue rules say pass or review.

    >>> check("https://tokhaiyte.vn/?id=abc123XYZ").credential.scheme
    'opaque'
    >>> check("\\x00").failed.reason.value
    'unknown_scheme'
"""

from __future__ import annotations

import hashlib

from kiosk.checks.cose import CheckFailed
from kiosk.checks.result import Checked
from kiosk.model import Credential, Reason

__all__ = ["check", "MIN_CHARS", "MAX_CHARS"]

#: Shorter codes are not personal tokens (a digit, a word); longer ones are not QR text.
MIN_CHARS = 6
MAX_CHARS = 4_296


def check(text: str) -> Checked:
    stripped = text.strip()
    if not MIN_CHARS <= len(stripped) <= MAX_CHARS or not stripped.isprintable():
        return Checked(None, CheckFailed(Reason.UNKNOWN_SCHEME, "not a code the kiosk knows: no known prefix, "
                                         f"and not {MIN_CHARS} to {MAX_CHARS} printable characters"))
    digest = hashlib.sha256(stripped.encode("utf-8", "surrogatepass")).hexdigest()
    return Checked(Credential(scheme="opaque", subject_key="opaque:" + digest,
                              claims={"length": len(stripped)}))
