"""EU DCC checks on certificates made here: algorithms, kid placement, key usage, signer
validity, revocation, and the venue rules on doses, tests and recoveries."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from kiosk.checks import dcc, evaluate
from kiosk.checks.cose import seal, sign1
from kiosk.demo.material import make_dcc, make_dsc
from kiosk.checks.rules import builtin_rules
from kiosk.checks.trust import KIND_DSC, TrustStore, trust_entry

NOW = datetime(2021, 10, 1, 8, 0, tzinfo=timezone.utc)
NAME = ("Nguyễn", "Bảo Duy")


def signer(key=None, usages=("1", "2", "3"), *, now=NOW):
    key = key or ec.generate_private_key(ec.SECP256R1())
    cert = make_dsc(key, now=now, usages=usages)
    der = cert.public_bytes(Encoding.DER)
    kid = b"K" + der[-7:]
    return key, kid, TrustStore.from_list(json.dumps([trust_entry(kid, KIND_DSC, der)]))


def vac(days_ago=30, dn=2, sd=2, uvci="URN:UVCI:01:VN:ABC#1"):
    return {"tg": "840539006", "vp": "J07BX03", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
            "dn": dn, "sd": sd, "dt": (NOW - timedelta(days=days_ago)).date().isoformat(),
            "co": "VN", "is": "Bộ Y tế", "ci": uvci}


def test(hours_ago=10, result=dcc.TEST_NOT_DETECTED):
    return {"tg": "840539006", "tt": "LP6464-4", "tr": result, "co": "VN", "is": "Bộ Y tế",
            "sc": (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ci": "URN:UVCI:01:VN:T#2"}


test.__test__ = False  # a helper, not a pytest test


def rec(days_ago=30):
    fr = (NOW - timedelta(days=days_ago)).date()
    return {"tg": "840539006", "fr": fr.isoformat(), "df": (fr + timedelta(days=11)).isoformat(),
            "du": (fr + timedelta(days=180)).isoformat(), "co": "VN", "is": "Bộ Y tế", "ci": "URN:UVCI:01:VN:R#3"}


def run(text, store, *, now=NOW, rules=None, **kw):
    verdict, credential = evaluate(text, now=now, trust=store, rules=rules, **kw)
    return verdict.outcome.value, verdict.reason.value


@pytest.mark.parametrize("make_key", [
    lambda: ec.generate_private_key(ec.SECP256R1()),   # ES256
    lambda: ec.generate_private_key(ec.SECP384R1()),   # ES384
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),  # PS256
])
def test_algorithms_verify(make_key):
    key, kid, store = signer(make_key())
    text = make_dcc(key, kid, now=NOW, name=NAME, dob="1990-01-01", kind="v", entry=vac())
    verdict, credential = evaluate(text, now=NOW, trust=store, rules=None)
    assert (verdict.outcome.value, verdict.reason.value) == ("pass", "ok")
    assert credential.name == "Nguyễn Bảo Duy" and verdict.name == "Nguyễn B*** D"
    assert credential.subject_key == "dcc:URN:UVCI:01:VN:ABC#1"


def test_kid_only_in_unprotected_header():
    key, kid, store = signer()
    claims = {1: "VN", 6: int(NOW.timestamp()) - 60, 4: int(NOW.timestamp()) + 3600,
              -260: {1: {"ver": "1.3.0", "dob": "1990", "nam": {"fnt": "NGUYEN"}, "v": [vac()]}}}
    text = seal("HC1:", sign1(claims, key, kid=kid, kid_unprotected=True))
    assert run(text, store) == ("pass", "ok")


def test_rs256_and_other_signature_algorithms_are_refused():
    key, kid, store = signer()
    claims = {1: "VN", 4: int(NOW.timestamp()) + 3600, -260: {1: {"ver": "1.3.0", "dob": "1990",
                                                                    "nam": {"fnt": "X"}, "v": [vac()]}}}
    cose = cbor2.loads(sign1(claims, key, kid=kid))
    protected = cbor2.dumps({1: -999, 4: kid})
    text = seal("HC1:", cbor2.dumps(cbor2.CBORTag(18, [protected, {}, cose.value[2], cose.value[3]])))
    assert run(text, store) == ("fail", "bad_signature")


@pytest.mark.parametrize("usages, kind, entry, want", [
    (("2",), "v", vac(), ("pass", "ok")),
    (("1",), "v", vac(), ("fail", "key_usage")),
    (("2",), "t", test(), ("fail", "key_usage")),
    (("3",), "r", rec(), ("pass", "ok")),
    ((), "t", test(), ("pass", "ok")),  # no OID: may sign every type
])
def test_key_usage_restricts_types(usages, kind, entry, want):
    key, kid, store = signer(usages=usages)
    text = make_dcc(key, kid, now=NOW, name=NAME, dob="1990-01-01", kind=kind, entry=entry)
    assert run(text, store) == want


def test_signer_certificate_validity_and_cwt_expiry():
    key, kid, store = signer(now=NOW)
    text = make_dcc(key, kid, now=NOW, name=NAME, dob="1990-01-01", kind="v", entry=vac(),
                    valid_for=timedelta(days=10))
    assert run(text, store, now=NOW + timedelta(days=11)) == ("fail", "expired")
    assert run(text, store, now=NOW - timedelta(days=40)) == ("fail", "not_yet_valid")  # before the DSC
    assert run(text, store, now=NOW + timedelta(days=800)) == ("fail", "expired")  # after the DSC


def test_clock_unsynced_sends_every_code_to_review():
    key, kid, store = signer()
    text = make_dcc(key, kid, now=NOW, name=NAME, dob="1990-01-01", kind="v", entry=vac())
    assert run(text, store, clock_synced=False) == ("review", "clock_unsynced")
    assert run(text, store, now=NOW + timedelta(days=400), clock_synced=False) == ("review", "clock_unsynced")
    assert run("HC1:xyz", store, clock_synced=False) == ("review", "clock_unsynced")
    verdict, credential = evaluate(text, now=NOW, trust=store, rules=None, clock_synced=False)
    assert verdict.name == "Nguyễn B*** D" and credential.name == "Nguyễn Bảo Duy"


def test_revoked_and_denied():
    import hashlib

    from kiosk.checks.trust import subject_hash

    key, kid, store = signer()
    text = make_dcc(key, kid, now=NOW, name=NAME, dob="1990-01-01", kind="v", entry=vac())
    store.import_revocations([hashlib.sha256(b"URN:UVCI:01:VN:ABC#1").hexdigest()[:32]])
    assert run(text, store) == ("fail", "revoked")
    store.import_revocations([])
    store.import_denylist([subject_hash("dcc:URN:UVCI:01:VN:ABC#1")])
    assert run(text, store) == ("fail", "denied")
    assert run(text, store, denied=lambda h: False) == ("pass", "ok")


@pytest.mark.parametrize("kind, entry, want", [
    ("v", vac(days_ago=30), ("pass", "ok")),
    ("v", vac(days_ago=10), ("fail", "vaccination_too_recent")),
    ("v", vac(days_ago=30, dn=1, sd=2), ("fail", "not_vaccinated")),
    ("v", vac(days_ago=30, dn=1, sd=1), ("pass", "ok")),
    ("t", test(hours_ago=10), ("pass", "ok")),
    ("t", test(hours_ago=80), ("fail", "test_too_old")),
    ("t", test(result=dcc.TEST_DETECTED), ("fail", "test_positive")),
    ("r", rec(days_ago=30), ("pass", "ok")),
    ("r", rec(days_ago=200), ("fail", "recovery_too_old")),
])
def test_vaccination_required_venue(kind, entry, want):
    key, kid, store = signer()
    text = make_dcc(key, kid, now=NOW - timedelta(days=1), name=NAME, dob="1990-01-01", kind=kind,
                    entry=entry, valid_for=timedelta(days=400))
    assert run(text, store, rules=builtin_rules("supermarket")) == want


def test_schema_failures():
    key, kid, store = signer()
    base = {"ver": "1.3.0", "dob": "1990-01-01", "nam": {"fn": "Nguyễn", "fnt": "NGUYEN"}}
    for hc in ({**base},                                      # no v/t/r
               {**base, "v": [vac()], "t": [test()]},         # two types
               {**base, "v": [{**vac(), "dt": "2021-02-30"}]},  # impossible date
               {**base, "v": [{**vac(), "dn": "2"}]},         # dose as text
               {**base, "nam": {}, "v": [vac()]},             # no name
               {**base, "ver": 1, "v": [vac()]}):
        claims = {1: "VN", 4: int(NOW.timestamp()) + 3600, -260: {1: hc}}
        assert run(seal("HC1:", sign1(claims, key, kid=kid)), store) == ("fail", "bad_schema"), hc


def test_serial_line_ending_is_not_part_of_the_code():
    key, kid, store = signer()
    text = make_dcc(key, kid, now=NOW, name=NAME, dob="1990-01-01", kind="v", entry=vac())
    assert run(text + "\r\n", store) == ("pass", "ok")


def _signed(hc, key, kid):
    claims = {1: "VN", 4: int(NOW.timestamp()) + 3600, -260: {1: hc}}
    return seal("HC1:", sign1(claims, key, kid=kid))


BASE = {"ver": "1.3.0", "dob": "1990-01-01", "nam": {"fn": "Nguyễn", "fnt": "NGUYEN", "gn": "Bảo Duy", "gnt": "BAO<DUY"}}


@pytest.mark.parametrize("tr, want", [
    (dcc.TEST_NOT_DETECTED, ("pass", "ok", None)),
    (dcc.TEST_DETECTED, ("fail", "test_positive", None)),
    ("", ("fail", "bad_schema", "t[0].tr")),
    ("inconclusive", ("fail", "bad_schema", "t[0].tr")),
    ("260385009", ("fail", "bad_schema", "t[0].tr")),   # SNOMED "negative", not the EU code
])
def test_only_not_detected_admits(tr, want):
    key, kid, store = signer()
    verdict, _ = evaluate(_signed({**BASE, "t": [test(result=tr)]}, key, kid), now=NOW, trust=store,
                          rules=builtin_rules("supermarket"))
    member = (verdict.failure or {}).get("member")
    assert (verdict.outcome.value, verdict.reason.value, member) == want


@pytest.mark.parametrize("kind, entry, member", [
    ("t", {**test(), "tt": "LP217198-3", "ma": "9999"}, "t[0].ma"),   # unknown rapid test device
    ("t", {**test(), "tg": "94558-4"}, "t[0].tg"),
    ("v", {**vac(), "mp": "EU/1/99/0000"}, "v[0].mp"),
    ("v", {**vac(), "vp": "729999"}, "v[0].vp"),
    ("v", {**vac(), "ma": "ORG-000"}, "v[0].ma"),
    ("r", {**rec(), "co": "XX"}, "r[0].co"),
])
def test_codes_outside_the_eu_value_sets_fail_with_the_member_named(kind, entry, member):
    key, kid, store = signer()
    verdict, _ = evaluate(_signed({**BASE, kind: [entry]}, key, kid), now=NOW, trust=store,
                          rules=builtin_rules("supermarket"))
    assert (verdict.outcome.value, verdict.reason.value) == ("fail", "bad_schema")
    assert verdict.failure["step"] == "valuesets" and verdict.failure["member"] == member


def test_a_known_rapid_test_device_and_an_empty_naa_device_admit():
    key, kid, store = signer()
    for entry in ({**test(), "tt": "LP217198-3", "ma": "1232"}, {**test(), "nm": "PCR", "ma": ""}):
        assert run(_signed({**BASE, "t": [entry]}, key, kid), store, rules=builtin_rules("supermarket")) == ("pass", "ok")


@pytest.mark.parametrize("change, member", [
    ({"dob": "1815-03-01"}, "dob"),
    ({"dob": "1990-01-01T00:00:00"}, "dob"),
    ({"nam": {"fn": "Nguyễn", "fnt": "NGUYEN", "gnt": "BAO😀DUY"}}, "nam.gnt"),
    ({"nam": {"fn": "Nguyễn", "fnt": "Nguyen"}}, "nam.fnt"),
    ({"nam": {"fn": "Nguyễn", "fnt": ""}}, "nam.fnt"),
    ({"nam": {"fn": "Nguyễn", "fnt": "N" * 81}}, "nam.fnt"),
    ({"nam": {"fn": "Nguyễn"}}, "nam.fnt"),
])
def test_names_and_birth_dates_follow_the_schema(change, member):
    key, kid, store = signer()
    verdict, _ = evaluate(_signed({**BASE, "v": [vac()], **change}, key, kid), now=NOW, trust=store)
    assert (verdict.reason.value, verdict.failure["step"], verdict.failure["member"]) == ("bad_schema", "schema", member)


@pytest.mark.parametrize("dob", ["1990", "1990-04", "", "2003-12-31"])
def test_partial_and_empty_birth_dates_of_schema_1_3_pass(dob):
    key, kid, store = signer()
    assert run(_signed({**BASE, "dob": dob, "v": [vac()]}, key, kid), store) == ("pass", "ok")


@pytest.mark.parametrize("tag", [0, 1])
def test_cbor_tagged_sample_times_are_date_times(tag):
    key, kid, store = signer()
    sc = NOW - timedelta(hours=5)
    entry = {**test(), "sc": cbor2.CBORTag(tag, sc.strftime("%Y-%m-%dT%H:%M:%SZ") if tag == 0 else int(sc.timestamp()))}
    claims = {1: "VN", 4: int(NOW.timestamp()) + 3600, -260: {1: {**BASE, "t": [entry]}}}
    raw = sign1(claims, key, kid=kid)
    verdict, credential = evaluate(seal("HC1:", raw), now=NOW, trust=store, rules=builtin_rules("supermarket"))
    assert (verdict.outcome.value, verdict.reason.value) == ("pass", "ok")
    assert dcc.parse_datetime(credential.claims["entry"]["sc"]) == sc.replace(microsecond=0)


def test_two_entries_of_one_type_fail():
    key, kid, store = signer()
    verdict, _ = evaluate(_signed({**BASE, "v": [vac(dn=1), vac(dn=2)]}, key, kid), now=NOW, trust=store)
    assert (verdict.reason.value, verdict.failure["member"]) == ("bad_schema", "v")


def test_a_new_vaccine_reaches_the_kiosk_through_the_collector(tmp_path, journal_path):
    """The collector publishes value sets (admin PUT, signed by its publishing key), the
    kiosk fetches them like the rules, and a certificate of a vaccine the shipped value
    sets do not know admits from then on; a bad document is refused at PUT."""
    import requests

    from collector_helpers import ADMIN_TOKEN, PUBLISHER_KEY, RunningCollector, open_store
    from kiosk.checks.dcc_schema import VALUESETS_PATH
    from kiosk.journal import Journal
    from kiosk.sync import Fetcher

    key = ec.generate_private_key(ec.SECP256R1())
    der = make_dsc(key, now=NOW, usages=("1", "2", "3")).public_bytes(Encoding.DER)
    kid = b"K" + der[-7:]
    new = {**vac(), "mp": "EU/1/23/9999", "ma": "ORG-100099999"}
    text = make_dcc(key, kid, now=NOW - timedelta(days=1), name=NAME, dob="1990-01-01", kind="v",
                    entry=new, valid_for=timedelta(days=400))
    doc = json.loads(VALUESETS_PATH.read_text(encoding="utf-8"))
    for name, code in (("vaccine-medicinal-product", new["mp"]), ("vaccine-mah-manf", new["ma"])):
        doc["valuesets"][name]["valueSetValues"][code] = {"display": "New", "active": True}
    store = open_store("sqlite", tmp_path)
    try:
        with RunningCollector(store) as collector, Journal(journal_path) as journal:
            trust = TrustStore(journal)
            trust.import_list(json.dumps([trust_entry(kid, KIND_DSC, der)]), now=NOW)
            before, _ = evaluate(text, now=NOW, trust=trust, rules=builtin_rules("supermarket"))
            assert (before.reason.value, before.failure["member"]) == ("bad_schema", "v[0].mp")
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
            bad = requests.put(f"{collector.url}/v1/valuesets", data=b'{"valuesets": {}}', headers=admin, timeout=10)
            assert bad.status_code == 400 and "valuesets" in bad.text
            ok = requests.put(f"{collector.url}/v1/valuesets", data=json.dumps(doc).encode(), headers=admin, timeout=10)
            assert ok.status_code == 204, ok.text
            with Fetcher(journal, url=collector.url, token=collector.token(), publisher_key=PUBLISHER_KEY) as f:
                assert f.fetch_all()["valuesets"] == "updated"
            after, _ = evaluate(text, now=NOW, trust=TrustStore(journal), rules=builtin_rules("supermarket"))
            assert (after.outcome.value, after.reason.value) == ("pass", "ok")
    finally:
        store.close()


def test_an_unknown_rapid_test_device_is_a_business_rule_not_the_structure():
    """The EU schema names a value set per coded member without listing it (the
    reference validator, jsonschema without value sets, passes such a payload); the EU
    business rules (TR-EU-0002) refuse the device. So `kiosk check --no-rules` verifies
    the certificate, and the venue's rules fail it naming the member."""
    key, kid, store = signer()
    text = _signed({**BASE, "t": [{**test(), "tt": "LP217198-3", "ma": "9999"}]}, key, kid)
    verdict, _ = evaluate(text, now=NOW, trust=store, rules=None)
    assert (verdict.outcome.value, verdict.reason.value) == ("pass", "ok")
    verdict, _ = evaluate(text, now=NOW, trust=store, rules=builtin_rules("supermarket"))
    assert (verdict.outcome.value, verdict.reason.value, verdict.failure) == ("fail", "bad_schema", {
        "step": "valuesets", "member": "t[0].ma", "message": "'9999' is not in the EU value set test-manf"})


@pytest.mark.parametrize("ver, dob, ok", [
    ("1.0.0", "1964", True), ("1.0.0", "1964-05", True), ("1.0.0", "", False),
    ("1.2.1", "1990-02-30", False), ("1.3.0", "1990-13", False), ("1.3.2", "2099-12-31", True),
])
def test_birth_dates_per_schema_release(ver, dob, ok):
    key, kid, store = signer()
    verdict, _ = evaluate(_signed({**BASE, "ver": ver, "dob": dob, "v": [vac()]}, key, kid), now=NOW, trust=store)
    assert (verdict.reason.value == "ok") is ok and (ok or verdict.failure["member"] == "dob"), verdict


@pytest.mark.parametrize("ver", ["1.0.0", "1.3.0"])
def test_a_vaccination_date_with_a_time_of_day_is_its_day(ver):
    """As PL issues them (#12 of its 1.0.0 and 1.3.0 cases, flagged schema-valid)."""
    key, kid, store = signer()
    entry = {**vac(days_ago=30), "dt": (NOW - timedelta(days=30)).strftime("%Y-%m-%dT08:10:00+02:00")}
    verdict, credential = evaluate(_signed({**BASE, "ver": ver, "v": [entry]}, key, kid), now=NOW, trust=store,
                                   rules=builtin_rules("supermarket"))
    assert (verdict.outcome.value, verdict.reason.value) == ("pass", "ok")


@pytest.mark.parametrize("tr, want", [
    (dcc.TEST_NOT_DETECTED, "ok"), (dcc.TEST_DETECTED, "test_positive"),
    ("260385009", "bad_schema"), ("", "bad_schema"), (None, "bad_schema"),
])
def test_the_venue_rules_admit_only_not_detected(tr, want):
    """decide() on its own (a value set published with a third result code must still
    not admit it): only 260415000 admits."""
    from kiosk.checks.rules import decide
    from kiosk.model import Credential

    entry = {**test(hours_ago=5), "tr": tr}
    credential = Credential(scheme="dcc", name="Nguyễn Bảo Duy", claims={"type": "t", "entry": entry})
    assert decide(credential, builtin_rules("supermarket"), now=NOW).reason.value == want


@pytest.mark.parametrize("sc, ok", [
    # ISO 8601 extended forms member states issue beside RFC 3339 (the schema's
    # `date-time` names ISO 8601; the reference validator asserts no format at all).
    ("{d}T08:30Z", True), ("{d}T08:30:00+02", True), ("{d}T08:30:00.123+0200", True),
    ("{d}T23:59:60Z", True),  # a leap second
    ("{d}", True),  # the day of collection alone: its midnight UTC
    # Not ISO 8601's extended format, or not a real time: still refused.
    ("{d} 08:30:00Z", False), ("{b}T083000Z", False), ("{d}T24:00:00Z", False),
    ("{d}T08:61:00Z", False), ("{d}T08:30:00+25:00", False), ("yesterday", False),
])
def test_sample_times_in_the_forms_certificates_carry(sc, ok):
    key, kid, store = signer()
    day = NOW - timedelta(days=1)
    entry = {**test(), "sc": sc.format(d=day.strftime("%Y-%m-%d"), b=day.strftime("%Y%m%d"))}
    verdict, credential = evaluate(_signed({**BASE, "t": [entry]}, key, kid), now=NOW, trust=store,
                                   rules=builtin_rules("supermarket"))
    if ok:
        assert (verdict.outcome.value, verdict.reason.value) == ("pass", "ok"), verdict
    else:
        assert (verdict.reason.value, verdict.failure["member"]) == ("bad_schema", "t[0].sc"), verdict
