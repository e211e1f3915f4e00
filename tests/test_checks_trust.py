"""The trust store in the journal: import, atomic swap, age, revocations at scale,
deny list, and another process's import seen by a running kiosk."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from kiosk.checks import evaluate
from kiosk.demo.material import demo_material
from kiosk.checks.trust import KIND_HD1, TrustStore, subject_hash, trust_entry
from kiosk.errors import TrustError
from kiosk.journal import Journal

NOW = datetime(2021, 10, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def material():
    return demo_material(NOW)


def payload(material, label):
    return dict(material.payloads)[label]


def test_import_into_journal_and_verify(journal_path, material):
    with Journal(journal_path) as journal:
        store = TrustStore(journal)
        assert store.age(NOW) is None and store.stale(NOW, timedelta(hours=72))
        result = store.import_list(material.trust_list_json, now=NOW)
        assert result.keys == 2
        verdict, _ = evaluate(payload(material, "dcc-vaccinated"), now=NOW, trust=store, rules=None)
        assert verdict.reason.value == "ok"
        assert store.age(NOW + timedelta(hours=5)) == timedelta(hours=5)
        assert store.stale(NOW + timedelta(hours=73), timedelta(hours=72))
    with Journal(journal_path) as journal:  # survives a restart
        assert len(TrustStore(journal)) == 2


def test_gateway_wrapping_and_other_types_skipped(material):
    entries = json.loads(material.trust_list_json)
    wrapped = {"certificates": entries + [{**entries[0], "certificateType": "CSCA"}]}
    store = TrustStore.from_list(json.dumps(wrapped).encode())
    assert len(store) == 2


@pytest.mark.parametrize("bad", [
    b"not json", b'{"x": 1}', b'[1]',
    b'[{"kid": "!!", "certificateType": "DSC", "rawData": "AAAA"}]',
    b'[{"kid": "AAAAAAAAAAA=", "certificateType": "DSC", "rawData": "AAAA"}]',
])
def test_bad_list_is_refused_and_the_old_one_stays(journal_path, material, bad):
    with Journal(journal_path) as journal:
        store = TrustStore(journal)
        store.import_list(material.trust_list_json, now=NOW)
        with pytest.raises(TrustError):
            store.import_list(bad, now=NOW + timedelta(hours=1))
        assert len(store) == 2
        assert store.age(NOW + timedelta(hours=1)) == timedelta(hours=1)


def test_import_by_another_process_is_seen_without_restart(journal_path, material):
    with Journal(journal_path) as kiosk_side, Journal(journal_path) as sync_side:
        running = TrustStore(kiosk_side)
        text = payload(material, "hd1-green")
        assert evaluate(text, now=NOW, trust=running, rules=None)[0].reason.value == "unknown_key"
        TrustStore(sync_side).import_list(material.trust_list_json, now=NOW)
        assert evaluate(text, now=NOW, trust=running, rules=None)[0].reason.value == "ok"
        TrustStore(sync_side).import_list(b"[]", now=NOW)
        assert evaluate(text, now=NOW, trust=running, rules=None)[0].reason.value == "unknown_key"


def test_hd1_entry_may_be_a_bare_public_key():
    from kiosk.checks import hd1

    key, kid = hd1.generate_key()
    store = TrustStore.from_list(json.dumps([trust_entry(kid, KIND_HD1, hd1.public_der(key.public_key()))]))
    assert store.keys_for(kid)[0].kind == "HD1"


def test_revocations_at_200000(journal_path, material):
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(200_000)]
    uvci = "URN:UVCI:01:VN:DEMO0VAC1#K"
    hashes.append(hashlib.sha256(uvci.encode()).hexdigest())
    with Journal(journal_path) as journal:
        store = TrustStore(journal)
        store.import_list(material.trust_list_json, now=NOW)
        assert store.import_revocations(hashes, now=NOW) == 200_001
        assert journal.db.conn.execute("SELECT count(*) FROM revocations").fetchone()[0] == 200_001
        verdict, _ = evaluate(payload(material, "dcc-vaccinated"), now=NOW, trust=store, rules=None)
        assert verdict.reason.value == "revoked"
        verdict, _ = evaluate(payload(material, "dcc-test-too-old"), now=NOW, trust=store, rules=None)
        assert verdict.reason.value == "ok"
        assert store.is_revoked([hashes[123_456].upper()])
        assert not store.is_revoked(["00" * 32])


def test_denylist_in_journal(journal_path, material):
    with Journal(journal_path) as journal:
        store = TrustStore(journal)
        store.import_list(material.trust_list_json, now=NOW)
        card = payload(material, "cccd")
        store.import_denylist([subject_hash("cccd:079190000123")])
        assert store.is_denied(subject_hash("cccd:079190000123"))
        verdict, _ = evaluate(card, now=NOW, trust=store, rules=None)
        assert (verdict.outcome.value, verdict.reason.value) == ("fail", "denied")


def test_migrations_untouched(journal_path):
    with Journal(journal_path) as journal:
        assert journal.migrations()[:3] == ["001_entries", "002_state", "003_trust"]
