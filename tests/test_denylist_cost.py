"""The deny list's cost is what keeps it from being inverted into ID numbers (issue 11:
more than 100 core-years per list), and what the kiosk pays on a new person's first scan
(issue 21: under 300 ms on a Pi 4). Lanes computed on the kiosk's cores at once give both;
a list cheaper per guess is refused by `collector publish` and by every kiosk."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from collector.publish import publish
from collector_helpers import PUBLISHER, PUBLISHER_KEY, RunningCollector, open_store, publish_raw
from kiosk.checks.denylist import (DEFAULT_LANES, DEFAULT_N, MIN_WORK, DenyParams, deny_hash, make_denylist,
                                   parse, subject_denied)
from kiosk.checks.trust import TrustStore
from kiosk.errors import TrustError
from kiosk.journal import Journal
from kiosk.sync import Fetcher

NOW = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
WHO = "cccd:079190000001"


def test_the_published_cost_meets_the_bar():
    params, _ = parse(make_denylist([WHO]), strict=True)
    assert (params.n, params.lanes) == (DEFAULT_N, DEFAULT_LANES)
    assert params.work >= MIN_WORK == 2 ** 16  # a guess costs what N=2^16 costs


def test_a_hash_is_the_lanes_as_the_document_says():
    """Anyone holding the document can check a subject: SHA-256 over scrypt of each lane,
    salt || lane number, whatever pool the kiosk computed them on."""
    body = make_denylist([WHO], n=2 ** 10, lanes=3)
    doc = json.loads(body)
    salt = bytes.fromhex(doc["salt"])
    lanes = [hashlib.scrypt(WHO.encode(), salt=salt + bytes([i]), n=2 ** 10, r=8, p=1, dklen=32) for i in range(3)]
    assert doc["entries"][0]["hash"] == hashlib.sha256(b"".join(lanes)).hexdigest()
    assert doc["entries"][0]["hash"] != deny_hash("cccd:079190000002", parse(body)[0])


@pytest.mark.parametrize("n, lanes", [(2 ** 14, 1), (2 ** 15, 1), (2 ** 13, 8), (2 ** 10, 4)])
def test_a_cheaper_list_is_refused_by_the_collector(tmp_path, n, lanes):
    store = open_store("sqlite", tmp_path)
    try:
        with pytest.raises(TrustError, match="too cheap"):
            publish(store, "denylist", make_denylist([WHO], n=n, lanes=lanes), key=PUBLISHER, now=NOW)
        assert store.document("denylist") is None
    finally:
        store.close()


def test_a_cheaper_list_signed_anyway_is_refused_by_the_kiosk(tmp_path):
    """A publisher key in the wrong hands, or a careless script: the kiosk keeps what it
    had and never holds a list a thief could search."""
    store = open_store("sqlite", tmp_path)
    with RunningCollector(store) as collector, Journal(tmp_path / "journal.db") as journal:
        with Fetcher(journal, url=collector.url, token=collector.token(), publisher_key=PUBLISHER_KEY) as f:
            publish_raw(store, "denylist", make_denylist([WHO]), now=NOW)
            assert f.fetch("denylist") == "updated"
            publish_raw(store, "denylist", make_denylist(["cccd:079190000002"], n=2 ** 14, lanes=1), now=NOW)
            result = f.fetch_all()["denylist"]
        assert "too cheap" in result, result
        trust = TrustStore(journal)
        assert subject_denied(trust, WHO) and not subject_denied(trust, "cccd:079190000002")
    store.close()


def test_a_list_in_the_first_keyed_form_is_still_read(tmp_path):
    """scrypt-v1 lists (one scrypt, N=2^16) published before the lanes keep working."""
    params = DenyParams(b"s" * 16, 2 ** 16, 8, 1, None)
    body = json.dumps({**params.as_json(), "entries": [{"hash": deny_hash(WHO, params)}]}).encode()
    assert parse(body, strict=True)[0] == params
    store = open_store("sqlite", tmp_path)
    with RunningCollector(store) as collector, Journal(tmp_path / "journal.db") as journal:
        publish(store, "denylist", body, key=PUBLISHER, now=NOW)
        with Fetcher(journal, url=collector.url, token=collector.token(), publisher_key=PUBLISHER_KEY) as f:
            assert f.fetch("denylist") == "updated"
        trust = TrustStore(journal)
        assert subject_denied(trust, WHO) and not subject_denied(trust, "cccd:079190000002")
    store.close()


_params = st.fixed_dictionaries({
    "scheme": st.sampled_from(["scrypt-lanes-v1", "scrypt-v1", "scrypt-v2", ""]),
    "salt": st.one_of(st.text(max_size=40), st.binary(max_size=20).map(bytes.hex)),
    "n": st.one_of(st.integers(-2, 2 ** 20), st.text(max_size=3), st.none()),
    "r": st.one_of(st.integers(-1, 40), st.none()),
    "p": st.integers(-1, 6), "lanes": st.one_of(st.integers(-1, 12), st.floats(), st.none())})


@settings(max_examples=300, deadline=None)
@given(doc=_params, strict=st.booleans())
def test_any_parameters_parse_or_are_refused_with_a_reason(doc, strict):
    body = json.dumps({**doc, "entries": []}).encode()
    try:
        params, items = parse(body, strict=strict)
    except TrustError as exc:
        assert str(exc)
        return
    assert items == [] and params is not None
    assert 1 <= params.n <= 2 ** 18 and len(params.salt) >= 8
    if strict:
        assert params.work >= MIN_WORK
