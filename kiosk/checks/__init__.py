"""Parse, verify and decide: one module per QR scheme, the trust store and the pure policy.

`evaluate()` is the one entry point the run loop uses. It never raises on any input:
every outcome is a Verdict with one reason code and the name masked for display.

    >>> from datetime import datetime, timezone
    >>> verdict, credential = evaluate("HC1:xyz", now=datetime(2021, 9, 1, tzinfo=timezone.utc),
    ...                                trust=None, rules=None)
    >>> verdict.as_dict()
    {'verdict': 'fail', 'reason': 'bad_base45', 'scheme': 'dcc', 'name': None, 'detail': {'step': 'base45', 'message': 'Invalid base45 string'}}
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any, Callable, Collection

from kiosk.model import Credential, Outcome, Reason, Verdict, mask_name

__all__ = ["evaluate", "recognise", "PREFIXES"]

log = logging.getLogger(__name__)

PREFIXES = {"HC1:": "dcc", "HD1:": "hd1", "KP1:": "provision"}
#: Another context prefix of the same shape (`HC2:`, `HL0:`): a container we do not speak.
_OTHER_PREFIX = re.compile(r"^[A-Z]{2}\d:")
#: A DCC without its `HC1:` context: nothing but base45 characters, long enough to be one.
_BARE_BASE45 = re.compile(r"^[0-9A-Z $%*+\-./:]{60,}$")
_LINE_ENDINGS = "\r\n\t\x00"


def recognise(text: str) -> str:
    """The scheme a QR text belongs to: dcc, hd1, provision, cccd or opaque.

    Texts that look like a signed container with a wrong or missing prefix count as
    dcc, so they fail as bad_prefix rather than pass as an app code.
    """
    for prefix, scheme in PREFIXES.items():
        if text.startswith(prefix):
            return scheme
    from kiosk.checks import cccd

    if cccd.looks_like(text):
        return "cccd"
    if _OTHER_PREFIX.match(text) or _BARE_BASE45.match(text):
        return "dcc"
    return "opaque"


def _check(scheme: str, text: str, now: datetime, trust: Any):
    from kiosk.checks import cccd, dcc, hd1, opaque
    from kiosk.checks.cose import CheckFailed
    from kiosk.checks.result import Checked

    if scheme == "dcc":
        return dcc.check(text, now=now, trust=trust)
    if scheme == "hd1":
        return hd1.check(text, now=now, trust=trust)
    if scheme == "cccd":
        return cccd.check(text, now=now)
    if scheme == "provision":
        # Provisioning codes are intercepted by kiosk.provision before evaluate(); one
        # that gets here is never acted on.
        return Checked(None, CheckFailed(Reason.UNKNOWN_SCHEME, "provisioning code"))
    return opaque.check(text)


def evaluate(text: str, *, now: datetime, trust: Any = None, rules: Any = None,
             history: Callable[[str], list[datetime]] | None = None, clock_synced: bool = True,
             denied: Callable[[str], bool] | None = None,
             lapsed: Collection[str] = ()) -> tuple[Verdict, Credential | None]:
    """Decide on one scanned text: (verdict, credential or None if nothing parsed).

    `trust` is a TrustStore (None: nothing verifies, signed codes fail unknown_key);
    `rules` the venue's Rules (None, "--no-rules": only decoding, structure, signature,
    key usage, revocation and validity period; a DCC's codes against the EU value sets
    are a business rule, checked with the rules); `history(subject_key)` earlier scan times of the
    person; `clock_synced=False` sends every code to review (clock_unsynced) because
    no validity can be judged; `denied(subject_hash)` the deny list (default: the
    trust store's); `lapsed` the names of signed documents past their valid-until and
    its grace period (`kiosk.checks.freshness`): a pass that relies on one of them goes
    to review (data_expired), naming them.
    """
    scheme = "unknown"
    try:
        if not isinstance(text, str):
            return Verdict(Outcome.FAIL, Reason.UNKNOWN_SCHEME, scheme), None
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        # Serial scanners end a code with CR/LF (some with a tab or NUL); never part of
        # a code. Spaces are kept: base45 uses them.
        text = text.strip(_LINE_ENDINGS)
        scheme = recognise(text)
        verdict, credential = _evaluate(scheme, text, now, trust, rules, history, clock_synced, denied)
        if verdict.outcome is Outcome.PASS and lapsed:
            from kiosk.checks.freshness import blocking

            stale = blocking(scheme, lapsed)
            if stale:
                # What the kiosk would check against is out of date: a revoked
                # certificate or a person newly on the deny list could pass. The guard decides.
                return Verdict(Outcome.REVIEW, Reason.DATA_EXPIRED, scheme, verdict.name,
                               "expired: " + ", ".join(stale)), credential
        return verdict, credential
    except Exception:  # noqa: BLE001 - the promise is "never raises"; log and fail closed
        log.exception("check of a %s code failed unexpectedly", scheme)
        return Verdict(Outcome.FAIL, Reason.BAD_SCHEMA, scheme, None, "internal error"), None


def _evaluate(scheme: str, text: str, now: datetime, trust: Any, rules: Any,
              history: Any, clock_synced: bool, denied: Any) -> tuple[Verdict, Credential | None]:
    from kiosk.checks.rules import decide

    checked = _check(scheme, text, now, trust)
    credential = checked.credential
    name = mask_name(credential.name) if credential is not None else None
    failed = checked.failed
    if failed is not None:
        # A credential that failed its checks (signature, key, structure, validity)
        # carries no identity: what it claims is not journalled as anyone's visit.
        credential = None
    if not clock_synced:
        # Without a trustworthy clock no validity period, declaration age or test age
        # can be judged, and even a decoding failure may be a code from "the future":
        # every code goes to the guard; the detail keeps what the checks found.
        found = failed.reason.value if failed is not None else "checks passed"
        return Verdict(Outcome.REVIEW, Reason.CLOCK_UNSYNCED, scheme, name, found), credential
    if failed is not None:
        return Verdict(Outcome.FAIL, failed.reason, scheme, name, failed.detail, checked.detail()), credential
    assert credential is not None
    if trust is not None and checked.revocation_hashes and trust.is_revoked(checked.revocation_hashes):
        return Verdict(Outcome.FAIL, Reason.REVOKED, scheme, name), None
    if credential.subject_key and _denied(credential.subject_key, trust, denied):
        return Verdict(Outcome.FAIL, Reason.DENIED, scheme, name), credential
    if rules is None:
        if scheme == "cccd":
            return Verdict(Outcome.REVIEW, Reason.IDENTITY_ONLY, scheme, name), credential
        if scheme == "opaque":
            return Verdict(Outcome.REVIEW, Reason.UNKNOWN_SCHEME, scheme, name), credential
        return Verdict(Outcome.PASS, Reason.OK, scheme, name), credential
    valuesets = None
    if scheme == "dcc":
        from kiosk.checks.dcc_schema import valuesets_for

        valuesets = valuesets_for(getattr(trust, "journal", None))
    return decide(credential, rules, now=now, history=history, valuesets=valuesets), credential


def _denied(subject_key: str, trust: Any, denied: Callable[[str], bool] | None) -> bool:
    """`denied(hash)` when given (unkeyed SHA-256, tests and tools); else the trust
    store's deny list, keyed with scrypt (kiosk.checks.denylist)."""
    if denied is not None:
        from kiosk.checks.trust import subject_hash

        return denied(subject_hash(subject_key))
    if trust is None:
        return False
    from kiosk.checks.denylist import subject_denied

    return subject_denied(trust, subject_key)
