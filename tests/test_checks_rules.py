"""Venue rules: one built-in file per venue type, clear errors for bad files, the pure
decide() with review where a guard must look, and repeat scans."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kiosk.checks import evaluate
from kiosk.demo.material import demo_material
from kiosk.checks.rules import RULES_DIR, builtin_rules, decide, load_rules, load_rules_file
from kiosk.checks.trust import TrustStore
from kiosk.config import VENUE_TYPES, load_config
from kiosk.errors import ConfigError
from kiosk.model import Credential

NOW = datetime(2021, 10, 1, 8, 0, tzinfo=timezone.utc)


def test_every_venue_type_has_builtin_rules():
    assert sorted(p.stem for p in RULES_DIR.glob("*.toml")) == sorted(VENUE_TYPES)
    for venue in VENUE_TYPES:
        rules = builtin_rules(venue)
        assert rules.venue_type == venue and rules.description
        assert rules.dcc.min_days_after_dose == 14 and rules.dcc.test_max_hours == 72
        assert rules.dcc.recovery_max_days == 180 and rules.hd1.max_age_hours == 24


def test_hospital_defaults():
    rules = builtin_rules("hospital")
    assert rules.hd1.reject_symptoms and rules.hd1.reject_contact
    assert "red" not in rules.hd1.accept_status


def test_load_rules_from_config(tmp_path):
    assert load_rules(load_config(None, search=False, overrides={"venue.type": "hospital"})).venue_type == "hospital"
    path = tmp_path / "r.toml"
    path.write_text('venue_type = "custom"\n[dcc]\ntest_max_hours = 24\n', encoding="utf-8")
    rules = load_rules(load_config(None, search=False, overrides={"rules.path": str(path)}))
    assert rules.dcc.test_max_hours == 24 and rules.dcc.min_days_after_dose == 14


@pytest.mark.parametrize("text, names", [
    ('[dcc]\ntest_max_hours = "soon"\n', ["dcc.test_max_hours", "a number from 1 to 720"]),
    ('[dcc]\ntest_max_hours = 100000\n', ["dcc.test_max_hours", "out of range"]),
    ('[dcc]\naccept = ["vaccine"]\n', ["dcc.accept", "'vaccination'"]),
    ('[cccd]\nidentity = "maybe"\n', ["cccd.identity", "'pass', 'review', 'fail'"]),
    ('[dcc]\nmin_days = 14\n', ["dcc.min_days", "min_days_after_dose"]),
    ('[pool]\nx = 1\n', ["pool", "[dcc]"]),
    ('dcc = 3\n', ["dcc", "table"]),
    ('[dcc\n', ["not valid TOML"]),
])
def test_bad_rules_file_names_file_key_and_allowed(tmp_path, text, names):
    path = tmp_path / "venue-rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_rules_file(path)
    message = str(err.value)
    assert str(path) in message
    for name in names:
        assert name in message, message


def test_missing_rules_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_rules_file(tmp_path / "nope.toml")


def test_decide_is_pure_and_masks_the_name():
    cred = Credential(scheme="cccd", name="Lê Thị Bích Ngọc", subject_key="cccd:1")
    first = decide(cred, builtin_rules("hotel"), now=NOW)
    assert first == decide(cred, builtin_rules("hotel"), now=NOW)
    assert first.as_dict() == {"verdict": "pass", "reason": "ok", "scheme": "cccd", "name": "Lê T*** B*** N"}


def test_repeat_scan_within_window():
    m = demo_material(NOW)
    store = TrustStore.from_list(m.trust_list_json, now=NOW)
    text = dict(m.payloads)["hd1-green"]
    transport = builtin_rules("transport")
    assert transport.history_window == timedelta(minutes=30)
    seen = {}
    history = lambda key: seen.get(key, [])  # noqa: E731
    verdict, credential = evaluate(text, now=NOW, trust=store, rules=transport, history=history)
    assert verdict.reason.value == "ok"
    seen[credential.subject_key] = [NOW]
    verdict, _ = evaluate(text, now=NOW + timedelta(minutes=10), trust=store, rules=transport, history=history)
    assert (verdict.outcome.value, verdict.reason.value) == ("fail", "repeat_scan")
    verdict, _ = evaluate(text, now=NOW + timedelta(minutes=31), trust=store, rules=transport, history=history)
    assert verdict.reason.value == "ok"
    # supermarkets do not use the repeat rule
    verdict, _ = evaluate(text, now=NOW + timedelta(minutes=10), trust=store,
                          rules=builtin_rules("supermarket"), history=history)
    assert verdict.reason.value == "ok"


def test_demo_payloads_under_supermarket_rules():
    m = demo_material(NOW, seed=3)
    store = TrustStore.from_list(m.trust_list_json, now=NOW)
    rules = builtin_rules("supermarket")
    for label, text in m.payloads:
        verdict, _ = evaluate(text, now=NOW, trust=store, rules=rules)
        assert (verdict.outcome.value, verdict.reason.value) == m.expected[label], label
        if verdict.name:
            assert "***" in verdict.name


def test_demo_names_are_vietnamese():
    m = demo_material(NOW)
    store = TrustStore.from_list(m.trust_list_json, now=NOW)
    names = [evaluate(t, now=NOW, trust=store, rules=None)[1] for _, t in m.payloads]
    full = [c.name for c in names if c is not None and c.name]
    assert "Nguyễn Thị Hoa" in full and "Nguyễn Văn An" in full
    assert all(any(ch in n for ch in "ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ")
               for n in full), full


def test_demo_material_is_deterministic_per_seed():
    assert demo_material(NOW, seed=1).trust_list_json == demo_material(NOW, seed=1).trust_list_json
    assert demo_material(NOW, seed=1).trust_list_json != demo_material(NOW, seed=2).trust_list_json


def test_a_province_document_holds_rules_per_venue_type():
    from kiosk.checks.rules import parse_rules_text
    from kiosk.errors import ConfigError

    text = '[hospital.hd1]\nmax_age_hours = 12\n[school.repeat]\nwindow_minutes = 15\n'
    assert parse_rules_text(text, "doc", "hospital").hd1.max_age_hours == 12
    assert parse_rules_text(text, "doc", "school").repeat.window_minutes == 15
    with pytest.raises(ConfigError, match="no rules for venue type 'hotel'"):
        parse_rules_text(text, "doc", "hotel")
    with pytest.raises(ConfigError, match="doc: neither valid TOML nor JSON"):
        parse_rules_text("= =", "doc", "hotel")
    json_doc = '{"cccd": {"identity": "pass"}}'
    assert parse_rules_text(json_doc, "doc", "hotel").cccd.identity == "pass"
