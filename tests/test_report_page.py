"""The report page and the tracing page in a real browser (Playwright driving Debian's
Chromium, the admin token as the Basic auth password): the totals, the chart split by
verdict with its axes, the silent kiosk and the one whose clock is off, the date
navigation and downloads; the tracing page finds the case's contacts and exports them.
Screenshots go to $KIOSK_SCREENSHOTS (default: the system's temp folder) for review."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import report_data as data
from browser_helpers import CHROMIUM, SHOTS, browser_or_fail
from collector.app import create_app
from collector.config import CollectorConfig
from collector_helpers import ADMIN_TOKEN, RunningCollector, open_store


@pytest.fixture
def collector(tmp_path):
    store = open_store("sqlite", tmp_path)
    data.fill(store)
    with RunningCollector(store) as c:
        yield c
    store.close()


@pytest.fixture
def page(collector):
    sync_api = browser_or_fail()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(http_credentials={"username": "officer", "password": ADMIN_TOKEN},
                                      viewport={"width": 1280, "height": 900}, accept_downloads=True)
        yield context.new_page()
        context.close()
        browser.close()


def test_the_page_shows_totals_chart_and_silent_kiosks(collector, page):
    page.goto(f"{collector.url}/v1/reports/daily?date=2026-03-02")
    totals = page.locator("#totals")
    assert totals.locator(".card").first.inner_text().split("\n")[-1] == str(data.TOTAL["entries"])
    text = totals.inner_text()
    for label, key in (("Đạt / Pass", "passes"), ("Không đạt / Fail", "fails"), ("Xem xét / Review", "reviews")):
        assert f"{label}\n{data.TOTAL[key]}" in text
    # The province's chart: stacked bars in the verdict colours, with both axes labelled,
    # really drawn (a box with a size), 08:00 holding the morning's five entries.
    chart = page.locator("svg.chart").first
    box = chart.bounding_box()
    assert box and box["width"] > 600 and box["height"] > 200
    assert chart.locator("rect.bar-pass").count() >= 3 and chart.locator("rect.bar-fail").count() == 2
    assert chart.locator("rect.bar-review").count() == 2
    assert "Hour (Vietnam time)" in chart.inner_html() and "Entries" in chart.inner_html()
    assert "<title>08:00 — 5</title>" in chart.inner_html()
    # The kiosks to look at: the silent one and the one whose clock runs ahead.
    kiosks = page.locator("#kiosks").inner_text()
    assert data.SILENT in kiosks and "no upload today" in kiosks
    assert data.CLOCK_AHEAD in kiosks and "10 min ahead" in kiosks
    venues = page.locator("#venues").inner_text()
    assert "Bệnh viện Chợ Rẫy" in venues and "Chợ Bến Thành" in venues and "not registered" in venues
    assert "Phường 12" in page.locator("#areas").inner_text()
    page.screenshot(path=str(SHOTS / "report-page.png"), full_page=True)
    # Date navigation: the previous day, then the picker back to 2026-03-02.
    page.click("a[rel=prev]")
    assert "Daily report 2026-03-01" in page.title()
    page.fill("input[type=date]", "2026-03-02")
    page.click("nav button[type=submit]")
    assert "Daily report 2026-03-02" in page.title()
    with page.expect_download() as dl:
        page.click("text=XLSX (Excel)")
    assert dl.value.suggested_filename == "daily-2026-03-02.xlsx"


def test_the_tracing_page_finds_the_cases_contacts_and_exports_them(collector, page):
    page.goto(f"{collector.url}/v1/reports/daily?date=2026-03-02")
    page.click("text=Truy vết / Contact tracing")
    page.fill("input[name=id_number]", data.CASE_ID)
    page.fill("input[name=at]", "2026-03-02T08:00")  # the day the case was seen (else: the last 21 days)
    page.fill("input[name=window_minutes]", "30")
    page.click("button[type=submit]")
    table = page.locator("#contacts")
    rows = table.locator("tbody tr")
    # The case at 08:10 and everyone at Chợ Rẫy from 07:40 to 08:40: five entries.
    assert rows.count() == 5
    assert "Bệnh viện Chợ Rẫy" in table.inner_text() and "Trần T*** B" in table.inner_text()
    assert table.locator("tr.case").count() == 1 and "2026-03-02 08:10:00" in table.locator("tr.case").inner_text()
    page.screenshot(path=str(SHOTS / "tracing-page.png"), full_page=True)
    with page.expect_download() as dl:
        page.click("text=CSV")
    exported = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8"))))
    assert len(exported) == 5 and sum(r["is_case"] == "yes" for r in exported) == 1
    # Issue 23 item 6: the ID number never entered an address (history, proxy logs)...
    assert data.CASE_ID not in page.url
    assert all(data.CASE_ID not in entry for entry in page.evaluate(
        "performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".map(e => e.name)"))
    # ...and an address that carries one is refused, saying why.
    page.goto(f"{collector.url}/v1/reports/tracing?id_number={data.CASE_ID}")
    assert "never in the address" in page.locator(".error").inner_text()
    assert page.locator("#contacts").count() == 0
    # A malformed ID number is an answer on the page, not a crash.
    import requests

    bad = requests.post(f"{collector.url}/v1/reports/tracing", data={"id_number": "12345"},
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert bad.status_code == 400 and "12 digits" in bad.text


def test_without_a_date_the_report_is_today_in_vietnam(tmp_path):
    """23:30 UTC on 2026-03-01 is 06:30 on 2026-03-02 in Vietnam."""
    store = open_store("sqlite", tmp_path)
    data.fill(store)
    clock = lambda: datetime(2026, 3, 1, 23, 30, tzinfo=timezone.utc)  # noqa: E731
    client = TestClient(create_app(store, CollectorConfig(db_url=store.url, admin_token=ADMIN_TOKEN), clock=clock))
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    page = client.get("/v1/reports/daily", headers=auth)
    assert page.status_code == 200 and "Daily report 2026-03-02" in page.text
    assert client.get("/v1/reports/daily.csv", headers=auth).headers["content-disposition"].endswith('2026-03-02.csv"')
    tracing = client.post("/v1/reports/tracing", headers=auth, data={"id_number": data.CASE_ID})
    assert tracing.status_code == 200 and tracing.headers["cache-control"] == "no-store"
    assert client.post("/v1/reports/tracing", data={"id_number": data.CASE_ID}).status_code == 401
    store.close()


# --- the venue registry the report names venues from ----------------------------------

def test_venues_come_from_put_csv_import_and_the_command_line(tmp_path, capsys):
    import requests

    from collector import cli

    store = open_store("sqlite", tmp_path)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with RunningCollector(store) as c:
        put = requests.put(f"{c.url}/v1/venues/BV-CHORAY", headers=auth, timeout=10,
                           json={"name": "Bệnh viện Chợ Rẫy", "type": "hospital", "district": "Quận 5", "commune": "Phường 12"})
        assert put.status_code == 200 and put.json()["name"] == "Bệnh viện Chợ Rẫy"
        assert requests.put(f"{c.url}/v1/venues/BV-CHORAY", json={"name": "x"}, timeout=10).status_code == 401
        bad = requests.put(f"{c.url}/v1/venues/BV-CHORAY", headers=auth, timeout=10, json={"name": "x", "type": "casino"})
        assert bad.status_code == 400 and "type" in bad.json()["detail"]
        csv_body = ("venue_code,name,type,province,district,commune\r\n"
                    "CHO-BT,Chợ Bến Thành,market,TP. Hồ Chí Minh,Quận 1,Phường Bến Thành\r\n").encode("utf-8")
        ok = requests.post(f"{c.url}/v1/venues.csv", data=b"\xef\xbb\xbf" + csv_body, headers={**auth, "Content-Type": "text/csv"},
                           timeout=10)
        assert ok.status_code == 200 and ok.json() == {"stored": 1}
        # One bad line refuses the whole file, naming the line; nothing of it is stored.
        broken = csv_body + "X Y,Somewhere,school,,,\r\n".encode()
        refused = requests.post(f"{c.url}/v1/venues.csv", data=broken, headers={**auth, "Content-Type": "text/csv"}, timeout=10)
        assert refused.status_code == 400 and "line 3" in refused.json()["detail"]
        # A file saved in a legacy code page (Windows-1258) is named as not UTF-8, not half-read.
        legacy = requests.post(f"{c.url}/v1/venues.csv", data=b"venue_code,name,type\r\nCHO-2,Ch\xf4 L\xf4n,market\r\n",
                               headers={**auth, "Content-Type": "text/csv"}, timeout=10)
        assert legacy.status_code == 400 and "UTF-8" in legacy.json()["detail"]
        listed = {v["venue_code"]: v for v in requests.get(f"{c.url}/v1/venues", headers=auth, timeout=10).json()["venues"]}
        assert set(listed) == {"BV-CHORAY", "CHO-BT"} and listed["CHO-BT"]["commune"] == "Phường Bến Thành"
    db = store.url
    store.close()
    assert cli.main(["venue", "add", "THPT-LQD", "--name", "Trường THPT Lê Quý Đôn", "--type", "school",
                     "--district", "Quận 3", "--commune", "Phường Võ Thị Sáu", "--db", db]) == 0
    bad_file = tmp_path / "venues.csv"
    bad_file.write_text("venue_code,name,type\nV1,,school\n", encoding="utf-8")
    assert cli.main(["venue", "import", str(bad_file), "--db", db]) == 2
    assert f"{bad_file} line 2: name" in capsys.readouterr().err
    # ... or at enrolment: the technician's code names the venue (a bad type mints no code).
    assert cli.main(["enrol-code", "--device", "kiosk-bv-q8", "--venue", "BV-Q8", "--venue-name", "Bệnh viện Quận 8",
                     "--venue-type", "casino", "--db", db]) == 2
    capsys.readouterr()
    assert cli.main(["enrol-code", "--device", "kiosk-bv-q8", "--venue", "BV-Q8", "--venue-name", "Bệnh viện Quận 8",
                     "--venue-type", "hospital", "--district", "Quận 8", "--commune", "Phường 5", "--db", db]) == 0
    capsys.readouterr()
    assert cli.main(["venue", "list", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "Trường THPT Lê Quý Đôn — Phường Võ Thị Sáu, Quận 3" in out and "Chợ Bến Thành" in out
    assert "Bệnh viện Quận 8 — Phường 5, Quận 8" in out


def test_the_report_counts_the_quarantine_roster_per_commune(tmp_path):
    """With the declaration form's roster (collector.roster): per commune, who is on it,
    who declared, who has not. Two people in Phường Sài Gòn, neither declared yet."""
    roster = pytest.importorskip("collector.roster", reason="the declaration form (issue 14) is not in this tree")
    from collector import report, report_page, xlsx

    store = open_store("sqlite", tmp_path)
    roster.import_csv(store, "id_number,name,phone,commune,kind,start,end\n"
                             "079190000123,Trần Thị Mai,0901234567,26740,home,2026-03-01,2026-03-14\n"
                             "079190000456,Lê Văn Nam,0907654321,26740,home,2026-03-01,2026-03-14\n")
    rep = report.collect(store, data.DAY, now=data.AFTER_CUTOFF)
    [commune] = rep.roster
    assert (commune.on_roster, commune.declared, commune.with_symptoms, commune.not_declared) == (2, 0, 0, 2)
    page = report_page.render(rep)
    assert 'id="roster"' in page and commune.commune in page and "Trần Thị Mai" not in page  # counts, no names
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.report_xlsx(rep)))[xlsx.SHEET_ROSTER]
    assert [c.value for c in sheet[2]][2:] == [2, 0, 0, 2]
    store.close()


def test_a_venue_name_holding_markup_is_shown_as_text(tmp_path):
    """A registry row is typed by people: `<script>` in a name must not run on the page
    the department opens with its admin token."""
    from collector import report, report_page

    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    rep = report.build(data.DAY, [{"venue_code": "V1", "outcome": "fail", "reason": "expired", "hour_local": 8, "n": 1}],
                       registry={"V1": {"name": hostile, "type": "other", "commune": hostile}})
    page = report_page.render(rep)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def _axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({len(v['nodes'])}): {v['nodes'][0]['target']}" for v in found]


def test_axe_core_finds_nothing_on_the_officers_pages(collector, page):
    """Issue 23 item 10: axe-core (bundled by axe-playwright-python) on the report, the
    tracing page with an answer, and the roster page."""
    page.goto(f"{collector.url}/v1/reports/daily?date=2026-03-02")
    assert _axe_violations(page) == []
    page.click("text=Truy vết / Contact tracing")
    page.fill("input[name=id_number]", data.CASE_ID)
    page.fill("input[name=at]", "2026-03-02T08:00")
    page.click("button[type=submit]")
    assert page.locator("#contacts").count() == 1
    assert _axe_violations(page) == []
    page.goto(f"{collector.url}/v1/roster")
    assert _axe_violations(page) == []
    page.goto(f"{collector.url}/v1/reports/daily?date=2026-03-02")
    page.click("text=Thiết bị / Kiosk fleet")
    assert page.locator("#fleet tbody tr").count() >= 1  # the fixture's kiosks, silent: red
    assert _axe_violations(page) == []
