"""The fetcher against the real collector: signed trust list, rules and deny list with
ETags, swapped in whole, a bad document never replacing a good one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from collector_helpers import PUBLISHER_KEY, publish_raw, sqlite_collector  # noqa: F401 (the collector fixture)
from kiosk.checks.denylist import MIN_N, make_denylist, subject_denied
from kiosk.checks.trust import TrustStore, trust_entry
from kiosk.journal import Journal
from kiosk.sync import Fetcher
from kiosk.sync.state import ETAGS_KEY, FETCH_KEY, RULES_KEY

#: The collector re-signs by its own (real) clock: the kiosk's test clock starts there too.
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
NAMES = ("trust", "rules", "denylist", "revocations")


def _some(results):
    return {name: results[name] for name in NAMES}




@pytest.fixture
def journal(journal_path):
    with Journal(journal_path) as j:
        yield j


def _trust_list(n: int) -> bytes:
    entries = []
    for i in range(n):
        der = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        entries.append(trust_entry(bytes([i]) * 8, "HD1", der))
    return json.dumps(entries).encode()


def _publish(collector, name, body, ctype="application/json", now=T0):
    publish_raw(collector.store, name, body, content_type=ctype, now=now)


def _fetcher(collector, journal, **kwargs):
    return Fetcher(journal, url=collector.url, token=collector.token(), publisher_key=PUBLISHER_KEY, **kwargs)


def test_nothing_published_leaves_the_kiosk_as_it_is(collector, journal):
    with _fetcher(collector, journal) as f:
        assert _some(f.fetch_all()) == dict.fromkeys(NAMES, "absent")
    assert journal.get_json(FETCH_KEY)["results"]["trust"] == "absent"


def test_documents_are_fetched_once_then_304_until_they_change(collector, journal):
    clock = [T0]
    _publish(collector, "trust", _trust_list(2))
    _publish(collector, "rules", b'venue_type = "hospital"\n[dcc]\nmin_days_after_dose = 21\n', "application/toml")
    _publish(collector, "denylist", make_denylist([("cccd:079190000001", "fake certificate")], n=MIN_N))
    with _fetcher(collector, journal, clock=lambda: clock[0]) as f:
        assert _some(f.fetch_all()) == {"trust": "updated", "rules": "updated", "denylist": "updated",
                                        "revocations": "absent"}
        trust = TrustStore(journal)
        assert trust.keys_for(b"\x01" * 8) and subject_denied(trust, "cccd:079190000001")
        assert "min_days_after_dose = 21" in journal.get_state(RULES_KEY)
        assert set(journal.get_json(ETAGS_KEY)) == {"trust", "rules", "denylist"}

        clock[0] = T0 + timedelta(days=2)
        assert _some(f.fetch_all()) == {"trust": "unchanged", "rules": "unchanged",
                                        "denylist": "unchanged", "revocations": "absent"}
        # A 304 does not make the list look fresh: its age counts from when it was signed.
        assert TrustStore(journal).age(clock[0]) == timedelta(days=2)

        _publish(collector, "denylist", make_denylist(["cccd:079190000002"], n=MIN_N))
        assert f.fetch("denylist") == "updated"
    trust = TrustStore(journal)
    # Swapped whole (a new list, a new salt):
    assert subject_denied(trust, "cccd:079190000002") and not subject_denied(trust, "cccd:079190000001")


def test_a_bad_document_is_refused_and_the_good_one_stays(collector, journal):
    _publish(collector, "denylist", make_denylist(["cccd:079190000001"], n=MIN_N))
    _publish(collector, "trust", _trust_list(1))
    with _fetcher(collector, journal) as f:
        f.fetch_all()
        etags = journal.get_json(ETAGS_KEY)
        _publish(collector, "denylist", b'["not a hash"]')
        _publish(collector, "trust", b'{"certificates": 7}')
        _publish(collector, "rules", b"this is = = not toml", "application/toml")
        results = f.fetch_all()
    assert results["denylist"].startswith("error:") and "not a hex hash" in results["denylist"]
    assert results["trust"].startswith("error:") and results["rules"].startswith("error:")
    assert subject_denied(TrustStore(journal), "cccd:079190000001")
    assert TrustStore(journal).keys_for(b"\x00" * 8)
    assert journal.get_state(RULES_KEY) is None
    assert journal.get_json(ETAGS_KEY) == etags  # so the next round fetches again


def test_rules_the_kiosk_could_not_run_with_are_refused(collector, journal):
    _publish(collector, "rules", b'[dcc]\nmin_doses = 2\n', "application/toml")  # TOML, but no such key
    with _fetcher(collector, journal) as f:
        result = f.fetch_all()["rules"]
    assert result.startswith("error:") and "dcc.min_doses" in result
    assert journal.get_state(RULES_KEY) is None


def test_an_unreachable_collector_is_reported_not_raised(journal):
    with Fetcher(journal, url="http://127.0.0.1:9", token="t", timeout_s=2) as f:
        results = f.fetch_all()
    assert all(r.startswith("error: cannot fetch") for r in results.values())
