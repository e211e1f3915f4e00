"""Signed documents (kiosk.checks.signed): the envelope the collector publishes in and
the kiosk's rules for taking one in (pinned key, version only grows, valid-until),
freshness from the document's own times (never from a 304), the collector re-signing a
document before it ages out, and COSE strictness (alg only from the protected header, a
malformed extended key usage signs nothing)."""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta, timezone

import base45
import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID, ObjectIdentifier
from hypothesis import given, settings, strategies as st

from collector.publish import publish, refresh_due
from collector_helpers import PUBLISHER, PUBLISHER_KEY, RunningCollector, open_store, publish_raw
from kiosk.checks import evaluate
from kiosk.checks.cose import seal, sig_structure, sign1, unseal
from kiosk.checks.signed import (SignedDocError, generate_private_key, open_document, peek,
                                 sign_document)
from kiosk.checks.trust import KIND_DSC, TrustStore, parse_key, trust_entry
from kiosk.journal import Journal
from kiosk.sync import Fetcher

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
KEY = generate_private_key()


def _open(raw, *, key=KEY, name="trust", now=NOW, held=None):
    return open_document(raw, key.public_key(), name=name, now=now, held_version=held)


def test_a_signed_document_opens_with_its_version_and_times():
    raw = sign_document("trust", b"[]", KEY, version=4, now=NOW, valid_for=timedelta(days=2))
    doc = _open(raw, held=3)
    assert (doc.name, doc.version, doc.body) == ("trust", 4, b"[]")
    assert doc.issued_at == NOW and doc.valid_until == NOW + timedelta(days=2)
    assert _open(raw, held=4).version == 4   # the one held: nothing new, not an error


@pytest.mark.parametrize("case, reason", [
    ("unsigned", "unsigned"), ("other key", "other_key"), ("tampered", "bad_signature"),
    ("older", "older"), ("expired", "expired"), ("future", "not_yet_valid"),
    ("other document", "wrong_document"), ("no pinned key", "no_publisher_key"),
])
def test_what_a_kiosk_refuses(case, reason):
    raw = sign_document("trust", b"[]", KEY, version=4, now=NOW, valid_for=timedelta(days=2))
    kwargs = {}
    if case == "unsigned":
        raw = b'[{"kid": "AAAAAAAAAAA=", "certificateType": "DSC", "rawData": ""}]'
    elif case == "other key":
        raw = sign_document("trust", b"[]", generate_private_key(), version=99, now=NOW)
    elif case == "tampered":
        protected, unprotected, payload, signature = cbor2.loads(raw).value
        claims = dict(cbor2.loads(payload))
        claims["body"] = b'["rogue"]'
        raw = cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), cbor2.dumps(claims), signature]))
    elif case == "older":
        kwargs["held"] = 5
    elif case == "expired":
        kwargs["now"] = NOW + timedelta(days=2)
    elif case == "future":
        kwargs["now"] = NOW - timedelta(hours=1)
    elif case == "other document":
        kwargs["name"] = "denylist"
    with pytest.raises(SignedDocError) as err:
        if case == "no pinned key":
            open_document(raw, None, name="trust", now=NOW)
        else:
            _open(raw, **kwargs)
    assert err.value.reason == reason


def test_a_claimed_validity_beyond_the_cap_is_cut_when_read():
    raw = sign_document("trust", b"[]", KEY, version=1, now=NOW, valid_for=timedelta(days=3650))
    assert _open(raw).valid_until == NOW + timedelta(days=90)
    with pytest.raises(SignedDocError, match="expired"):
        _open(raw, now=NOW + timedelta(days=91))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_refused_with_a_reason_never_a_crash(data):
    with pytest.raises(SignedDocError) as err:
        _open(data)
    assert err.value.reason in {"unsigned", "bad_envelope", "other_key", "bad_signature"}


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["doc", "v", "iat", "exp", "ctype", "body", "x"]),
                       st.one_of(st.integers(-2**70, 2**70), st.text(max_size=5), st.binary(max_size=5),
                                 st.none(), st.booleans()), max_size=7))
def test_signed_payloads_of_any_shape_are_refused_or_opened(claims):
    from kiosk.checks.signed import key_id

    raw = sign1(claims, KEY, kid=key_id(KEY))
    try:
        doc = _open(raw)
    except SignedDocError as exc:
        assert exc.reason in {"bad_envelope", "wrong_document", "expired", "not_yet_valid"}
    else:
        assert doc.name == "trust" and isinstance(doc.body, bytes)


# --- freshness on the kiosk ---------------------------------------------------------------

def test_freshness_comes_from_the_document_not_from_a_304(tmp_path):
    """The trust list goes stale on the screen at its own valid-until even while the
    collector keeps answering 304, and the old list stays in use meanwhile."""
    der = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    store = open_store("sqlite", tmp_path)
    clock = [now]
    with RunningCollector(store, publisher=None) as collector, Journal(tmp_path / "j.db") as journal:
        publish_raw(store, "trust", json.dumps([trust_entry(b"\x01" * 8, "HD1", der)]).encode(), now=now,
                    valid_for=timedelta(hours=6))
        with Fetcher(journal, url=collector.url, token=collector.token(), publisher_key=PUBLISHER_KEY,
                     clock=lambda: clock[0]) as f:
            assert f.fetch("trust") == "updated"
            trust = TrustStore(journal)
            assert not trust.stale(clock[0], timedelta(hours=72))
            clock[0] = now + timedelta(hours=7)
            assert f.fetch("trust") == "unchanged"          # a 304 ...
            assert trust.stale(clock[0], timedelta(hours=72))  # ... does not make it fresh
            assert trust.keys_for(b"\x01" * 8)                 # and the old list stays in use
            assert trust.age(clock[0]) == timedelta(hours=7)
    store.close()


def test_the_collector_re_signs_a_document_before_it_ages_out(tmp_path):
    store = open_store("sqlite", tmp_path)
    first = publish(store, "denylist", b"[]", key=PUBLISHER, now=NOW)
    assert not refresh_due(store, "denylist", key=PUBLISHER, now=NOW + timedelta(days=3))
    assert refresh_due(store, "denylist", key=PUBLISHER, now=NOW + timedelta(days=4))
    again = peek(store.document("denylist").body)
    assert (again.version, again.body, again.issued_at) == (peek(first.body).version + 1, b"[]",
                                                           NOW + timedelta(days=4))
    store.close()


# --- COSE strictness --------------------------------------------------------------------

def _dsc(eku_value: bytes | None):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.COMMON_NAME, "DSC")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(7).not_valid_before(NOW - timedelta(days=30)).not_valid_after(NOW + timedelta(days=300)))
    if eku_value is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(ObjectIdentifier("2.5.29.37"), eku_value),
                                        critical=False)
    return key, builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def _vaccination(key, kid, **sign_kwargs) -> str:
    from kiosk.checks import dcc

    hcert = {"ver": "1.3.0", "dob": "1990-01-01", "nam": {"fn": "Lê", "gn": "An", "fnt": "LE", "gnt": "AN"},
             "v": [{"tg": "840539006", "vp": "J07BX03", "mp": "EU/1/20/1528", "ma": "ORG-100030215", "dn": 2,
                    "sd": 2, "dt": "2026-01-01", "co": "VN", "is": "Bộ Y tế", "ci": "URN:UVCI:01:VN:S#1"}]}
    claims = {dcc.CLAIM_ISS: "VN", dcc.CLAIM_IAT: int(NOW.timestamp()) - 3600,
              dcc.CLAIM_EXP: int(NOW.timestamp()) + 86400 * 300, dcc.CLAIM_HCERT: {1: hcert}}
    return seal("HC1:", sign1(claims, key, kid=kid, **sign_kwargs))


def _check(text, der, kid=b"S" * 8):
    trust = TrustStore.from_list(json.dumps([trust_entry(kid, KIND_DSC, der)]))
    verdict, _ = evaluate(text, now=NOW, trust=trust, rules=None)
    return verdict.outcome.value, verdict.reason.value


@pytest.mark.parametrize("eku, want", [
    (None, ("pass", "ok")),                       # no extension: every type
    (b"\x30\x00", ("pass", "ok")),                # an extension without OIDs (EU case CO15)
    (b"\x30\x03\x06\x01", ("fail", "key_usage")),   # cut inside an OID
    (b"\x04\x02ab", ("fail", "key_usage")),          # not a SEQUENCE at all
    (b"\x30\x05\x02\x03\x01\x00\x01", ("fail", "key_usage")),  # an INTEGER where OIDs belong
])
def test_a_dsc_with_a_malformed_extended_key_usage_signs_nothing(eku, want):
    key, der = _dsc(eku)
    assert _check(_vaccination(key, b"S" * 8), der) == want
    assert (parse_key(b"S" * 8, KIND_DSC, "VN", der).usages == frozenset()) == (want[0] == "fail")


def test_the_algorithm_is_taken_only_from_the_protected_header():
    key, der = _dsc(None)
    good = _vaccination(key, b"S" * 8)
    assert _check(good, der) == ("pass", "ok")
    # The same signature with the alg moved to the unprotected header (not signed over):
    tag = cbor2.loads(zlib.decompress(base45.b45decode(good[4:])))
    protected, unprotected, payload, signature = tag.value
    moved = cbor2.loads(protected)
    alg = moved.pop(1)
    forged_protected = cbor2.dumps(moved)
    r, s = decode_dss_signature(key.sign(sig_structure(forged_protected, payload), ec.ECDSA(hashes.SHA256())))
    text = seal("HC1:", cbor2.dumps(cbor2.CBORTag(18, [forged_protected, {1: alg}, payload,
                                                       r.to_bytes(32, "big") + s.to_bytes(32, "big")])))
    assert unseal(text, "HC1:").alg is None
    assert _check(text, der) == ("fail", "bad_signature")


def test_an_out_of_date_document_shows_as_stale_not_as_a_rogue_collector(tmp_path):
    from kiosk.sync.fetcher import fetch_faults

    now = datetime.now(timezone.utc)
    store = open_store("sqlite", tmp_path)
    # The department's own list, but the collector stopped re-signing it a week ago.
    with RunningCollector(store, publisher=None) as collector, Journal(tmp_path / "j.db") as journal:
        publish_raw(store, "denylist", b"[]", now=now - timedelta(days=8), valid_for=timedelta(days=7))
        with Fetcher(journal, url=collector.url, token=collector.token(), publisher_key=PUBLISHER_KEY) as f:
            assert f.fetch_all()["denylist"].startswith("refused: expired")
        assert fetch_faults(journal) == {"trust_stale"}
        publish_raw(store, "denylist", b"[]", now=now, key=generate_private_key())
        with Fetcher(journal, url=collector.url, token=collector.token(), publisher_key=PUBLISHER_KEY) as f:
            assert f.fetch_all()["denylist"].startswith("refused: other_key")
        assert fetch_faults(journal) == {"collector_untrusted"}
    store.close()
