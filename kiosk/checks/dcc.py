"""EU Digital COVID Certificate (`HC1:`), Vietnam's vaccine passport (schema 1.3.0).

Steps, each failing with its own reason code: prefix, base45, zlib, COSE_Sign1, CWT
claims (1 iss, 4 exp, 6 iat, -260 -> {1: hcert}), the DCC payload against the EU DCC
JSON schema of its release, 1.0.x to 1.3.x (`kiosk.checks.dcc_schema`: types, required
members, patterns, lengths, formats, exactly one of v/t/r with one entry), the signer
key by kid from the trust list, the signature, the DSC's extended key usage against
the certificate type, the DSC's validity period and the CWT's iat/exp. The codes
against the EU value sets, like the venue rules (test result, doses, days), are
business rules applied later by `kiosk.checks.rules.decide`: the EU schema names value
sets without constraining them, and the EU validation rules check them.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timezone
from typing import Any, Mapping

from kiosk.checks.cose import CheckFailed, CoseMessage, unseal, verify
from kiosk.checks.dcc_schema import normalise, validate
from kiosk.checks.result import Checked, StepFailed, check_times, signer_keys
from kiosk.checks.trust import KIND_DSC
from kiosk.model import Credential, Reason

__all__ = ["PREFIX", "check", "parse", "TYPES", "parse_date", "parse_datetime"]

PREFIX = "HC1:"
CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_HCERT = 1, 4, 6, -260
TYPES = {"v": "vaccination", "t": "test", "r": "recovery"}
TEST_DETECTED = "260373001"       # SNOMED "Detected": a positive test
TEST_NOT_DETECTED = "260415000"

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def parse_date(text: Any) -> date | None:
    """`2021-02-18` (a time part after it is ignored) -> date; None if not a real date."""
    if not isinstance(text, str):
        return None
    m = _DATE.match(text)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


_LEAP_SECOND = re.compile(r"(T\d{2}:\d{2}):60")


def parse_datetime(text: Any) -> datetime | None:
    """ISO 8601 date-time (`2021-02-20T12:34:56Z`, offsets allowed, seconds or offset
    left out; a date alone is its midnight) -> aware UTC datetime. No offset is UTC. A
    leap second (:60) reads as :59, which Python's datetime cannot hold."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    text = _LEAP_SECOND.sub(r"\1:59", text.replace("t", "T"), count=1)
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc)


def parse(msg: CoseMessage) -> tuple[dict[str, Any], dict[str, Any]]:
    """CWT claims and the hcert's structure -> (cwt, hcert). Raises bad_cbor, or
    bad_schema (a StepFailed naming the member) when the payload does not follow the
    EU DCC schema of its release (`kiosk.checks.dcc_schema.validate`)."""
    claims = msg.claims
    hcert_map = claims.get(CLAIM_HCERT)
    if not isinstance(hcert_map, Mapping) or not isinstance(hcert_map.get(1), Mapping):
        raise CheckFailed(Reason.BAD_CBOR, "claim -260 must be a map holding {1: DCC}")
    cwt: dict[str, Any] = {}
    for label, name in ((CLAIM_EXP, "exp"), (CLAIM_IAT, "iat")):
        value = claims.get(label)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2 ** 40:
            raise CheckFailed(Reason.BAD_CBOR, f"CWT claim {name} must be a time")
        cwt[name] = datetime.fromtimestamp(value, timezone.utc)
    iss = claims.get(CLAIM_ISS)
    cwt["iss"] = iss if isinstance(iss, str) else None

    hc = normalise(hcert_map[1])
    problem = validate(hc)
    if problem is not None:
        member, message = problem
        raise StepFailed(Reason.BAD_SCHEMA, message, step="schema", member=member)
    kind = next(k for k in TYPES if k in hc)
    # The schema admits exactly one entry.
    return cwt, {"ver": hc["ver"], "nam": hc["nam"], "dob": hc["dob"], "type": kind,
                 "entry": hc[kind][0], "hcert": hc}


def _name(nam: Mapping[str, Any]) -> str | None:
    # Vietnamese order: family name first ("Nguyễn" + "Bảo Duy"), as on the passport.
    fn = nam.get("fn") or (nam.get("fnt") or "").replace("<", " ").title()
    gn = nam.get("gn") or (nam.get("gnt") or "").replace("<", " ").title()
    name = " ".join(p.strip() for p in (fn, gn) if p and p.strip())
    return name or None


def revocation_hashes(country: str | None, uvci: str, signature: bytes, alg: Any = None) -> list[str]:
    """Hex hashes under which this certificate may be revoked: UVCI, country+UVCI and
    signature (EU revocation hash types), full SHA-256 and the 128-bit prefix the
    gateway distributes (for ECDSA of the signature's r, as the EU design says)."""
    from kiosk.checks.revocation import hashes_for

    digests = [hashlib.sha256(uvci.encode("utf-8")).hexdigest(),
               hashlib.sha256(((country or "") + uvci).encode("utf-8")).hexdigest(),
               hashlib.sha256(signature).hexdigest()]
    eu = hashes_for(country, uvci, signature, alg)
    return digests + [d[:32] for d in digests] + [h for h in eu if h not in (d[:32] for d in digests)]


def check(text: str, *, now: datetime, trust: Any) -> Checked:
    """Decode, verify and time-check one `HC1:` text. Never raises CheckFailed: the
    failure, if any, is in the result alongside whatever could be parsed."""
    try:
        msg = unseal(text, PREFIX)
        cwt, hc = parse(msg)
    except CheckFailed as failed:
        return Checked(None, failed)
    entry = hc["entry"]
    uvci = entry.get("ci") or ""
    name = _name(hc["nam"])
    credential = Credential(
        scheme="dcc", name=name, subject_key="dcc:" + uvci if uvci else None,
        issuer=cwt["iss"],
        personal={"name": name, "dob": hc["dob"], "country": entry.get("co") or cwt["iss"]},
        claims={"ver": hc["ver"], "type": hc["type"], "entry": entry,
                "iat": cwt.get("iat"), "exp": cwt.get("exp"), "iss": cwt["iss"]},
    )
    revocation = revocation_hashes(cwt["iss"], uvci, msg.signature, msg.alg)
    try:
        key = _signer(msg, trust)
        verify(msg, key.public_key)
        if key.usages is not None and hc["type"] not in key.usages:
            raise CheckFailed(Reason.KEY_USAGE, f"signer may sign {sorted(key.usages)}, not {hc['type']}")
        if key.not_before is not None and now < key.not_before:
            raise CheckFailed(Reason.NOT_YET_VALID, "signer certificate not yet valid")
        if key.not_after is not None and now > key.not_after:
            raise CheckFailed(Reason.EXPIRED, "signer certificate expired")
        check_times(cwt.get("iat"), cwt.get("exp"), now)
    except CheckFailed as failed:
        return Checked(credential, failed, revocation)
    return Checked(credential, None, revocation)


def _signer(msg: CoseMessage, trust: Any):
    dscs = signer_keys(msg.kid, trust, KIND_DSC, "a declaration issuer, not a DCC signer")
    # Several certificates can share a kid (it is only 8 bytes): any one that verifies.
    if len(dscs) == 1:
        return dscs[0]
    for key in dscs:
        try:
            verify(msg, key.public_key)
            return key
        except CheckFailed:
            continue
    return dscs[0]
