"""`HD1:` signed health declarations (DESIGN.md): the DCC container with our own claim.

`HD1:` + base45( zlib( COSE_Sign1 ) ); protected header alg (-7 ES256 or -8 EdDSA) and an
8-byte kid; CWT claims 1 iss, 6 iat, 4 exp and -261 -> the declaration map
`{"v": 1, "nm", "dob", "idh", "ph", "at", "sym", "ctc", "trv", "st"}`. Issuer keys are
trust list entries of type HD1.

    >>> from datetime import datetime, timezone
    >>> key, kid = generate_key()
    >>> text = issue_declaration(key, kid, issuer="Sở Y tế Demo", name="Trần Thị Mai",
    ...     dob="1990-04-30", id_number="079190000123", phone="0901234567", symptoms=(),
    ...     contact=False, travel=(), status="green",
    ...     now=datetime(2021, 9, 1, tzinfo=timezone.utc), valid_for=timedelta(hours=24))
    >>> text.startswith("HD1:")
    True
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from kiosk.checks.cose import CheckFailed, CoseMessage, seal, sign1, unseal, verify
from kiosk.checks.dcc import parse_date
from kiosk.checks.result import Checked, check_times, signer_keys
from kiosk.checks.trust import KIND_HD1
from kiosk.model import Credential, Reason

__all__ = ["PREFIX", "STATUSES", "check", "issue_declaration", "generate_key", "kid_for",
           "public_der", "load_private_key", "private_pem", "hash_id", "idh_key", "mask_phone"]

PREFIX = "HD1:"
CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_DECL = 1, 4, 6, -261
STATUSES = ("green", "yellow", "red")
ALLOWED_ALGS = (-7, -8)
KID_BYTES = 8
MAX_LIST = 64          # symptom / province codes in one declaration
MAX_TEXT = 200         # characters in a name or code
DEFAULT_VALID_FOR = timedelta(hours=24)

_IDH = re.compile(r"^[0-9a-f]{64}$")
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def hash_id(id_number: str, key: bytes | str) -> str:
    """`idh`: hex HMAC-SHA256 of the ID number under the issuer's secret `key`, so neither
    the declaration nor anything that stores its `idh` can be searched for the ID (a
    public salt such as the issuer's name fell to a search of the ID space)."""
    import hmac

    raw = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(raw, id_number.encode("utf-8"), hashlib.sha256).hexdigest()


def idh_key(private_key: Any) -> bytes:
    """The issuer's `idh` key, derived from its signing key, which never leaves the issuer
    (the collector's declaration form): one issuer's declarations of a person share it."""
    der = private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return hashlib.sha256(b"kiosk-hd1-idh-v1|" + der).digest()


def mask_phone(phone: str) -> str:
    """Keep the last three digits: `0901234567` -> `*******567`."""
    digits = re.sub(r"\D", "", phone)
    return "*" * max(len(digits) - 3, 0) + digits[-3:]


def generate_key(kind: str = "ec") -> tuple[Any, bytes]:
    """A new issuer key (`ec`: P-256 for ES256, `ed25519`: EdDSA) and its kid."""
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    return key, kid_for(key.public_key())


def public_der(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def kid_for(public_key: Any) -> bytes:
    """The kid the way the EU gateway makes it: first 8 bytes of SHA-256 of the DER."""
    return hashlib.sha256(public_der(public_key)).digest()[:KID_BYTES]


def private_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(pem: bytes) -> Any:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise ValueError("an HD1 issuer key must be EC P-256 or Ed25519")
    return key


def issue_declaration(private_key: Any, kid: bytes, *, issuer: str, name: str, dob: str,
                      id_number: str, phone: str, symptoms: Iterable[str] = (),
                      contact: bool = False, travel: Iterable[str] = (), status: str = "green",
                      now: datetime, valid_for: timedelta = DEFAULT_VALID_FOR,
                      salt: bytes | str | None = None, declared_at: datetime | None = None) -> str:
    """Sign a declaration and return the QR text (`HD1:...`). `salt` (a secret key)
    for the ID hash defaults to `idh_key(private_key)`, so one issuer's declarations of one
    person share it and no one without the issuer's key can search it."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    if parse_date(dob) is None:
        raise ValueError("dob must be YYYY-MM-DD")
    decl = {
        "v": 1, "nm": unicodedata.normalize("NFC", name), "dob": dob,
        "idh": hash_id(id_number, idh_key(private_key) if salt is None else salt),
        "ph": mask_phone(phone), "at": int((declared_at or now).timestamp()),
        "sym": list(symptoms), "ctc": bool(contact), "trv": list(travel), "st": status,
    }
    claims = {CLAIM_ISS: issuer, CLAIM_IAT: int(now.timestamp()),
              CLAIM_EXP: int((now + valid_for).timestamp()), CLAIM_DECL: decl}
    return seal(PREFIX, sign1(claims, private_key, kid=kid))


def _bad(why: str) -> CheckFailed:
    return CheckFailed(Reason.BAD_SCHEMA, why)


def parse(msg: CoseMessage) -> dict[str, Any]:
    """The CWT claims and declaration map, validated. Raises bad_cbor / bad_schema."""
    claims = msg.claims
    decl = claims.get(CLAIM_DECL)
    if not isinstance(decl, Mapping):
        raise CheckFailed(Reason.BAD_CBOR, "claim -261 must be the declaration map")
    out: dict[str, Any] = {}
    for label, key in ((CLAIM_IAT, "iat"), (CLAIM_EXP, "exp")):
        value = claims.get(label)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2 ** 40:
            raise CheckFailed(Reason.BAD_CBOR, f"CWT claim {key} must be a time")
        out[key] = datetime.fromtimestamp(value, timezone.utc)
    iss = claims.get(CLAIM_ISS)
    if not isinstance(iss, str) or not 0 < len(iss) <= MAX_TEXT:
        raise CheckFailed(Reason.BAD_CBOR, "CWT claim iss must be the issuer's name")
    out["iss"] = iss
    if decl.get("v") != 1:
        raise _bad("v must be 1")
    nm = decl.get("nm")
    if not isinstance(nm, str) or not nm.strip() or len(nm) > MAX_TEXT:
        raise _bad("nm must be a name")
    if parse_date(decl.get("dob")) is None or len(decl["dob"]) != 10:
        raise _bad("dob must be YYYY-MM-DD")
    if not isinstance(decl.get("idh"), str) or not _IDH.match(decl["idh"]):
        raise _bad("idh must be a hex SHA-256")
    if not isinstance(decl.get("ph"), str) or len(decl["ph"]) > 20:
        raise _bad("ph must be a masked phone number")
    at = decl.get("at")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not 0 <= at < 2 ** 40:
        raise _bad("at must be a time")
    for key in ("sym", "trv"):
        items = decl.get(key)
        if not isinstance(items, (list, tuple)) or len(items) > MAX_LIST \
                or not all(isinstance(i, str) and _CODE.match(i) for i in items):
            raise _bad(f"{key} must be a list of codes")
    if not isinstance(decl.get("ctc"), bool):
        raise _bad("ctc must be true or false")
    if decl.get("st") not in STATUSES:
        raise _bad(f"st must be one of {STATUSES}")
    out["decl"] = {
        "v": 1, "nm": unicodedata.normalize("NFC", nm), "dob": decl["dob"], "idh": decl["idh"],
        "ph": decl["ph"], "at": datetime.fromtimestamp(at, timezone.utc),
        "sym": list(decl["sym"]), "ctc": decl["ctc"], "trv": list(decl["trv"]), "st": decl["st"],
    }
    return out


def check(text: str, *, now: datetime, trust: Any) -> Checked:
    """Decode, verify and time-check one `HD1:` text (never raises CheckFailed)."""
    try:
        msg = unseal(text, PREFIX)
        parsed = parse(msg)
    except CheckFailed as failed:
        return Checked(None, failed)
    decl = parsed["decl"]
    credential = Credential(
        scheme="hd1", name=decl["nm"], subject_key="hd1:" + decl["idh"], issuer=parsed["iss"],
        personal={"name": decl["nm"], "dob": decl["dob"], "phone": decl["ph"], "idh": decl["idh"]},
        claims={"iat": parsed["iat"], "exp": parsed["exp"], "iss": parsed["iss"], **decl},
    )
    revocation = [hashlib.sha256(msg.signature).hexdigest()]
    try:
        issuers = signer_keys(msg.kid, trust, KIND_HD1, "a DCC signer, not a declaration issuer")
        if msg.alg not in ALLOWED_ALGS:
            raise CheckFailed(Reason.BAD_SIGNATURE, f"algorithm {msg.alg!r} not allowed for HD1")
        last: CheckFailed | None = None
        for key in issuers:
            try:
                verify(msg, key.public_key)
                last = None
                if key.not_before is not None and now < key.not_before:
                    raise CheckFailed(Reason.NOT_YET_VALID, "issuer certificate not yet valid")
                if key.not_after is not None and now > key.not_after:
                    raise CheckFailed(Reason.EXPIRED, "issuer certificate expired")
                break
            except CheckFailed as failed:
                last = failed
        if last is not None:
            raise last
        check_times(parsed["iat"], parsed["exp"], now)
    except CheckFailed as failed:
        return Checked(credential, failed, revocation)
    return Checked(credential, None, revocation)
