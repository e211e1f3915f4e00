"""Issue 23 item 7: a trust list, revocation list or deny list past its valid-until
stays in use with only a banner for `trust.grace_hours`; after that, a pass that relies
on it goes to the guard (review, data_expired), through the real sync and the real
pipeline. Failures stay failures, and schemes that do not read the document pass on."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from collector_helpers import PUBLISHER_KEY, RunningCollector, open_store, publish_raw
from kiosk import pipeline as pipeline_module
from kiosk.checks.trust import TrustStore
from kiosk.config import load_config
from kiosk.demo.material import demo_material
from kiosk.journal import Journal
from kiosk.pipeline import Pipeline
from kiosk.sync import Fetcher

#: The demo codes are valid around this time (kiosk.demo.material).
NOW = datetime.now(timezone.utc).replace(microsecond=0)
EMPTY_REVOCATIONS = json.dumps({"hash_bytes": 16, "chunks": []}).encode()


@pytest.fixture
def synced(tmp_path, monkeypatch):
    """A kiosk journal that fetched a trust list (valid 6 h) and a revocation index
    (valid 2 days) from a real collector; the demo material's codes."""
    monkeypatch.setattr(pipeline_module, "DEBOUNCE_S", 0.0)
    material = demo_material(NOW)
    store = open_store("sqlite", tmp_path)
    journal = Journal(tmp_path / "j.db", repeat_window_s=0)
    with RunningCollector(store, publisher=None) as collector:
        publish_raw(store, "trust", material.trust_list_json, now=NOW, valid_for=timedelta(hours=6))
        publish_raw(store, "revocations", EMPTY_REVOCATIONS, now=NOW, valid_for=timedelta(days=2))
        with Fetcher(journal, url=collector.url, token=collector.token(), publisher_key=PUBLISHER_KEY,
                     clock=lambda: NOW) as f:
            assert f.fetch("trust") == "updated" and f.fetch("revocations") == "updated"
    codes = dict(material.payloads)
    yield journal, codes, tmp_path, store
    journal.close()
    store.close()


def _judge(journal, tmp_path, text, at, **overrides):
    # A grace period of 1 h here (24 h by default) keeps the demo's day-long declarations valid.
    cfg = load_config(None, search=False, overrides={"journal.path": str(tmp_path / "j.db"),
                                                     "venue.type": "transport", "trust.grace_hours": 1.0,
                                                     **overrides})
    event = Pipeline(cfg, journal, clock=lambda: at).handle(text, source="serial", engine="serial")
    return event.verdict.outcome.value, event.verdict.reason.value, event.verdict.detail


def test_a_lapsed_trust_list_sends_signed_passes_to_the_guard_after_the_grace_period(synced):
    journal, codes, tmp, _ = synced
    dcc, hd1 = codes["dcc-vaccinated"], codes["hd1-green"]
    # Fresh, and within the grace period after the list's valid-until (banner only).
    assert _judge(journal, tmp, dcc, NOW + timedelta(hours=1))[:2] == ("pass", "ok")
    inside = NOW + timedelta(hours=6.5)
    assert TrustStore(journal).stale(inside, timedelta(hours=72))  # the banner says so
    assert _judge(journal, tmp, dcc, inside)[:2] == ("pass", "ok")
    # Past valid-until + the grace period: what the kiosk checks against may be out of date.
    after = NOW + timedelta(hours=7.5)
    assert _judge(journal, tmp, dcc, after) == ("review", "data_expired", "expired: trust")
    assert _judge(journal, tmp, hd1, after) == ("review", "data_expired", "expired: trust")
    # A failure stays a failure, whatever the age of the list.
    assert _judge(journal, tmp, codes["hd1-red"], after)[:2] == ("fail", "status_red")
    assert _judge(journal, tmp, codes["garbage"], after)[:2] == ("fail", "bad_base45")
    # The grace period is the venue's to set.
    assert _judge(journal, tmp, dcc, after, **{"trust.grace_hours": 2.0})[:2] == ("pass", "ok")


def test_a_lapsed_revocation_list_holds_back_dcc_only(synced):
    journal, _, tmp, store = synced
    # Two days on, a new trust list (valid a week) arrives; the revocation index is not renewed.
    later = NOW + timedelta(days=2)
    material = demo_material(later)
    codes = dict(material.payloads)
    with RunningCollector(store, publisher=None) as collector:
        publish_raw(store, "trust", material.trust_list_json, now=later)
        with Fetcher(journal, url=collector.url, token=collector.token(), publisher_key=PUBLISHER_KEY,
                     clock=lambda: later) as f:
            assert f.fetch("trust") == "updated"
    at = NOW + timedelta(days=2, hours=1.5)
    assert _judge(journal, tmp, codes["dcc-vaccinated"], at) == ("review", "data_expired", "expired: revocations")
    assert _judge(journal, tmp, codes["hd1-green"], at)[:2] == ("pass", "ok")


def test_kiosk_check_judges_the_configured_journal_the_same_way(synced):
    from kiosk.cli.check import check_payloads
    from kiosk.checks.freshness import Freshness

    journal, codes, _, _ = synced
    at = NOW + timedelta(hours=7.5)
    lapsed = Freshness(journal, grace=timedelta(hours=1)).lapsed(at)
    [result] = check_payloads([codes["dcc-vaccinated"]], now=at, trust=TrustStore(journal), rules=None,
                              lapsed=lapsed)
    assert (result["verdict"], result["reason"]) == ("review", "data_expired")


def test_a_hand_imported_list_lapses_by_its_age(tmp_path, monkeypatch):
    """`kiosk trust import` has no signed valid-until: trust.max_age_hours + grace (2 + 1 h here)."""
    monkeypatch.setattr(pipeline_module, "DEBOUNCE_S", 0.0)
    material = demo_material(NOW)
    with Journal(tmp_path / "j.db", repeat_window_s=0) as journal:
        TrustStore(journal).import_list(material.trust_list_json, now=NOW)
        code = dict(material.payloads)["hd1-green"]
        short = {"trust.max_age_hours": 2.0}
        assert _judge(journal, tmp_path, code, NOW + timedelta(hours=2.5), **short)[:2] == ("pass", "ok")
        assert _judge(journal, tmp_path, code, NOW + timedelta(hours=3.5), **short)[:2] == ("review", "data_expired")
