"""Contact tracing across kiosks: a case's identifier finds every visit, at every kiosk
of the collector, and who was there at the time. The collector derives the person key
from the (sealed) identifier at ingest; no kiosk ever holds the tracing key."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import requests

from collector_helpers import ADMIN_TOKEN, RunningCollector, open_store
from kiosk.pipeline import Pipeline
from kiosk.config import load_config
from kiosk.journal import Journal
from kiosk.seal import generate_keypair, sealer_for
from kiosk.sync.fetcher import Fetcher
from kiosk.sync.uploader import Uploader

CASE_ID = "079201001234"
CASE = f"{CASE_ID}|025123456|Nguyễn Thị Hoa|15081990|Nữ|12 Lê Lợi, Quận 1, TP. Hồ Chí Minh|01022022"
NEIGHBOUR = "001099004321||Trần Văn Minh|02021985|Nam|5 Hàng Bài, Hoàn Kiếm, Hà Nội|10102021"
STRANGER = "036088007777||Lê Thị Lan|09091999|Nữ|Đà Nẵng|05052022"
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)  # 09:00 in Vietnam


def kiosk_day(tmp_path, collector, device, venue, scans, seal_key=""):
    """One kiosk: scan `(minutes after T0, code)` before it ever synced, then fetch
    from the collector and upload."""
    path = tmp_path / f"{device}.db"
    cfg = load_config(None, search=False, overrides={
        "journal.path": str(path), "device.id": device, "venue.code": venue,
        "sync.collector_url": collector.url, "journal.seal_key": seal_key})
    token = collector.token(device, venue=venue, since=T0 - timedelta(days=1))
    with Journal(path, sealer=sealer_for(seal_key) if seal_key else None) as journal:
        clock = [T0]
        pipe = Pipeline(cfg, journal, clock=lambda: clock[0])
        for minutes, code in scans:
            clock[0] = T0 + timedelta(minutes=minutes)
            assert pipe.handle(code, source="serial", engine="serial").entry.logged
        with Fetcher(journal, url=collector.url, token=token) as fetcher:
            assert "tracing_key" not in fetcher.fetch_all()
        with Uploader.from_config(cfg, journal, token=token) as uploader:
            assert uploader.drain().left == 0
        return dict(journal.db.conn.execute("SELECT key, value FROM state").fetchall())


def test_a_case_is_traced_across_kiosks_by_identifier(tmp_path):
    with RunningCollector(open_store("sqlite", tmp_path)) as collector:
        state_a = kiosk_day(tmp_path, collector, "kiosk-market", "CHO-BEN-THANH",
                            [(0, CASE), (10, NEIGHBOUR), (300, STRANGER)])
        state_b = kiosk_day(tmp_path, collector, "kiosk-bus", "BX-MIEN-DONG",
                            [(120, CASE), (500, NEIGHBOUR)])
        key = collector.store.tracing_key()
        # The collector's tracing key is nowhere on either kiosk.
        assert not any(key in value for value in [*state_a.values(), *state_b.values()])
        answer = requests.get(f"{collector.url}/v1/trace", timeout=10,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                              params={"subject": f"cccd:{CASE_ID}", "window_minutes": 30})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    visits = sorted(w["venue"] for w in body["windows"])
    assert visits == ["BX-MIEN-DONG", "CHO-BEN-THANH"]
    people = {(p["venue_code"], p["name_masked"], p["is_case"]) for p in body["people"]}
    assert people == {("CHO-BEN-THANH", "Nguyễn T*** H", True), ("CHO-BEN-THANH", "Trần V*** M", False),
                      ("BX-MIEN-DONG", "Nguyễn T*** H", True)}


def test_sealed_personal_fields_open_only_at_the_collector(tmp_path):
    """The kiosk's SD card holds no name or ID; the collector's tracing answer does."""
    private, public = generate_keypair()
    with RunningCollector(open_store("sqlite", tmp_path), seal_private_key=private) as collector:
        kiosk_day(tmp_path, collector, "kiosk-market", "CHO-BEN-THANH", [(0, CASE), (5, NEIGHBOUR)],
                  seal_key=public)
        answer = requests.get(f"{collector.url}/v1/trace", timeout=10,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                              params={"subject": f"cccd:{CASE_ID}", "window_minutes": 30}).json()
    on_card = b"".join(p.read_bytes() for p in tmp_path.glob("kiosk-market.db*"))
    assert "Nguyễn Thị Hoa".encode() not in on_card and CASE_ID.encode() not in on_card
    people = {p["name_masked"]: p for p in answer["people"]}
    case = people["Nguyễn T*** H"]
    assert case["sealed"] and case["opened"] and case["is_case"]
    assert json.loads(case["personal"])["id"] == CASE_ID
    assert json.loads(people["Trần V*** M"]["personal"])["name"] == "Trần Văn Minh"


def test_without_the_seal_key_the_collector_keeps_fields_sealed(tmp_path):
    _, public = generate_keypair()
    with RunningCollector(open_store("sqlite", tmp_path)) as collector:
        kiosk_day(tmp_path, collector, "kiosk-market", "CHO-BEN-THANH", [(0, CASE)], seal_key=public)
        answer = requests.get(f"{collector.url}/v1/trace", timeout=10,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                              params={"venue": "CHO-BEN-THANH", "at": T0.isoformat()}).json()
    (person,) = answer["people"]
    assert person["sealed"] and not person["opened"] and CASE_ID not in person["personal"]


def test_trace_refuses_both_subject_and_hash(tmp_path):
    with RunningCollector(open_store("sqlite", tmp_path)) as collector:
        answer = requests.get(f"{collector.url}/v1/trace", timeout=10,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                              params={"subject": "cccd:1", "subject_hash": "ab" * 32})
    assert answer.status_code == 400 and "not both" in answer.text


def test_no_device_can_fetch_the_tracing_key(tmp_path):
    """Regression: GET /v1/tracing-key handed every enrolled device the province key."""
    with RunningCollector(open_store("sqlite", tmp_path)) as collector:
        token = collector.token("kiosk-1")
        answer = requests.get(f"{collector.url}/v1/tracing-key", timeout=10,
                              headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code in (404, 405)
        assert collector.store.tracing_key() not in answer.text


def test_a_device_claimed_subject_hash_is_ignored(tmp_path):
    """A device cannot make a bystander a case's contact by uploading the case's key."""
    import gzip

    with RunningCollector(open_store("sqlite", tmp_path)) as collector:
        token = collector.token("kiosk-1", venue="V1", since=T0 - timedelta(days=1))
        from kiosk.seal import subject_hash

        planted = subject_hash(collector.store.tracing_key(), f"cccd:{CASE_ID}")
        entry = {"id": "6f1c2d3e-0000-4000-8000-000000000001", "scanned_at": T0.isoformat(),
                 "device_id": "kiosk-1", "venue_code": "V1", "outcome": "pass", "reason": "ok",
                 "scheme": "cccd", "subject_hash": planted, "sealed": False}
        body = gzip.compress(json.dumps({"device_id": "kiosk-1", "batch_id": "b1",
                                         "entries": [entry]}).encode())
        r = requests.post(f"{collector.url}/v1/batches", data=body, timeout=10, headers={
            "Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
            "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        answer = requests.get(f"{collector.url}/v1/trace", timeout=10,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                              params={"subject": f"cccd:{CASE_ID}", "at": T0.isoformat()}).json()
    assert answer["count"] == 0 and answer["windows"] == []


def test_the_repeat_hash_on_the_card_is_keyed_in_memory(journal_path):
    """No identifier is ever stored plain, and the hash that finds a repeat scan cannot be
    recomputed from the card: the next process (a reboot) keys it differently."""
    from kiosk.model import Credential, Outcome, Reason, Scan, Verdict

    v = Verdict(Outcome.REVIEW, Reason.IDENTITY_ONLY, "cccd")
    cred = Credential("cccd", subject_key=f"cccd:{CASE_ID}")
    with Journal(journal_path, repeat_window_s=0) as j:
        first = j.record(Scan("a"), v, cred, venue="V", device="D").subject_hash
        assert j.record(Scan("b"), v, cred, venue="V", device="D").subject_hash == first
    with Journal(journal_path, repeat_window_s=0) as j:
        after_reboot = j.subject_hash(f"cccd:{CASE_ID}")
    assert CASE_ID.encode() not in first and after_reboot != first


def test_an_unverified_entry_names_no_one_even_if_a_device_says_so(tmp_path):
    """A stolen kiosk uploads a failed (unknown_key) passport with the claimed person's
    identifier in its personal fields: the collector keeps no identity for it."""
    import gzip

    with RunningCollector(open_store("sqlite", tmp_path)) as collector:
        token = collector.token("kiosk-1", venue="V1", since=T0 - timedelta(days=1))
        entry = {"id": "6f1c2d3e-0000-4000-8000-000000000002", "scanned_at": T0.isoformat(),
                 "device_id": "kiosk-1", "venue_code": "V1", "outcome": "fail", "reason": "unknown_key",
                 "scheme": "dcc", "name_masked": "Nguyễn T*** H", "sealed": False,
                 "personal": json.dumps({"subject": f"cccd:{CASE_ID}", "name": "Nguyễn Thị Hoa"})}
        body = gzip.compress(json.dumps({"device_id": "kiosk-1", "batch_id": "b2", "entries": [entry]}).encode())
        r = requests.post(f"{collector.url}/v1/batches", data=body, timeout=10, headers={
            "Authorization": f"Bearer {token}", "Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        by_case = requests.get(f"{collector.url}/v1/trace", headers=admin, timeout=10, params={
            "subject": f"cccd:{CASE_ID}", "at": T0.isoformat()}).json()
        at_venue = requests.get(f"{collector.url}/v1/trace", headers=admin, timeout=10, params={
            "venue": "V1", "at": T0.isoformat()}).json()
    assert by_case["count"] == 0
    (person,) = at_venue["people"]
    assert (person["subject_hash"], person["personal"], person["name_masked"]) == (None, None, None)

