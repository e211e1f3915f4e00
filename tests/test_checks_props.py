"""Property tests: every parser fed random and mutated input. No exception escapes; every
outcome is a verdict with a reason, and nothing broken ever passes."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta, timezone

import base45
import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.checks import evaluate
from kiosk.demo.material import demo_material
from kiosk.checks.rules import builtin_rules
from kiosk.checks.trust import TrustStore
from kiosk.model import Outcome, Reason, Verdict, mask_name

NOW = datetime(2021, 10, 1, 8, 0, tzinfo=timezone.utc)
MATERIAL = demo_material(NOW)
STORE = TrustStore.from_list(MATERIAL.trust_list_json, now=NOW)
RULES = builtin_rules("school")
PAYLOADS = dict(MATERIAL.payloads)
VALID = [PAYLOADS[k] for k in ("hd1-green", "dcc-vaccinated", "cccd")]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def judged(text: str, **kw) -> Verdict:
    verdict, credential = evaluate(text, now=NOW, trust=STORE, rules=RULES, **kw)
    assert isinstance(verdict, Verdict)
    assert isinstance(verdict.outcome, Outcome) and isinstance(verdict.reason, Reason)
    assert verdict.detail != "internal error", text
    assert (verdict.reason is Reason.OK) == (verdict.outcome is Outcome.PASS)
    if credential is not None and credential.name:
        assert verdict.name == mask_name(credential.name)
        assert verdict.name != credential.name or len(credential.name) == 1
    return verdict


@SETTINGS
@given(st.text(max_size=400))
def test_random_text(text):
    judged(text)


@SETTINGS
@given(st.sampled_from(["HC1:", "HD1:", "KP1:", "HC2:", ""]),
       st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", max_size=300))
def test_prefixed_base45_alphabet(prefix, body):
    assert judged(prefix + body).outcome is not Outcome.PASS


@SETTINGS
@given(st.sampled_from(["HC1:", "HD1:"]), st.binary(max_size=300))
def test_random_bytes_in_the_container(prefix, data):
    assert judged(prefix + base45.b45encode(zlib.compress(data)).decode()).outcome is Outcome.FAIL


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats(allow_nan=True) | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.integers(-300, 10) | st.text(max_size=4), children, max_size=5),
    max_leaves=25)


@SETTINGS
@given(st.sampled_from(["HC1:", "HD1:"]), cbor_values, cbor_values)
def test_random_cbor_in_cose_shape(prefix, protected, payload):
    try:
        cose = cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps(protected), {}, cbor2.dumps(payload), b"\x00" * 64]))
    except (ValueError, TypeError, OverflowError):
        return
    assert judged(prefix + base45.b45encode(zlib.compress(cose)).decode()).outcome is Outcome.FAIL


@SETTINGS
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_payloads(text, data):
    i = data.draw(st.integers(0, len(text) - 1))
    op = data.draw(st.sampled_from(["replace", "delete", "insert", "truncate"]))
    ch = data.draw(st.characters(codec="utf-8"))
    mutated = {"replace": text[:i] + ch + text[i + 1:], "delete": text[:i] + text[i + 1:],
               "insert": text[:i] + ch + text[i:], "truncate": text[:i]}[op]
    verdict = judged(mutated)
    if mutated != text and not mutated.startswith(("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")):
        assert verdict.outcome is not Outcome.PASS, (op, i, ch)


@SETTINGS
@given(st.lists(st.text(alphabet="0123456789aNmữ |", max_size=14), min_size=5, max_size=9))
def test_cccd_like_fields(fields):
    judged("|".join(fields))


@SETTINGS
@given(st.sampled_from(list(PAYLOADS.values())), st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)),
    st.booleans())
def test_any_time_and_clock_state(text, now, synced):
    verdict, _ = evaluate(text, now=now, trust=STORE, rules=RULES, clock_synced=synced,
                          history=lambda key: [now - timedelta(minutes=1)])
    assert isinstance(verdict.reason, Reason)
    # A verdict the checks reached, not the catch-all that hides a crash in one of them.
    assert verdict.detail != "internal error", (text[:20], now)
    assert (verdict.reason is Reason.OK) == (verdict.outcome is Outcome.PASS)
    if not synced:
        # Without a trustworthy clock every code goes to the guard.
        assert (verdict.outcome, verdict.reason) == (Outcome.REVIEW, Reason.CLOCK_UNSYNCED)


def test_non_string_input_is_a_verdict():
    verdict, credential = evaluate(b"HC1:abc", now=NOW, trust=None, rules=None)  # type: ignore[arg-type]
    assert verdict.outcome is Outcome.FAIL and credential is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["kid", "country", "certificateType", "rawData", "certificates", "x"]), children, max_size=5),
    max_leaves=20)


@SETTINGS
@given(json_values)
def test_trust_list_parser_only_raises_trust_error(value):
    import json

    from kiosk.checks.trust import TrustStore
    from kiosk.errors import TrustError

    try:
        TrustStore.from_list(json.dumps(value).encode(), now=NOW)
    except TrustError:
        pass  # the one error a bad list may give; it names the entry and field


@SETTINGS
@given(st.binary(max_size=200))
def test_trust_list_parser_on_bytes(data):
    from kiosk.checks.trust import TrustStore
    from kiosk.errors import TrustError

    try:
        TrustStore.from_list(data, now=NOW)
    except TrustError:
        pass


toml_scalars = st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=12) | st.lists(st.text(max_size=12), max_size=3)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["dcc", "hd1", "cccd", "opaque", "repeat", "venue_type", "pool"]),
                       st.dictionaries(st.sampled_from(["accept", "test_max_hours", "identity", "outcome",
                                                        "window_minutes", "accept_status", "min_days_after_dose",
                                                        "reject_travel_from", "bogus"]), toml_scalars, max_size=4)
                       | toml_scalars, max_size=4))
def test_rules_parser_only_raises_config_error(data):
    from kiosk.checks.rules import parse_rules
    from kiosk.errors import ConfigError

    try:
        rules = parse_rules(data, "rules.toml")
    except ConfigError as exc:
        assert "rules.toml" in str(exc)
        return
    for label, text in MATERIAL.payloads:  # whatever the file allows, decide() copes
        judged_with = evaluate(text, now=NOW, trust=STORE, rules=rules)[0]
        assert isinstance(judged_with.reason, Reason)
