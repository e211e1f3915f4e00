"""Signed health declarations (HD1): issued ones verify; tampered, expired, wrongly signed
and unknown-issuer ones fail with the right reason; venue rules judge the content."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import cbor2
import pytest

from kiosk.checks import evaluate
from kiosk.checks import hd1
from kiosk.checks.cose import CheckFailed, seal, sign1, unpack, unseal
from kiosk.checks.rules import builtin_rules
from kiosk.checks.trust import KIND_DSC, KIND_HD1, TrustStore, trust_entry

NOW = datetime(2021, 10, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def issuer():
    key, kid = hd1.generate_key()
    store = TrustStore.from_list(json.dumps([trust_entry(kid, KIND_HD1, hd1.public_der(key.public_key()))]))
    return key, kid, store


def declaration(key, kid, **kw):
    args = dict(issuer="Trung tâm Y tế Quận 1", name="Trần Thị Mai", dob="1990-04-30",
                id_number="079190000123", phone="0901234567", symptoms=(), contact=False,
                travel=(), status="green", now=NOW, valid_for=timedelta(hours=24))
    args.update(kw)
    return hd1.issue_declaration(key, kid, **args)


def outcome(text, store, *, now=NOW, rules=None, **kw):
    verdict, credential = evaluate(text, now=now, trust=store, rules=rules, **kw)
    return verdict.outcome.value, verdict.reason.value


def test_issued_declaration_verifies_and_keeps_the_vietnamese_name(issuer):
    key, kid, store = issuer
    verdict, credential = evaluate(declaration(key, kid), now=NOW + timedelta(hours=1), trust=store, rules=None)
    assert verdict.as_dict() == {"verdict": "pass", "reason": "ok", "scheme": "hd1", "name": "Trần T*** M"}
    assert credential.name == "Trần Thị Mai"
    assert credential.personal["phone"] == "*******567"
    assert "079190000123" not in json.dumps(dict(credential.personal), ensure_ascii=False)
    assert credential.subject_key == "hd1:" + hd1.hash_id("079190000123", hd1.idh_key(key))
    # Regression: idh was SHA-256 of the public issuer name and the ID (searchable).
    import hashlib
    assert credential.subject_key[4:] != hashlib.sha256("Trung tâm Y tế Quận 1|079190000123".encode()).hexdigest()


def test_eddsa_issuer_verifies():
    key, kid = hd1.generate_key("ed25519")
    store = TrustStore.from_list(json.dumps([trust_entry(kid, KIND_HD1, hd1.public_der(key.public_key()))]))
    assert outcome(declaration(key, kid), store) == ("pass", "ok")


def test_tampered_payload_fails_signature(issuer):
    key, kid, store = issuer
    msg = unseal(declaration(key, kid), hd1.PREFIX)
    claims = dict(msg.claims)
    claims[-261] = {**claims[-261], "st": "green", "sym": [], "nm": "Kẻ Mạo Danh"}
    forged_payload = cbor2.dumps(claims)
    forged = cbor2.dumps(cbor2.CBORTag(18, [msg.protected_raw, {}, forged_payload, msg.signature]))
    assert outcome(seal(hd1.PREFIX, forged), store) == ("fail", "bad_signature")


def test_flipped_character_never_passes(issuer):
    """A changed character fails, unless it lands in the padding bits of deflate's last
    byte: then the text inflates to the very COSE bytes that were signed (the same
    declaration, not a forgery), and it verifies as the original does. Which characters
    fall there depends on the random key, so every position is tried."""
    key, kid, store = issuer
    text = declaration(key, kid)
    signed = unpack(text, hd1.PREFIX)
    same = 0
    for i in range(4, len(text)):
        swapped = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]
        verdict, _ = evaluate(swapped, now=NOW, trust=store, rules=None)
        try:
            identical = unpack(swapped, hd1.PREFIX) == signed
        except CheckFailed:
            identical = False
        same += identical
        assert verdict.outcome.value == ("pass" if identical else "fail"), i
    assert same <= 2  # at most the last deflate byte's group


def test_expired_and_not_yet_valid(issuer):
    key, kid, store = issuer
    text = declaration(key, kid)
    assert outcome(text, store, now=NOW + timedelta(hours=25)) == ("fail", "expired")
    assert outcome(text, store, now=NOW - timedelta(hours=2)) == ("fail", "not_yet_valid")


def test_wrongly_signed_with_a_known_kid(issuer):
    _, kid, store = issuer
    other, _ = hd1.generate_key()
    assert outcome(declaration(other, kid), store) == ("fail", "bad_signature")


def test_unknown_issuer(issuer):
    _, _, store = issuer
    other, other_kid = hd1.generate_key()
    assert outcome(declaration(other, other_kid), store) == ("fail", "unknown_key")
    assert outcome(declaration(other, other_kid), None) == ("fail", "unknown_key")


def test_dsc_key_cannot_sign_declarations():
    from cryptography.hazmat.primitives.serialization import Encoding

    from kiosk.demo.material import make_dsc

    key, kid = hd1.generate_key()
    cert = make_dsc(key, now=NOW)
    store = TrustStore.from_list(json.dumps([trust_entry(kid, KIND_DSC, cert.public_bytes(Encoding.DER))]))
    assert outcome(declaration(key, kid), store) == ("fail", "key_usage")


def test_algorithm_outside_hd1_profile_is_refused(issuer):
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = hd1.kid_for(key.public_key())
    store = TrustStore.from_list(json.dumps([trust_entry(kid, KIND_HD1, hd1.public_der(key.public_key()))]))
    msg = unseal(declaration(*issuer[:2]), hd1.PREFIX)
    text = seal(hd1.PREFIX, sign1(dict(msg.claims), key, kid=kid))  # PS256
    assert outcome(text, store) == ("fail", "bad_signature")


def test_malformed_declaration_is_bad_schema(issuer):
    key, kid, store = issuer
    msg = unseal(declaration(key, kid), hd1.PREFIX)
    claims = dict(msg.claims)
    claims[-261] = {**claims[-261], "st": "purple"}
    assert outcome(seal(hd1.PREFIX, sign1(claims, key, kid=kid)), store) == ("fail", "bad_schema")
    claims[-261] = "not a map"
    assert outcome(seal(hd1.PREFIX, sign1(claims, key, kid=kid)), store) == ("fail", "bad_cbor")


@pytest.mark.parametrize("kw, later, venue, want", [
    ({}, timedelta(hours=1), "hospital", ("pass", "ok")),
    ({"valid_for": timedelta(days=3)}, timedelta(hours=30), "hospital", ("fail", "declaration_too_old")),
    ({"symptoms": ("sot", "ho")}, timedelta(0), "hospital", ("fail", "symptoms")),
    ({"contact": True}, timedelta(0), "school", ("fail", "exposure")),
    ({"status": "red"}, timedelta(0), "supermarket", ("fail", "status_red")),
    ({"status": "yellow"}, timedelta(0), "school", ("fail", "status_red")),
    ({"status": "yellow"}, timedelta(0), "hospital", ("pass", "ok")),
    ({"travel": ("HCM",)}, timedelta(0), "supermarket", ("pass", "ok")),
])
def test_venue_rules_on_declarations(issuer, kw, later, venue, want):
    key, kid, store = issuer
    assert outcome(declaration(key, kid, **kw), store, now=NOW + later, rules=builtin_rules(venue)) == want


def test_travel_rule_from_a_rules_file(issuer, tmp_path):
    from kiosk.checks.rules import load_rules_file

    key, kid, store = issuer
    path = tmp_path / "rules.toml"
    path.write_text('[hd1]\nreject_travel_from = ["HCM", "BD"]\n', encoding="utf-8")
    rules = load_rules_file(path)
    assert outcome(declaration(key, kid, travel=("HN", "BD")), store, rules=rules) == ("fail", "travel")
    assert outcome(declaration(key, kid, travel=("HN",)), store, rules=rules) == ("pass", "ok")


# The declaration's age runs from when the person declared (`at`), not from when the QR
# was signed (`iat`): here the issuer signed it 10 hours after the declaration.
SIGNED_LATER = timedelta(hours=10)
MARGIN = timedelta(minutes=1)


@pytest.mark.parametrize("venue", ["hospital", "school", "supermarket"])
@pytest.mark.parametrize("age, want", [
    (-MARGIN, ("pass", "ok")),                         # just under the venue's limit
    (MARGIN, ("fail", "declaration_too_old")),         # just over it
])
def test_declaration_age_limit_counts_from_the_declared_at_time(issuer, venue, age, want):
    key, kid, store = issuer
    rules = builtin_rules(venue)
    limit = timedelta(hours=rules.hd1.max_age_hours)
    declared = NOW
    text = declaration(key, kid, declared_at=declared, now=declared + SIGNED_LATER, valid_for=timedelta(days=30))
    msg = unseal(text, hd1.PREFIX)
    assert msg.claims[-261]["at"] == int(declared.timestamp())
    assert msg.claims[6] == int((declared + SIGNED_LATER).timestamp())   # iat differs from at
    assert outcome(text, store, now=declared + limit + age, rules=rules) == want
