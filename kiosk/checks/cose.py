"""The signed container shared by `HC1:` (EU DCC) and `HD1:` (our health declaration):
prefix + base45( zlib( COSE_Sign1 ) ), with a CWT claims map as the payload.

A small COSE_Sign1 (RFC 8152) verifier and signer on `cryptography`; CBOR via `cbor2`,
base45 via `base45`. Every decoding failure raises `CheckFailed` with the reason code of
the step that failed, so callers turn it into a verdict without guessing.

    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> key = ec.generate_private_key(ec.SECP256R1())
    >>> text = seal("HD1:", sign1({1: "me"}, key, kid=b"12345678"))
    >>> msg = unseal(text, "HD1:")
    >>> msg.kid, msg.claims[1]
    (b'12345678', 'me')
    >>> verify(msg, key.public_key())
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, ed448, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                              encode_dss_signature)

from kiosk.model import Reason

__all__ = ["CheckFailed", "CoseMessage", "ALGORITHMS", "unseal", "unpack", "parse_sign1", "seal", "sign1",
           "sig_structure", "verify"]

#: COSE header labels and the CBOR tags around a COSE_Sign1 / CWT.
HDR_ALG = 1
HDR_KID = 4
TAG_COSE_SIGN1 = 18
TAG_CWT = 61

#: A QR code holds at most ~4,300 alphanumeric characters; anything much larger is not a
#: scanned code, and we refuse to inflate beyond this (zip bombs).
MAX_TEXT_CHARS = 8_000
MAX_INFLATED_BYTES = 64 * 1024

#: Algorithms the EU DCC specification allows (ES256 primary, PS256 secondary; the rest
#: are listed by the COSE registry and accepted by the reference verifiers), plus EdDSA
#: for our own declarations. alg id -> (family, hash, EC coordinate size in bytes).
ALGORITHMS: dict[int, tuple[str, Any, int]] = {
    -7: ("ecdsa", hashes.SHA256, 32),    # ES256
    -35: ("ecdsa", hashes.SHA384, 48),   # ES384
    -36: ("ecdsa", hashes.SHA512, 66),   # ES512
    -37: ("pss", hashes.SHA256, 0),      # PS256
    -38: ("pss", hashes.SHA384, 0),      # PS384
    -39: ("pss", hashes.SHA512, 0),      # PS512
    -257: ("pkcs1", hashes.SHA256, 0),   # RS256
    -258: ("pkcs1", hashes.SHA384, 0),   # RS384
    -259: ("pkcs1", hashes.SHA512, 0),   # RS512
    -8: ("eddsa", None, 0),              # EdDSA
}


class CheckFailed(Exception):
    """A step of parsing or verification failed; `reason` is the verdict's reason code.

    Internal to the checks: `evaluate()` turns it into a fail verdict, it never escapes.
    """

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CoseMessage:
    """A decoded (not yet verified) COSE_Sign1 with its CWT claims."""

    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    protected_raw: bytes
    payload: bytes
    signature: bytes
    claims: Mapping[Any, Any]

    @property
    def kid(self) -> bytes | None:
        """The key id: the protected header wins; the unprotected one only when the
        protected header has none (EU DCC rule, test cases CO18 to CO23)."""
        kid = self.protected.get(HDR_KID)
        if kid is None:
            kid = self.unprotected.get(HDR_KID)
        return kid if isinstance(kid, bytes) else None

    @property
    def alg(self) -> Any:
        """The algorithm, from the protected header only: an unprotected one is not
        covered by the signature, so whoever relays the code could change it."""
        return self.protected.get(HDR_ALG)


def _loads_exact(data: bytes, reason: Reason, what: str) -> Any:
    """cbor2.loads, but trailing bytes are an error (cbor2 ignores them)."""
    fp = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(fp).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError,
            LookupError, EOFError) as exc:
        raise CheckFailed(reason, f"{what}: {exc}") from None
    if fp.tell() != len(data):
        raise CheckFailed(reason, f"{what}: {len(data) - fp.tell()} bytes after the CBOR item")
    return value


def unseal(text: str, prefix: str, *, max_bytes: int = MAX_INFLATED_BYTES) -> CoseMessage:
    """Undo prefix, base45, zlib and COSE_Sign1 framing; decode the CWT claims.

    Raises CheckFailed(bad_prefix | bad_base45 | bad_compression | bad_cose | bad_cbor).
    """
    return parse_sign1(unpack(text, prefix, max_bytes=max_bytes))


def unpack(text: str, prefix: str, *, max_bytes: int = MAX_INFLATED_BYTES) -> bytes:
    """Undo prefix, base45 and zlib (inflating at most `max_bytes`): the COSE bytes.

    Raises CheckFailed(bad_prefix | bad_base45 | bad_compression).
    """
    if not text.startswith(prefix):
        raise CheckFailed(Reason.BAD_PREFIX, f"expected {prefix}")
    if len(text) > MAX_TEXT_CHARS:
        raise CheckFailed(Reason.BAD_BASE45, "too long for a QR code")
    body = text[len(prefix):]
    try:
        packed = base45.b45decode(body)
    except (ValueError, KeyError, IndexError, TypeError, UnicodeError, OverflowError) as exc:
        raise CheckFailed(Reason.BAD_BASE45, str(exc)) from None
    if not packed:
        raise CheckFailed(Reason.BAD_BASE45, "empty")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, max_bytes)
        if inflater.unconsumed_tail:
            raise CheckFailed(Reason.BAD_COMPRESSION, "inflates beyond the size limit")
        if not inflater.eof:
            raise CheckFailed(Reason.BAD_COMPRESSION, "truncated zlib stream")
    except zlib.error as exc:
        raise CheckFailed(Reason.BAD_COMPRESSION, str(exc)) from None
    return raw


def parse_sign1(raw: bytes) -> CoseMessage:
    """Decode a (tagged or untagged) COSE_Sign1 and its CWT claims map; nothing verified.

    Raises CheckFailed(bad_cose | bad_cbor).
    """
    obj = _loads_exact(raw, Reason.BAD_COSE, "COSE")
    # Some issuers wrap the COSE_Sign1 in a CWT tag as well (test case CO28): unwrap both.
    for _ in range(2):
        if isinstance(obj, cbor2.CBORTag) and obj.tag in (TAG_CWT, TAG_COSE_SIGN1):
            obj = obj.value
    if isinstance(obj, cbor2.CBORTag):
        raise CheckFailed(Reason.BAD_COSE, f"unexpected CBOR tag {obj.tag}")
    if not isinstance(obj, (list, tuple)) or len(obj) != 4:
        raise CheckFailed(Reason.BAD_COSE, "not a COSE_Sign1 array of four")
    protected_raw, unprotected, payload, signature = obj
    if not isinstance(protected_raw, bytes) or not isinstance(payload, bytes) \
            or not isinstance(signature, bytes) or not isinstance(unprotected, Mapping):
        raise CheckFailed(Reason.BAD_COSE, "COSE_Sign1 members have the wrong types")
    protected: Any = {}
    if protected_raw:
        protected = _loads_exact(protected_raw, Reason.BAD_COSE, "protected header")
        if not isinstance(protected, Mapping):
            raise CheckFailed(Reason.BAD_COSE, "protected header is not a map")
    claims = _loads_exact(payload, Reason.BAD_CBOR, "CWT payload")
    if isinstance(claims, cbor2.CBORTag) and claims.tag == TAG_CWT:
        claims = claims.value
    if not isinstance(claims, Mapping):
        raise CheckFailed(Reason.BAD_CBOR, "CWT payload is not a map")
    return CoseMessage(dict(protected), dict(unprotected), protected_raw, payload, signature, claims)


def sig_structure(protected_raw: bytes, payload: bytes) -> bytes:
    """RFC 8152 section 4.4: what a COSE_Sign1 signature covers (no external AAD)."""
    return cbor2.dumps(["Signature1", protected_raw, b"", payload])


def verify(msg: CoseMessage, public_key: Any) -> None:
    """Check the signature; raise CheckFailed(bad_signature | key_usage)."""
    alg = msg.alg
    if isinstance(alg, bool) or not isinstance(alg, int) or alg not in ALGORITHMS:
        raise CheckFailed(Reason.BAD_SIGNATURE, f"algorithm {alg!r} not allowed")
    family, hash_cls, size = ALGORITHMS[alg]
    data = sig_structure(msg.protected_raw, msg.payload)
    sig = msg.signature
    try:
        if family == "ecdsa":
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                raise CheckFailed(Reason.KEY_USAGE, "key is not an EC key")
            if len(sig) != 2 * size:
                raise CheckFailed(Reason.BAD_SIGNATURE, "ECDSA signature has the wrong length")
            der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
            public_key.verify(der, data, ec.ECDSA(hash_cls()))
        elif family in ("pss", "pkcs1"):
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise CheckFailed(Reason.KEY_USAGE, "key is not an RSA key")
            pad = (padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size)
                   if family == "pss" else padding.PKCS1v15())
            public_key.verify(sig, data, pad, hash_cls())
        else:
            if not isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
                raise CheckFailed(Reason.KEY_USAGE, "key is not an EdDSA key")
            public_key.verify(sig, data)
    except InvalidSignature:
        raise CheckFailed(Reason.BAD_SIGNATURE, "signature does not verify") from None
    except ValueError as exc:  # malformed signature for the key (e.g. RSA length)
        raise CheckFailed(Reason.BAD_SIGNATURE, str(exc)) from None


def sign1(claims: Mapping[Any, Any], private_key: Any, *, kid: bytes, alg: int | None = None,
          kid_unprotected: bool = False) -> bytes:
    """Make a tagged COSE_Sign1 over a CWT claims map (for issuing declarations,
    provisioning QRs, signed documents, demo material and tests). The algorithm follows
    the key type unless given: ES256/384/512 for EC keys, PS256 for RSA, EdDSA for
    Ed25519/Ed448 (deterministic: the same claims and key give the same bytes)."""
    if alg is None:
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            alg = {32: -7, 48: -35, 66: -36}[(private_key.curve.key_size + 7) // 8]
        elif isinstance(private_key, rsa.RSAPrivateKey):
            alg = -37
        else:
            alg = -8
    family, hash_cls, size = ALGORITHMS[alg]
    protected = {HDR_ALG: alg} if kid_unprotected else {HDR_ALG: alg, HDR_KID: kid}
    unprotected = {HDR_KID: kid} if kid_unprotected else {}
    protected_raw = cbor2.dumps(protected)
    payload = cbor2.dumps(dict(claims))
    data = sig_structure(protected_raw, payload)
    if family == "ecdsa":
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hash_cls())))
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    elif family == "pss":
        sig = private_key.sign(data, padding.PSS(mgf=padding.MGF1(hash_cls()),
                                                 salt_length=hash_cls.digest_size), hash_cls())
    elif family == "pkcs1":
        sig = private_key.sign(data, padding.PKCS1v15(), hash_cls())
    else:
        sig = private_key.sign(data)
    return cbor2.dumps(cbor2.CBORTag(TAG_COSE_SIGN1, [protected_raw, unprotected, payload, sig]))


def seal(prefix: str, cose: bytes) -> str:
    """prefix + base45(zlib(cose)): the text to put in a QR code."""
    return prefix + base45.b45encode(zlib.compress(cose, 9)).decode("ascii")
