"""Contact tracing across kiosks: a case's identifier finds every visit, at every kiosk
of the collector, and who was there at the time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import requests

from collector_helpers import ADMIN_TOKEN, RunningCollector, open_store
from kiosk.app import Pipeline
from kiosk.config import load_config
from kiosk.journal import TRACING_KEY_STATE, Journal
from kiosk.seal import generate_keypair, sealer_for
from kiosk.sync.fetcher import Fetcher
from kiosk.sync.uploader import Uploader

CASE_ID = "079201001234"
CASE = f"{CASE_ID}|025123456|Nguyễn Thị Hoa|15081990|Nữ|12 Lê Lợi, Quận 1, TP. Hồ Chí Minh|01022022"
NEIGHBOUR = "001099004321||Trần Văn Minh|02021985|Nam|5 Hàng Bài, Hoàn Kiếm, Hà Nội|10102021"
STRANGER = "036088007777||Lê Thị Lan|09091999|Nữ|Đà Nẵng|05052022"
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)  # 09:00 in Vietnam


def kiosk_day(tmp_path, collector, device, venue, scans, seal_key=""):
    """One kiosk: fetch from the collector, scan `(minutes after T0, code)`, upload."""
    path = tmp_path / f"{device}.db"
    cfg = load_config(None, search=False, overrides={
        "journal.path": str(path), "device.id": device, "venue.code": venue,
        "sync.collector_url": collector.url, "journal.seal_key": seal_key})
    token = collector.token(device)
    with Journal(path, sealer=sealer_for(seal_key) if seal_key else None) as journal:
        with Fetcher(journal, url=collector.url, token=token) as fetcher:
            assert fetcher.fetch_all()["tracing_key"] == "updated"
        clock = [T0]
        pipe = Pipeline(cfg, journal, clock=lambda: clock[0])
        for minutes, code in scans:
            clock[0] = T0 + timedelta(minutes=minutes)
            assert pipe.handle(code, source="serial", engine="serial").entry.logged
        with Uploader.from_config(cfg, journal, token=token) as uploader:
            assert uploader.drain().left == 0
        return journal.get_state(TRACING_KEY_STATE)


def test_a_case_is_traced_across_kiosks_by_identifier(tmp_path):
    with RunningCollector(open_store("sqlite", tmp_path)) as collector:
        key_a = kiosk_day(tmp_path, collector, "kiosk-market", "CHO-BEN-THANH",
                          [(0, CASE), (10, NEIGHBOUR), (300, STRANGER)])
        key_b = kiosk_day(tmp_path, collector, "kiosk-bus", "BX-MIEN-DONG",
                          [(120, CASE), (500, NEIGHBOUR)])
        assert key_a == key_b  # one key for the whole collector
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


def test_the_tracing_key_is_for_enrolled_devices_only(tmp_path):
    with RunningCollector(open_store("sqlite", tmp_path)) as collector:
        assert requests.get(f"{collector.url}/v1/tracing-key", timeout=10).status_code == 401
        token = collector.token("kiosk-1")
        first = requests.get(f"{collector.url}/v1/tracing-key", timeout=10,
                             headers={"Authorization": f"Bearer {token}"}).json()["key"]
        again = requests.get(f"{collector.url}/v1/tracing-key", timeout=10,
                             headers={"Authorization": f"Bearer {token}"}).json()["key"]
    assert first == again and len(bytes.fromhex(first)) == 32


def test_before_the_key_arrives_a_device_salt_is_used(journal_path):
    """No identifier is ever stored plain, key or no key."""
    from kiosk.model import Credential, Outcome, Reason, Scan, Verdict
    from kiosk.seal import subject_hash

    v = Verdict(Outcome.REVIEW, Reason.IDENTITY_ONLY, "cccd")
    cred = Credential("cccd", subject_key=f"cccd:{CASE_ID}")
    with Journal(journal_path, repeat_window_s=0) as j:
        before = j.record(Scan("a"), v, cred, venue="V", device="D").subject_hash
        j.set_state(TRACING_KEY_STATE, "11" * 32)
        after = j.record(Scan("b"), v, cred, venue="V", device="D").subject_hash
    assert CASE_ID not in before and CASE_ID not in after
    assert after == subject_hash("11" * 32, f"cccd:{CASE_ID}") != before
