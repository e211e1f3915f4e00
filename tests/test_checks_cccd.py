"""Chip ID card (CCCD) QR codes and opaque app codes."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone

import pytest

from kiosk.checks import evaluate, recognise
from kiosk.checks.rules import builtin_rules

NOW = datetime(2021, 10, 1, 8, 0, tzinfo=timezone.utc)
CARD = "079190000123|025123456|Nguyễn Thị Hoa|15041990|Nữ|12 Lê Lợi, Quận 1, TP. Hồ Chí Minh|01072021"


def run(text, rules=None):
    verdict, credential = evaluate(text, now=NOW, trust=None, rules=rules)
    return verdict, credential


def test_card_gives_identity_with_name_intact():
    verdict, credential = run(CARD)
    assert (verdict.outcome.value, verdict.reason.value, verdict.scheme) == ("review", "identity_only", "cccd")
    assert verdict.name == "Nguyễn T*** H"
    assert credential.name == "Nguyễn Thị Hoa"
    assert credential.personal["address"] == "12 Lê Lợi, Quận 1, TP. Hồ Chí Minh"
    assert credential.personal["dob"] == "1990-04-15" and credential.personal["sex"] == "Nữ"
    assert credential.subject_key == "cccd:079190000123"


def test_rules_say_whether_identity_admits():
    assert run(CARD, builtin_rules("hotel"))[0].outcome.value == "pass"
    assert run(CARD, builtin_rules("supermarket"))[0].reason.value == "identity_only"


@pytest.mark.parametrize("text", [
    CARD.replace("|025123456|", "||"),                       # no old ID
    CARD + "|",                                              # empty eighth field
    CARD + "|extra",                                         # eighth field
    unicodedata.normalize("NFD", CARD),                      # decomposed Unicode from a scanner
    CARD.replace("Nữ", "Nam"),
    CARD + "\r\n",                                           # a serial scanner's line ending
])
def test_accepted_variants(text):
    verdict, credential = run(text)
    assert verdict.reason.value == "identity_only", text
    assert credential.name in ("Nguyễn Thị Hoa",)


@pytest.mark.parametrize("text", [
    CARD.replace("15041990", "31022000"),                   # 31 February
    CARD.replace("15041990", "15132000"),                   # month 13
    CARD.replace("01072021", "01072031"),                   # issued in the future
    CARD.replace("15041990", "15042022"),                   # born in the future
    CARD.replace("079190000123", "07919000012"),            # 11 digits
    CARD.replace("025123456", "02512345X"),
    CARD.replace("Nữ", "F"),
    CARD.replace("Nguyễn Thị Hoa", ""),
    CARD + "|a|b",                                          # nine fields
])
def test_impossible_cards_are_bad_schema(text):
    verdict, credential = run(text)
    assert (verdict.outcome.value, verdict.reason.value) == ("fail", "bad_schema"), text
    assert credential is None


def test_recognise():
    assert recognise(CARD) == "cccd"
    assert recognise("HC1:abc") == "dcc" and recognise("HD1:abc") == "hd1"
    assert recognise("KP1:abc") == "provision"
    assert recognise("HC2:NCFOXN") == "dcc"   # another context: fails as bad_prefix
    assert recognise("https://tokhaiyte.vn/abc") == "opaque"


def test_opaque_codes_go_to_the_guard():
    verdict, credential = run("PCCOVID:v1:7f3a9c2e51d04b8e9a6f0c1d2e3f4a5b", builtin_rules("supermarket"))
    assert (verdict.outcome.value, verdict.reason.value, verdict.scheme) == ("review", "unknown_scheme", "opaque")
    assert credential.subject_key.startswith("opaque:")
    assert run("ab")[0].outcome.value == "fail"


def test_provisioning_code_is_never_acted_on():
    verdict, credential = run("KP1:whatever", builtin_rules("hotel"))
    assert (verdict.outcome.value, verdict.reason.value, verdict.scheme) == ("fail", "unknown_scheme", "provision")
