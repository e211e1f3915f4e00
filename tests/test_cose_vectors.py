"""COSE_Sign1 against fixed vectors that need no external test data.

- The COSE WG's `sign1-tests/sign-pass-03` (the RFC 8152 C.2.1 message: ES256, P-256 key
  "11", protected header `{1: -7}`): its Sig_structure bytes and its signature verify.
- A deterministic Ed25519 vector through the whole `HD1:` container, pinned byte for
  byte, checked against a Sig_structure built here by hand from RFC 9052 section 4.4.
- A protected header changed after signing fails, whatever else stays the same.

A Sig_structure that leaves out (or empties) the protected header fails all three.
"""

from __future__ import annotations

import base64

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from kiosk.checks import cose
from kiosk.model import Reason

# --- COSE WG Examples, sign1-tests/sign-pass-03.json -----------------------------------

WG_KEY_X = "usWxHK2PmfnHKwXPS54m0kTcGJ90UiglWiGahtagnv8"
WG_KEY_Y = "IBOL-C3BttVivg-lSreASjpkttcsz-1rb7btKLv8EX4"
WG_TO_BE_SIGNED = bytes.fromhex("846A5369676E61747572653143A101264054546869732069732074686520636F6E74656E742E")
WG_MESSAGE = bytes.fromhex(
    "8443A10126A10442313154546869732069732074686520636F6E74656E742E5840"
    "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E1"
    "9F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794")


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def wg_public_key() -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicNumbers(_b64url_int(WG_KEY_X), _b64url_int(WG_KEY_Y), ec.SECP256R1()).public_key()


def wg_message(protected_raw: bytes | None = None) -> cose.CoseMessage:
    # The WG payload is plain text, not a CWT map, so the message is built from its
    # four members rather than through parse_sign1 (which also decodes the claims).
    raw_protected, unprotected, payload, signature = cbor2.loads(WG_MESSAGE)
    raw_protected = raw_protected if protected_raw is None else protected_raw
    protected = cbor2.loads(raw_protected) if raw_protected else {}
    return cose.CoseMessage(protected, unprotected, raw_protected, payload, signature, {})


def test_sig_structure_matches_the_cose_wg_intermediate() -> None:
    msg = wg_message()
    assert cose.sig_structure(msg.protected_raw, msg.payload) == WG_TO_BE_SIGNED


def test_cose_wg_es256_vector_verifies() -> None:
    msg = wg_message()
    assert msg.alg == -7 and msg.kid == b"11"
    cose.verify(msg, wg_public_key())


def test_cose_wg_vector_with_another_protected_header_fails() -> None:
    # Same alg, encoded differently (a 2-byte int for -7): same meaning, other bytes.
    msg = wg_message(protected_raw=bytes.fromhex("A10138" "06"))
    assert msg.alg == -7
    with pytest.raises(cose.CheckFailed) as err:
        cose.verify(msg, wg_public_key())
    assert err.value.reason is Reason.BAD_SIGNATURE


# --- a deterministic Ed25519 vector through the HD1 container --------------------------

ED_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ED_CLAIMS = {1: "VN-HD", 6: 1767225600, 4: 1767312000, -260: {"v": 1, "at": 1767225000}}
ED_KID = b"kioskkid"
ED_COSE = bytes.fromhex(
    "d2844da2012704486b696f736b6b6964a05823a40165564e2d4844061a6955b900041a69570a80390103"
    "a26176016261741a6955b6a8584078229995c3a7d3274fd0bfbf559924fd7bae6dd0c21202475e9911"
    "9038d5886312060fe5ddc98c48d314e12f682bfe5e21329287f0dfb1a48fb25ae652abb006")


def _bstr(data: bytes) -> bytes:
    assert len(data) < 256
    return (bytes([0x40 + len(data)]) if len(data) < 24 else bytes([0x58, len(data)])) + data


def test_ed25519_vector_is_reproduced_byte_for_byte() -> None:
    assert cose.sign1(ED_CLAIMS, ED_KEY, kid=ED_KID) == ED_COSE


def test_ed25519_vector_signs_the_rfc_sig_structure() -> None:
    msg = cose.parse_sign1(ED_COSE)
    assert msg.protected == {1: -8, 4: ED_KID}
    # ["Signature1", protected, external_aad = h'', payload], by hand.
    to_be_signed = b"\x84" + b"\x6aSignature1" + _bstr(msg.protected_raw) + b"\x40" + _bstr(msg.payload)
    assert cose.sig_structure(msg.protected_raw, msg.payload) == to_be_signed
    ED_KEY.public_key().verify(msg.signature, to_be_signed)


def test_ed25519_vector_verifies_through_the_hd1_container() -> None:
    msg = cose.unseal(cose.seal("HD1:", ED_COSE), "HD1:")
    assert msg.kid == ED_KID and msg.claims[1] == "VN-HD"
    cose.verify(msg, ED_KEY.public_key())


@pytest.mark.parametrize("protected", [
    {1: -8, 4: b"otherkid"},      # another kid: the signer's key lookup would change
    {1: -8},                      # kid moved out of the protected header
    {1: -8, 4: ED_KID, 3: 0},     # one more protected member
])
def test_ed25519_vector_with_a_tampered_protected_header_fails(protected) -> None:
    raw_protected, unprotected, payload, signature = cbor2.loads(ED_COSE).value
    tampered = cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps(protected), {4: ED_KID}, payload, signature]))
    msg = cose.unseal(cose.seal("HD1:", tampered), "HD1:")
    with pytest.raises(cose.CheckFailed) as err:
        cose.verify(msg, ED_KEY.public_key())
    assert err.value.reason is Reason.BAD_SIGNATURE


def test_a_freshly_signed_message_with_a_changed_protected_header_fails() -> None:
    # Signed and checked by the same code: holds even if signer and verifier agreed on
    # a Sig_structure without the protected header.
    key = ec.generate_private_key(ec.SECP256R1())
    raw_protected, unprotected, payload, signature = cbor2.loads(cose.sign1({1: "me"}, key, kid=b"12345678")).value
    assert cbor2.loads(raw_protected) == {1: -7, 4: b"12345678"}
    for protected in ({1: -7, 4: b"87654321"}, {1: -7}):
        msg = cose.parse_sign1(cbor2.dumps([cbor2.dumps(protected), {4: b"12345678"}, payload, signature]))
        with pytest.raises(cose.CheckFailed) as err:
            cose.verify(msg, key.public_key())
        assert err.value.reason is Reason.BAD_SIGNATURE
