"""The collector's HTTP API as a kiosk and as health department staff use it: auth,
bad input, size limits, ETags, OpenAPI, the daily report and the tracing query."""

from __future__ import annotations

import csv
import gzip
import io
import os
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from collector.app import create_app
from collector.config import CollectorConfig
from collector.storage import Store
from collector_helpers import PUBLISHER, publish_raw
from kiosk.checks.signed import generate_private_key, peek, sign_document

ADMIN = "admin-secret-of-at-least-32-characters"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def store():
    s = Store("sqlite://")
    yield s
    s.close()


def _client(store, *, now=NOW, **cfg) -> TestClient:
    config = CollectorConfig(db_url=store.url, admin_token=ADMIN, **cfg)
    return TestClient(create_app(store, config, clock=lambda: now, publisher=PUBLISHER))


@pytest.fixture
def client(store):
    return _client(store)


#: Test devices are enrolled this long before NOW (entries before enrolment are refused).
ENROLLED = NOW - timedelta(days=30)


def _token(client, device="kiosk-1", venue="V1") -> str:
    store = client.app.state.store
    return store.enrol(device, store.create_enrol_code(device, now=ENROLLED, venue=venue), now=ENROLLED)


def _entry(at=NOW, *, device="kiosk-1", venue="V1", outcome="pass", reason="ok", subject=None, **kw):
    """An upload; `subject` is the person's identifier, in the (unsealed) personal fields."""
    e = {"id": str(uuid.uuid4()), "scanned_at": at.isoformat().replace("+00:00", "Z"),
         "device_id": device, "venue_code": venue, "outcome": outcome, "reason": reason,
         "scheme": "dcc", "subject_hash": None, "name_masked": "Nguyễn V*** A",
         "personal": json.dumps({"subject": subject}) if subject else None, "sealed": False,
         "override_of": None}
    e.update(kw)
    return e


def _post(client, token, entries, *, device="kiosk-1", batch_id="b1", raw=None):
    body = raw if raw is not None else gzip.compress(json.dumps(
        {"device_id": device, "batch_id": batch_id, "entries": entries}).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/v1/batches", content=body, headers=headers)


def test_a_batch_is_acknowledged_and_a_resent_batch_adds_nothing(client):
    token = _token(client)
    entries = [_entry(NOW + timedelta(seconds=i)) for i in range(5)]
    assert _post(client, token, entries).json() == {"accepted": 5, "duplicates": 0, "batch_id": "b1"}
    assert _post(client, token, entries).json() == {"accepted": 0, "duplicates": 5, "batch_id": "b1"}
    assert client.app.state.store.count_entries() == 5


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_no_or_a_bad_token_gets_401_even_with_a_bad_body(client, token):
    for raw in (None, b"not gzip"):
        r = _post(client, token, [_entry()], raw=raw)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert client.app.state.store.count_entries() == 0


def test_another_devices_data_gets_403(client):
    token = _token(client, "kiosk-1")
    r = _post(client, token, [_entry(device="kiosk-1")], device="kiosk-2")
    assert r.status_code == 403 and "kiosk-2" in r.json()["detail"]
    r = _post(client, token, [_entry(device="kiosk-1"), _entry(device="kiosk-3")])
    assert r.status_code == 403 and "kiosk-3" in r.json()["detail"]
    assert client.app.state.store.count_entries() == 0


@pytest.mark.parametrize("raw, status, words", [
    (b"plain text", 400, "gzip"),
    (gzip.compress(b"{not json"), 400, "JSON"),
    (gzip.compress(b'{"device_id": "kiosk-1", "batch_id": "b"}'), 422, "entries"),
    (gzip.compress(b"[1, 2]"), 422, "valid dictionary"),
    (gzip.compress(b"x" * 100)[:-8], 400, "truncated"),
])
def test_malformed_batches_get_a_4xx_with_a_message(client, raw, status, words):
    r = _post(client, _token(client), None, raw=raw)
    assert r.status_code == status
    assert words.lower() in r.text.lower()


@pytest.mark.parametrize("field, value", [
    ("id", "not-a-uuid"), ("outcome", "maybe"), ("scanned_at", "2026-03-02T09:00:00"),
    ("reason", "DROP TABLE"), ("venue_code", ""),
])
def test_a_malformed_entry_is_refused_with_its_field_named(client, field, value):
    r = _post(client, _token(client), [_entry(**{field: value})])
    assert r.status_code == 422
    assert field in json.dumps(r.json()["detail"])
    assert client.app.state.store.count_entries() == 0


def test_bodies_over_the_limit_get_413_compressed_or_decompressed(store):
    client = _client(store, max_body_bytes=2_000, max_inflated_bytes=50_000)
    token = _token(client)
    noisy = [_entry(personal=os.urandom(400).hex()) for _ in range(10)]  # does not compress well
    r = _post(client, token, noisy)
    assert r.status_code == 413 and "2000" in r.json()["detail"]
    bomb = gzip.compress(b"[" + b" " * 10_000_000 + b"]")  # ~10 KB on the wire, 10 MB inflated
    assert len(bomb) < 20_000
    client = _client(store, max_inflated_bytes=1_000_000)
    r = _post(client, token, None, raw=bomb)
    assert r.status_code == 413 and "decompressed" in r.json()["detail"]


def test_enrolment_code_works_once(client):
    code = client.app.state.store.create_enrol_code("kiosk-5", now=NOW)
    first = client.post("/v1/devices", json={"device_id": "kiosk-5", "code": code})
    second = client.post("/v1/devices", json={"device_id": "kiosk-5", "code": code})
    assert first.status_code == 200 and first.json()["token"]
    # One answer for a used, an unknown and another device's code: no oracle for a guesser.
    wrong = client.post("/v1/devices", json={"device_id": "kiosk-5", "code": "WRONGCODE"})
    other = client.post("/v1/devices", json={"device_id": "kiosk-6",
                                             "code": client.app.state.store.create_enrol_code("kiosk-7", now=NOW)})
    assert second.status_code == wrong.status_code == other.status_code == 401
    assert second.json() == wrong.json() == other.json()


def test_documents_are_served_with_etags_and_304(client):
    token = _token(client)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/rules", headers=auth).status_code == 404
    assert client.get("/v1/rules").status_code == 401
    rules = b'{"dcc": {"min_days_after_dose": 21}}'
    admin = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    r = client.put("/v1/rules", content=rules, headers=admin)
    assert r.status_code == 204
    assert client.put("/v1/rules", content=b"{}", headers=auth).status_code == 401  # devices cannot publish
    # Rules a kiosk could not run with, and envelopes signed by another key, are not published.
    assert client.put("/v1/rules", content=b'{"doses": 2}', headers=admin).status_code == 400
    forged = sign_document("rules", rules, generate_private_key(), version=9, now=NOW)
    r = client.put("/v1/rules", content=forged, headers={**admin, "Content-Type": "application/cose"})
    assert r.status_code == 400 and "other_key" in r.json()["detail"]
    first = client.get("/v1/rules", headers=auth)
    assert first.status_code == 200 and first.headers["content-type"] == "application/cose"
    assert peek(first.content).body == rules and peek(first.content).version == 1
    etag = first.headers["ETag"]
    again = client.get("/v1/rules", headers={**auth, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    publish_raw(client.app.state.store, "rules", b'{"dcc": {"min_days_after_dose": 14}}', now=NOW)
    changed = client.get("/v1/rules", headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_the_openapi_document_describes_the_protocol(client):
    doc = client.get("/openapi.json").json()
    assert doc["info"]["title"] == "Kiosk collector"
    for path in ("/v1/batches", "/v1/devices", "/v1/trust", "/v1/rules", "/v1/denylist",
                 "/v1/reports/daily.csv", "/v1/reports/daily", "/v1/trace"):
        assert path in doc["paths"], path
    batch = doc["components"]["schemas"]["Batch"]
    assert {"device_id", "batch_id", "entries"} <= set(batch["properties"])
    assert set(doc["paths"]["/v1/batches"]["post"]["responses"]) >= {"200", "401", "403", "413", "422"}
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 404  # no page loading scripts from a CDN


# --- a scripted day at two venues -----------------------------------------------------

HANOI = timezone(timedelta(hours=7))


def _at(hour, minute=0, day=2):
    return datetime(2026, 3, day, hour, minute, tzinfo=HANOI).astimezone(timezone.utc)


@pytest.fixture
def day(client):
    """March 2nd (Hanoi time) at a hospital (V-HOSP) and a market (V-MARKET), plus one
    entry the evening before that must not count."""
    from kiosk.seal import subject_hash

    t1, t2 = _token(client, "kiosk-1", "V-HOSP"), _token(client, "kiosk-2", "V-MARKET")
    a, b, c, d = (f"cccd:07920100000{i}" for i in range(4))
    failed = _entry(_at(8, 20), venue="V-HOSP", outcome="fail", reason="expired", subject=b)
    hosp = [
        _entry(_at(8, 5), venue="V-HOSP", subject=a),
        failed,
        _entry(_at(8, 21), venue="V-HOSP", outcome="pass", reason="override", subject=b,
               override_of=failed["id"]),
        _entry(_at(9, 40), venue="V-HOSP", outcome="fail", reason="unknown_key", subject=c),
        _entry(_at(9, 50), venue="V-HOSP", outcome="review", reason="identity_only", subject=d),
        _entry(_at(23, 59), venue="V-HOSP", subject=c),
        _entry(_at(23, 30, day=1), venue="V-HOSP", subject=d),  # the day before (16:30Z on the 1st)
    ]
    market = [
        _entry(_at(8, 10), device="kiosk-2", venue="V-MARKET", subject=c),
        _entry(_at(8, 15), device="kiosk-2", venue="V-MARKET", outcome="fail", reason="expired", subject=d),
        _entry(_at(17, 0), device="kiosk-2", venue="V-MARKET", subject=a),
    ]
    evening = _client(client.app.state.store, now=_at(23, 59))  # the kiosks upload as the day ends
    assert _post(evening, t1, hosp, batch_id="h").json()["accepted"] == 7
    assert _post(evening, t2, market, device="kiosk-2", batch_id="m").json()["accepted"] == 3
    key = client.app.state.store.tracing_key()  # the collector keys each person at ingest
    return {n: subject_hash(key, s) for n, s in {"a": a, "b": b, "c": c, "d": d}.items()}


ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}


def test_daily_report_csv_counts_each_venue(client, day):
    r = client.get("/v1/reports/daily.csv", params={"date": "2026-03-02"}, headers=ADMIN_AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = {row["venue_code"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert set(rows) == {"V-HOSP", "V-MARKET"}
    hosp, market = rows["V-HOSP"], rows["V-MARKET"]
    assert (hosp["entries"], hosp["passes"], hosp["fails"], hosp["reviews"], hosp["overrides"]) == \
        ("5", "2", "2", "1", "1")
    assert (hosp["fail_expired"], hosp["fail_unknown_key"]) == ("1", "1")
    assert (market["entries"], market["passes"], market["fails"], market["fail_expired"]) == ("3", "2", "1", "1")
    assert market["fail_unknown_key"] == "0"
    previous = client.get("/v1/reports/daily.csv", params={"date": "2026-03-01"}, headers=ADMIN_AUTH)
    assert [row["entries"] for row in csv.DictReader(io.StringIO(previous.text))] == ["1"]


def test_daily_report_page_has_a_chart_per_venue(client, day):
    r = client.get("/v1/reports/daily", params={"date": "2026-03-02"}, headers=ADMIN_AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert page.count("<svg") == 3 and "<script" not in page  # the province's chart, then one per venue
    assert "V-HOSP" in page and "V-MARKET" in page
    assert "<title>08:00 — 2</title>" in page  # hospital 08:xx: two scans (the override is apart)
    # fail reasons in the kiosk's own plain words, with the code for reference
    assert "Chứng nhận đã hết hạn / This certificate has expired <code>(expired)</code>: <b>1</b>" in page


def test_report_and_trace_need_the_admin_token(client, day):
    device = {"Authorization": f"Bearer {_token(client, 'kiosk-9')}"}
    for path, params in (("/v1/reports/daily.csv", {"date": "2026-03-02"}),
                         ("/v1/reports/daily", {"date": "2026-03-02"}),
                         ("/v1/trace", {"venue": "V-HOSP", "at": NOW.isoformat()})):
        assert client.get(path, params=params).status_code == 401
        assert client.get(path, params=params, headers=device).status_code == 401
    assert client.get("/v1/reports/daily.csv", params={"date": "2026-13-02"}, headers=ADMIN_AUTH).status_code == 422


def test_trace_lists_who_was_at_the_venue_within_the_window(client, day):
    r = client.get("/v1/trace", headers=ADMIN_AUTH, params={
        "venue": "V-HOSP", "at": _at(8, 15).isoformat(), "window_minutes": 30})
    assert r.status_code == 200
    people = r.json()["people"]
    assert [p["subject_hash"] for p in people] == [day["a"], day["b"], day["b"]]  # 08:05, 08:20, override 08:21
    assert {p["venue_code"] for p in people} == {"V-HOSP"}
    # The answer is written without a model per contact: it still is what the OpenAPI
    # document promises, field for field, with times in UTC.
    from collector.app import TraceAnswer, TracePerson

    answer = TraceAnswer.model_validate_json(r.content)
    assert all(list(p) == list(TracePerson.model_fields) for p in people)
    assert answer.people[0].scanned_at.utcoffset().total_seconds() == 0
    assert people[0]["scanned_at"].endswith("Z") and answer.count == 3


def test_trace_by_a_case_finds_everyone_near_each_of_their_visits(client, day):
    # Person c: at the market at 08:10 and the hospital at 23:59. The hospital's 09:40 scan
    # claiming c failed (unknown_key): it names no one, so it is no visit of c (issue 11).
    r = client.get("/v1/trace", headers=ADMIN_AUTH, params={
        "subject_hash": day["c"], "at": _at(11).isoformat(), "window_minutes": 15})
    assert r.status_code == 200
    got = {(p["venue_code"], p["subject_hash"], p["is_case"]) for p in r.json()["people"]}
    assert got == {("V-MARKET", day["c"], True), ("V-MARKET", day["d"], False)}
    assert len(r.json()["windows"]) == 1  # the 23:59 visit is more than 12 h after 11:00


def test_trace_without_a_time_or_case_is_a_clear_400(client):
    r = client.get("/v1/trace", headers=ADMIN_AUTH, params={"venue": "V-HOSP"})
    assert r.status_code == 400 and "venue and a time" in r.json()["detail"]


# --- property: no body makes the collector fail with a 500 ----------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_PROP_STORE = Store("sqlite://")
_PROP_CLIENT = _client(_PROP_STORE)
_PROP_TOKEN = _token(_PROP_CLIENT)
_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                            max_leaves=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(gzip.compress),
    _json_values.map(lambda v: gzip.compress(json.dumps(v).encode())),
    st.fixed_dictionaries({"device_id": st.just("kiosk-1"), "batch_id": st.text(max_size=70),
                           "entries": st.lists(st.dictionaries(st.sampled_from(list(_entry())), _json_values,
                                                               max_size=6), max_size=3)})
      .map(lambda v: gzip.compress(json.dumps(v).encode())),
))
def test_any_body_gets_an_answer_never_a_server_error(body):
    r = _post(_PROP_CLIENT, _PROP_TOKEN, None, raw=body)
    assert r.status_code in (200, 400, 413, 422)
    assert r.json()["detail"] if r.status_code != 200 else "accepted" in r.json()


def test_vietnamese_venue_codes_are_accepted_but_spaces_and_signs_are_not(client):
    token = _token(client, "quầy-1", "Chợ-Bến-Thành_2")
    r = _post(client, token, [_entry(device="quầy-1", venue="Chợ-Bến-Thành_2")], device="quầy-1")
    assert r.status_code == 200 and r.json()["accepted"] == 1
    r = _post(client, token, [_entry(device="quầy-1", venue="Chợ Bến Thành #2")], device="quầy-1")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "entries", 0, "venue_code"]


def test_a_browser_can_open_the_report_with_the_admin_token_as_password(client):
    import base64

    r = client.get("/v1/reports/daily", params={"date": "2026-03-02"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    basic = base64.b64encode(f"staff:{ADMIN}".encode()).decode()
    ok = client.get("/v1/reports/daily", params={"date": "2026-03-02"}, headers={"Authorization": f"Basic {basic}"})
    assert ok.status_code == 200 and "Daily report 2026-03-02" in ok.text
    wrong = base64.b64encode(b"staff:guess").decode()
    assert client.get("/v1/reports/daily", params={"date": "2026-03-02"},
                      headers={"Authorization": f"Basic {wrong}"}).status_code == 401
