"""The collector's store, the same tests on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from collector_helpers import ENGINES, PUBLISHER, open_store
from kiosk.checks.signed import sign_document
from collector.storage import EnrolError, local_day

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)


@pytest.fixture(params=ENGINES)
def store(request, tmp_path):
    s = open_store(request.param, tmp_path)
    yield s
    s.close()


def _entry(at: datetime, *, venue="V1", outcome="pass", reason="ok", device="kiosk-1", subject=None):
    return {"id": str(uuid.uuid4()), "scanned_at": at, "device_id": device, "venue_code": venue,
            "outcome": outcome, "reason": reason, "scheme": "dcc", "subject_hash": subject,
            "name_masked": "Nguyễn V*** A", "personal": '{"name": "Nguyễn Văn An"}', "sealed": False,
            "override_of": None}


def test_a_resent_batch_adds_nothing_and_is_counted_as_duplicates(store):
    rows = [_entry(NOW + timedelta(seconds=i)) for i in range(25)]
    first = store.insert_batch(rows, batch_id="b1", now=NOW)
    again = store.insert_batch(rows, batch_id="b1", now=NOW)
    assert (first.accepted, first.duplicates) == (25, 0)
    assert (again.accepted, again.duplicates) == (0, 25)
    assert store.count_entries() == 25
    assert sorted(store.entry_ids()) == sorted(r["id"] for r in rows)


def test_a_batch_overlapping_an_earlier_one_adds_only_the_new_entries(store):
    rows = [_entry(NOW + timedelta(seconds=i)) for i in range(10)]
    store.insert_batch(rows[:6], batch_id="b1", now=NOW)
    res = store.insert_batch(rows[3:], batch_id="b2", now=NOW)
    assert (res.accepted, res.duplicates) == (4, 3)
    assert store.count_entries() == 10


def test_the_same_entry_twice_in_one_batch_is_stored_once(store):
    row = _entry(NOW)
    res = store.insert_batch([row, dict(row)], batch_id="b1", now=NOW)
    assert (res.accepted, res.duplicates) == (1, 1)
    assert store.count_entries() == 1


def test_two_concurrent_uploads_of_the_same_batch_store_it_once(store):
    rows = [_entry(NOW + timedelta(seconds=i)) for i in range(200)]
    results = []

    def upload():
        results.append(store.insert_batch(rows, batch_id="b1", now=NOW))

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_entries() == 200
    assert sum(r.accepted for r in results) == 200
    assert sum(r.duplicates for r in results) == 200


def test_an_enrolment_code_works_once(store):
    code = store.create_enrol_code("kiosk-9", now=NOW)
    token = store.enrol("kiosk-9", code, now=NOW)
    assert store.device_for_token(token) == "kiosk-9"
    with pytest.raises(EnrolError) as err:
        store.enrol("kiosk-9", code, now=NOW)
    assert err.value.status == 409
    assert store.device_for_token("not-a-token") is None


def test_an_enrolment_code_is_bound_to_its_device_and_expires(store):
    code = store.create_enrol_code("kiosk-9", now=NOW, ttl=timedelta(hours=1))
    with pytest.raises(EnrolError) as other:
        store.enrol("kiosk-7", code, now=NOW)
    assert other.value.status == 403
    with pytest.raises(EnrolError) as late:
        store.enrol("kiosk-9", code, now=NOW + timedelta(hours=2))
    assert late.value.status == 401
    with pytest.raises(EnrolError) as unknown:
        store.enrol("kiosk-9", "NOPE", now=NOW)
    assert unknown.value.status == 401


def test_re_enrolling_a_device_replaces_its_token(store):
    old = store.enrol("kiosk-9", store.create_enrol_code("kiosk-9", now=NOW), now=NOW)
    new = store.enrol("kiosk-9", store.create_enrol_code("kiosk-9", now=NOW), now=NOW)
    assert store.device_for_token(new) == "kiosk-9"
    assert store.device_for_token(old) is None


def test_a_published_document_gets_a_new_etag_only_when_it_changes(store):
    signed = [sign_document("rules", body, PUBLISHER, version=v, now=NOW)
              for body, v in ((b'{"v": 1}', 1), (b'{"v": 2}', 2))]
    a = store.publish("rules", signed[0], content_type="application/cose", now=NOW)
    same = store.publish("rules", signed[0], content_type="application/cose", now=NOW)
    b = store.publish("rules", signed[1], content_type="application/cose", now=NOW)
    assert a.etag == same.etag != b.etag
    assert store.document("rules").body == signed[1]
    assert store.document("trust") is None


def test_only_signed_documents_are_stored(store):
    with pytest.raises(ValueError, match="only signed documents"):
        store.publish("rules", b'{"v": 1}', content_type="application/json", now=NOW)
    with pytest.raises(ValueError, match="holds 'trust'"):
        store.publish("rules", sign_document("trust", b"[]", PUBLISHER, version=1, now=NOW),
                      content_type="application/cose", now=NOW)
    assert store.document("rules") is None


def test_the_report_day_is_vietnam_local_time(store):
    # 16:59:59Z is 23:59:59 in Hanoi on the 1st; 17:00Z is midnight of the 2nd.
    late = _entry(datetime(2026, 3, 1, 16, 59, 59, tzinfo=timezone.utc))
    next_day = _entry(datetime(2026, 3, 1, 17, 0, 0, tzinfo=timezone.utc))
    store.insert_batch([late, next_day], batch_id="b", now=NOW)
    first = store.day_counts(date(2026, 3, 1))
    second = store.day_counts(date(2026, 3, 2))
    assert [(r["hour_local"], r["n"]) for r in first] == [(23, 1)]
    assert [(r["hour_local"], r["n"]) for r in second] == [(0, 1)]
    assert local_day(datetime(2026, 3, 1, 16, 59, 59, tzinfo=timezone.utc)) == ("2026-03-01", 23)


def test_visits_are_found_by_venue_and_time_window(store):
    at = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
    inside = _entry(at + timedelta(minutes=10), venue="V1")
    outside = _entry(at + timedelta(hours=2), venue="V1")
    elsewhere = _entry(at, venue="V2")
    store.insert_batch([inside, outside, elsewhere], batch_id="b", now=NOW)
    found = store.visits(venue="V1", start=at - timedelta(minutes=30), end=at + timedelta(minutes=30))
    assert [r["id"] for r in found] == [inside["id"]]
    assert found[0]["scanned_at"] == at + timedelta(minutes=10)
