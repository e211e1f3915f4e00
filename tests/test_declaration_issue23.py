"""Issue 23 items 1, 4, 9 and 11 against the real collector: tracing finds web-form
declarations by the typed ID (every kind the form accepts), only registered venues take
declarations and self-declared check-ins are marked, a roster person is cleared only by a
declaration with the roster's phone, the form's browser-side details, and the README's
`collector issuer --trust FILE` step on a machine with no trust list yet."""

from __future__ import annotations

import json

from collector_process import run_collector


# --- item 11: the README step `collector issuer --trust trustlist.json && collector publish trust trustlist.json`

def test_issuer_makes_the_trust_list_when_none_exists_and_publish_takes_it(tmp_path):
    # Regression (issue 23 item 11): the step failed with FileNotFoundError on a new machine.
    db = f"sqlite:///{tmp_path / 'c.db'}"
    key = tmp_path / "publisher.pem"
    assert run_collector("publisher-keygen", "--out", str(key)).returncode == 0
    trust = tmp_path / "trustlist.json"
    made = run_collector("issuer", "--trust", str(trust), "--db", db)
    assert made.returncode == 0, made.stderr
    entries = json.loads(trust.read_text(encoding="utf-8"))
    assert [e["certificateType"] for e in entries] == ["HD1"]
    published = run_collector("publish", "trust", str(trust), "--key", str(key), "--db", db)
    assert published.returncode == 0, published.stderr
    assert "published trust" in published.stdout


# --- item 1: tracing by the ID number finds the web form's check-ins --------------------

import re  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402

from collector import declarations, venues  # noqa: E402
from collector.publish import publish  # noqa: E402
from collector_helpers import ADMIN_TOKEN, PUBLISHER, RunningCollector, open_store  # noqa: E402

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VENUE = "BV-CHORAY"
PERSON = {"name": "Nguyễn Thị Ngọc Ánh", "dob": "1990-04-30", "sex": "nu", "phone": "0901234567",
          "province": "79", "commune": "26740", "street": "12 Lê Lợi", "contact_case": "no",
          "contact_area": "no", "consent": "yes"}


@pytest.fixture
def collector(tmp_path):
    store = open_store("sqlite", tmp_path)
    venues.put(store, {"venue_code": VENUE, "name": "Bệnh viện Chợ Rẫy", "type": "hospital"})
    publish(store, "trust", declarations.with_issuer(b"[]", store), key=PUBLISHER,
            now=datetime.now(timezone.utc) - timedelta(minutes=1))
    with RunningCollector(store) as running:
        yield running
    store.close()


def _declare_at(collector, venue: str, id_number: str) -> requests.Response:
    page = requests.get(f"{collector.url}/d/{venue}", timeout=10).text
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    return requests.post(f"{collector.url}/d", timeout=10,
                         data={**PERSON, "id_number": id_number, "venue": venue, "token": token})


def _case_rows(collector, typed: str) -> list[str]:
    r = requests.post(f"{collector.url}/v1/reports/tracing", data={"id_number": typed}, headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    return re.findall(r'<tr class="case">(.*?)</tr>', r.text)


@pytest.mark.parametrize("id_number, typed", [
    ("079190000123", "0791 9000 0123"),   # CCCD, typed with spaces
    ("025123456", "025123456"),           # an old 9-digit CMND
    ("B1234567", "b1234567"),             # a passport number, typed in lower case
], ids=["cccd", "cmnd", "passport"])
def test_tracing_by_the_id_number_finds_who_declared_on_the_web_form(collector, id_number, typed):
    """Issue 23 item 1: the officer types the number the citizen typed into the form."""
    assert _declare_at(collector, VENUE, id_number).status_code == 200
    rows = _case_rows(collector, typed)
    assert len(rows) == 1, rows
    assert "Bệnh viện Chợ Rẫy" in rows[0] and "self-declared" in rows[0]
    # Another person's number finds no case.
    assert _case_rows(collector, "079190000999") == []


# --- item 4: forged declarations -----------------------------------------------------------

def test_a_venue_not_in_the_registry_takes_no_check_in(collector):
    page = requests.get(f"{collector.url}/d/FAKE-VENUE", timeout=10)
    assert page.status_code == 404 and "Địa điểm chưa đăng ký" in page.text
    assert 'href="/d?lang=vi"' in page.text and 'name="venue"' not in page.text  # the plain form, one tap away
    forged = _declare_at(collector, VENUE, "079190000123")  # a token from a real venue's page...
    assert forged.status_code == 200
    page = requests.get(f"{collector.url}/d/{VENUE}", timeout=10).text
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    refused = requests.post(f"{collector.url}/d", timeout=10,  # ...then the venue field edited
                            data={**PERSON, "id_number": "079190000124", "venue": "FAKE-VENUE", "token": token})
    assert refused.status_code == 422 and "not a venue registered with the health department" in refused.text
    assert 'name="venue"' not in refused.text  # the form again, without the venue
    at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    visits = requests.get(f"{collector.url}/v1/trace", params={"venue": "FAKE-VENUE", "at": at, "window_minutes": 60},
                          headers=ADMIN, timeout=10).json()
    assert visits["people"] == []


def test_the_daily_report_counts_self_declared_check_ins_apart(collector):
    from datetime import date

    assert _declare_at(collector, VENUE, "079190000123").status_code == 200
    today = datetime.now(timezone.utc).astimezone(timezone(timedelta(hours=7))).date().isoformat()
    rows = requests.get(f"{collector.url}/v1/reports/daily.csv", params={"date": today}, headers=ADMIN, timeout=10).text
    import csv
    import io

    by_venue = {r["venue_code"]: r for r in csv.DictReader(io.StringIO(rows))}
    assert by_venue[VENUE]["entries"] == "1" and by_venue[VENUE]["self_declared"] == "1"
    page = requests.get(f"{collector.url}/v1/reports/daily", params={"date": today}, headers=ADMIN, timeout=10).text
    assert "Self-declared (web form)" in page
    assert date.fromisoformat(today)


def _roster_with(collector, phone: str) -> None:
    today = datetime.now(timezone(timedelta(hours=7))).date()
    body = ("id_number,name,phone,commune,kind,start,end\n"
            f"079190000123,Nguyễn Thị Ngọc Ánh,{phone},26740,home,{today - timedelta(days=2)},{today + timedelta(days=9)}\n")
    r = requests.post(f"{collector.url}/v1/roster", data=body.encode(), timeout=10,
                      headers={**ADMIN, "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text


def _roster_person(collector) -> tuple[str, dict]:
    status = requests.get(f"{collector.url}/v1/roster/status", headers=ADMIN, timeout=10).json()
    [commune] = status["communes"]
    for key in ("declared", "missing"):
        if commune[key]:
            return key, commune[key][0]
    raise AssertionError(status)


def test_knowing_a_quarantined_persons_id_number_does_not_clear_them(collector):
    """A green declaration with the right ID number but another phone leaves the person
    missing, with a note for the officer; one with the roster's phone clears them."""
    _roster_with(collector, "0901234567")
    page = requests.get(f"{collector.url}/d", timeout=10).text
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    forged = requests.post(f"{collector.url}/d", timeout=10,
                           data={**PERSON, "id_number": "079190000123", "phone": "0912000111", "token": token})
    assert forged.status_code == 200
    state, person = _roster_person(collector)
    assert state == "missing" and "other than the roster" in person["note"]
    page = requests.get(f"{collector.url}/d", timeout=10).text
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    real = requests.post(f"{collector.url}/d", timeout=10,
                         data={**PERSON, "id_number": "079190000123", "phone": "+84 90 123 4567", "token": token})
    assert real.status_code == 200
    assert _roster_person(collector)[0] == "declared"


# --- item 9: the form in a real browser ----------------------------------------------------

@pytest.fixture
def phone(collector):
    from browser_helpers import CHROMIUM, browser_or_fail

    sync_api = browser_or_fail()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 375, "height": 812}, locale="vi-VN")
        yield context, context.new_page()
        context.close()
        browser.close()


def test_the_forms_details_a_citizen_meets(collector, phone):
    from test_report_page import _axe_violations

    context, page = phone
    page.goto(f"{collector.url}/d/{VENUE}")
    # The phone pattern compiles under the v flag, so the browser applies it.
    page.fill("#phone", "abc")
    assert page.evaluate("document.getElementById('phone').validity.patternMismatch")
    # A birth date in the future is out of range for the browser too.
    page.fill("#dob", "2999-01-01")
    assert page.evaluate("document.getElementById('dob').validity.rangeOverflow")
    # "No symptoms at all" is a choice of its own, and excludes the symptoms.
    page.check("input[name=sym][value=fever]")
    page.check("input[name=sym][value=none]")
    assert not page.is_checked("input[name=sym][value=fever]")
    assert _axe_violations(page) == []
    # The error summary: labels without "?:" or ".:".
    page.click("button[type=submit]")
    page.wait_for_selector("#errors")
    summary = page.inner_text("#errors")
    assert "?:" not in summary and ".:" not in summary, summary
    # A real declaration: the result names the venue; "declare again" is a thumb-sized target.
    for field, value in (("#name", PERSON["name"]), ("#dob", PERSON["dob"]), ("#id_number", "079190000123"),
                         ("#phone", PERSON["phone"])):
        page.fill(field, value)
    page.check("input[name=sex][value=nu]")
    page.select_option("#province", PERSON["province"])
    page.wait_for_function("document.querySelector('#commune').options.length > 1")
    page.select_option("#commune", PERSON["commune"])
    page.check("input[name=contact_case][value=no]")
    page.check("input[name=contact_area][value=no]")
    page.check("#consent")
    page.click("button[type=submit]")
    page.wait_for_selector("#result")
    assert "Bệnh viện Chợ Rẫy" in page.inner_text("#where")
    again = page.locator("a.btn", has_text="Khai báo lại").bounding_box()
    assert again["height"] >= 44
    # Offline, the venue's address shows the kept QR and says it is not a new check-in.
    page.goto(f"{collector.url}/d/last")  # the service worker is installed by now
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    page.goto(f"{collector.url}/d/{VENUE}")
    assert page.locator("#offline-note").is_visible()
    assert "KHÔNG phải khai báo mới" in page.inner_text("#offline-note")
    context.set_offline(False)


def test_ticking_no_symptoms_and_a_symptom_is_refused(collector):
    page = requests.get(f"{collector.url}/d", timeout=10).text
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    r = requests.post(f"{collector.url}/d", timeout=10, data={**PERSON, "id_number": "079190000123", "token": token,
                                                              "sym": ["none", "fever"]})
    assert r.status_code == 422 and "choose one or the other" in r.text
