"""The citizens' declaration form (issue 14), in a real browser against the real collector:
Playwright drives Debian's chromium at a phone's width, the kiosk's decoder reads the QR
off the screenshot, and `kiosk check` judges it with the trust list the kiosk fetched
from that collector. Also: the venue poster's QR, the quarantine roster, and the attacks
the issue names (replay, flooding, oversized bodies)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings, strategies as st

from collector import declarations, divisions, poster, roster, venues
from collector.publish import publish
from collector.storage import REPORT_TZ
from browser_helpers import CHROMIUM, SHOTS, browser_or_fail
from collector_helpers import ENGINES, ADMIN_TOKEN, PUBLISHER, PUBLISHER_KEY, RunningCollector, open_store
from kiosk.seal import generate_keypair

ROOT = Path(__file__).resolve().parent.parent
VENUE = "BV-CHORAY"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SEAL_PRIVATE, _SEAL_PUBLIC = generate_keypair()
#: Phường Sài Gòn, Thành phố Hồ Chí Minh (2025 units).
PROVINCE, COMMUNE = "79", "26740"
PERSON = {"name": "Nguyễn Thị Ngọc Ánh", "dob": "1990-04-30", "sex": "nu", "id_number": "079190000123",
          "phone": "0901234567", "province": PROVINCE, "commune": COMMUNE, "street": "12 Lê Lợi",
          "contact_case": "no", "contact_area": "no", "consent": "yes"}


@pytest.fixture
def collector(request, tmp_path):
    """The real collector (SQLite; PostgreSQL too for tests marked with `engine`)."""
    store = open_store(getattr(request, "param", "sqlite"), tmp_path)
    venues.put(store, {"venue_code": VENUE, "name": "Bệnh viện Chợ Rẫy", "type": "hospital"})
    # The department publishes a trust list holding the form's HD1 issuer key.
    publish(store, "trust", declarations.with_issuer(b"[]", store), key=PUBLISHER,
            now=datetime.now(timezone.utc) - timedelta(minutes=1))
    with RunningCollector(store, seal_private_key=SEAL_PRIVATE) as running:
        yield running
    store.close()


@pytest.fixture
def phone():
    """A phone-sized chromium page (375 px wide, 2x pixels, Vietnamese)."""
    sync_api = browser_or_fail()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2,
                                      locale="vi-VN", accept_downloads=True)
        yield context.new_page()
        context.close()
        browser.close()


@pytest.fixture
def kiosk_env(tmp_path, monkeypatch, collector):
    """A hospital kiosk whose journal holds the trust list fetched from the collector
    with the kiosk's own fetcher (signed document, pinned publisher key)."""
    from kiosk.journal import Journal
    from kiosk.sync import Fetcher

    journal_path = tmp_path / "kiosk" / "journal.db"
    journal_path.parent.mkdir()
    with Journal(journal_path) as journal:
        with Fetcher(journal, url=collector.url, token=collector.token("kiosk-1", venue=VENUE),
                     publisher_key=PUBLISHER_KEY) as fetcher:
            assert fetcher.fetch("trust") == "updated"
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[journal]\npath = "{journal_path}"\n[venue]\ntype = "hospital"\ncode = "{VENUE}"\n',
                   encoding="utf-8")
    monkeypatch.setenv("KIOSK_CONFIG", str(cfg))
    return journal_path


def _kiosk_check(text: str, capsys) -> dict:
    from kiosk.cli import main

    capsys.readouterr()
    main(["check", "--json", text])
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _decode(path: Path) -> list[str]:
    from kiosk.config import load_config
    from kiosk.scanner.decoder import Decoder

    with Decoder(load_config(None, search=False).decoder) as decoder:
        return decoder.decode_path(path).texts


def _fill(page, person: dict, *, symptoms: tuple[str, ...] = ()) -> None:
    page.fill("#name", person["name"])
    page.fill("#dob", person["dob"])
    page.check(f"input[name=sex][value={person['sex']}]")
    page.fill("#id_number", person["id_number"])
    page.fill("#phone", person["phone"])
    page.select_option("#province", person["province"])
    page.select_option("#commune", person["commune"])  # loaded for the province by the script
    page.fill("#street", person["street"])
    for code in symptoms:
        page.check(f"input[name=sym][value={code}]")
    page.check(f"input[name=contact_case][value={person['contact_case']}]")
    page.check(f"input[name=contact_area][value={person['contact_area']}]")
    page.check("#consent")


def _trace(collector, venue: str) -> dict:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = requests.get(f"{collector.url}/v1/trace", params={"venue": venue, "at": now, "window_minutes": 120},
                     headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


# --- in the browser -----------------------------------------------------------------------

def test_poster_qr_opens_the_form_the_qr_passes_at_the_hospital_and_a_symptom_fails(
        collector, kiosk_env, phone, tmp_path, capsys):
    # The venue's poster: its QR reads back through the kiosk's decoder as the form's URL.
    poster_file = poster.write(tmp_path / "poster.png", VENUE, f"{collector.url}/d/{VENUE}", name="Bệnh viện Chợ Rẫy")
    [url] = _decode(poster_file)
    assert url == f"{collector.url}/d/{VENUE}"

    phone.goto(url)
    assert phone.locator("html").get_attribute("lang") == "vi"
    assert phone.input_value("input[name=venue]") == VENUE
    assert "Bệnh viện Chợ Rẫy" in phone.inner_text(".venue")
    _fill(phone, PERSON)
    phone.screenshot(path=str(SHOTS / "declaration-form-375.png"), full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375  # nothing off the side
    # Every tap target at least 44 CSS px high (WCAG 2.5.5), every input labelled.
    small = phone.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]),select,button,label.c')]
        .filter(e => e.getBoundingClientRect().height < 44 && !e.closest('label.c')).map(e => e.name || e.id)""")
    assert small == []
    unlabelled = phone.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]),select')]
        .filter(e => !(e.labels && e.labels.length)).map(e => e.name)""")
    assert unlabelled == []
    phone.click("button[type=submit]")
    phone.wait_for_selector("#result")
    shot = SHOTS / "declaration-result.png"
    phone.screenshot(path=str(shot), full_page=True)
    assert phone.inner_text(".who") == "Nguyễn T*** N*** Á"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    with phone.expect_download() as saved:  # "save as image": the PNG itself
        phone.click("#save")
    assert saved.value.suggested_filename.endswith(".png")
    saved_png = tmp_path / "saved.png"
    saved.value.save_as(saved_png)

    # The kiosk's decoder reads the QR off the screenshot; the hospital kiosk lets her in.
    [text] = _decode(shot)
    assert text.startswith("HD1:")
    verdict = _kiosk_check(text, capsys)
    assert (verdict["verdict"], verdict["reason"], verdict["name"]) == ("pass", "ok", "Nguyễn T*** N*** Á")
    assert _decode(saved_png) == [text]

    # The phone kept it: at the gate without a connection, the service worker serves the
    # page and the QR comes out of localStorage.
    phone.goto(f"{collector.url}/d/last")
    phone.wait_for_function("navigator.serviceWorker.ready.then(r => !!r.active)")
    phone.context.set_offline(True)
    phone.goto(f"{collector.url}/d/last")
    phone.wait_for_selector("#kept:not([hidden])")
    assert phone.inner_text("#kept-name") == "Nguyễn T*** N*** Á"
    phone.screenshot(path=str(SHOTS / "declaration-offline.png"), full_page=True)
    [kept_text] = _decode(SHOTS / "declaration-offline.png")
    assert kept_text == text
    phone.context.set_offline(False)

    # The check-in is in tracing for the venue, opened with the collector's seal key.
    answer = _trace(collector, VENUE)
    assert answer["count"] == 1 and answer["people"][0]["opened"]
    assert json.loads(answer["people"][0]["personal"])["name"] == PERSON["name"]

    # Declaring again: the form comes pre-filled from the phone (the server sent no name).
    served = requests.get(url, timeout=10).text
    assert PERSON["name"] not in served and PERSON["id_number"] not in served
    phone.goto(url)
    phone.wait_for_selector("#prefilled:not([hidden])")
    assert phone.input_value("#name") == PERSON["name"]
    assert phone.input_value("#id_number") == PERSON["id_number"]
    phone.wait_for_function("document.querySelector('#commune').value === '%s'" % COMMUNE)
    phone.check("input[name=sym][value=fever]")
    phone.check("input[name=contact_case][value=no]")
    phone.check("input[name=contact_area][value=no]")
    phone.check("#consent")
    phone.click("button[type=submit]")
    phone.wait_for_selector("#result")
    sick = SHOTS / "declaration-result-fever.png"
    phone.screenshot(path=str(sick), full_page=True)
    [sick_text] = _decode(sick)
    verdict = _kiosk_check(sick_text, capsys)
    assert (verdict["verdict"], verdict["reason"]) == ("fail", "symptoms")
    # The same person at the same venue minutes later: a new declaration, one visit
    # (issue 23 item 9: a resubmitted form no longer adds a second check-in silently).
    assert "lượt vào không được ghi thêm" in phone.inner_text("#repeat")
    assert _trace(collector, VENUE)["count"] == 1


def test_errors_show_next_to_each_field_in_both_languages_and_english_is_one_tap_away(collector, phone):
    phone.goto(f"{collector.url}/d")
    phone.click("text=English")
    assert phone.locator("html").get_attribute("lang") == "en"
    assert phone.inner_text("h1") == "Health declaration"
    # Issue 23 item 9: no English-only browser bubble; the page's own errors, both languages.
    assert phone.evaluate("document.getElementById('decl').noValidate")
    phone.click("button[type=submit]")
    phone.wait_for_selector("#errors")
    assert "Họ và tên" in phone.inner_text("#errors") or "Full name" in phone.inner_text("#errors")
    assert phone.locator("#e-name").count() == 1
    phone.fill("#name", "Lê Văn Tám")
    phone.fill("#phone", "12345")
    phone.click("button[type=submit]")
    phone.wait_for_selector("#errors")
    assert phone.inner_text("#e-phone").startswith("⚠ A phone number has 10 digits")
    assert "Số điện thoại gồm 10 chữ số" in phone.inner_text("#e-phone")
    assert phone.get_attribute("#phone", "aria-invalid") == "true"
    assert phone.get_attribute("#phone", "aria-describedby") == "e-phone"
    assert phone.input_value("#name") == "Lê Văn Tám"  # what was typed stays
    for field in ("dob", "sex", "id_number", "province", "contact_case", "consent"):
        assert phone.locator(f"#e-{field}").count() == 1, field
    assert phone.evaluate("document.activeElement.id") == "errors"  # a screen reader hears them first
    phone.screenshot(path=str(SHOTS / "declaration-errors-375.png"), full_page=True)


# --- the roster ---------------------------------------------------------------------------

def _form_token(collector, path: str = "/d") -> str:
    page = requests.get(collector.url + path, timeout=10).text
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def _declare(collector, person: dict, **extra) -> requests.Response:
    data = {**person, "token": _form_token(collector), **extra}
    return requests.post(f"{collector.url}/d", data=data, timeout=10)


@pytest.mark.parametrize("collector", ENGINES, indirect=True)
def test_a_roster_person_is_missing_until_they_declare_then_declared(collector):
    today = datetime.now(timezone.utc).astimezone(REPORT_TZ).date()
    csv_text = ("id_number,name,phone,commune,kind,start,end\n"
                f"079190000123,Nguyễn Thị Ngọc Ánh,0901234567,{COMMUNE},home,{today - timedelta(days=3)},{today + timedelta(days=10)}\n"
                f"079185000777,Phạm Văn Đức,0912345678,Phường Sài Gòn,centralised,{today},{today + timedelta(days=13)}\n"
                f"079170000555,Trương Thị Hoa,0987654321,{COMMUNE},lockdown,{today - timedelta(days=20)},{today - timedelta(days=1)}\n")
    r = requests.post(f"{collector.url}/v1/roster", data=csv_text.encode(), headers={**ADMIN, "Content-Type": "text/csv"}, timeout=10)
    assert r.json() == {"stored": 3}

    def status() -> dict:
        r = requests.get(f"{collector.url}/v1/roster/status", headers=ADMIN, timeout=10)
        assert r.status_code == 200, r.text
        [commune] = r.json()["communes"]
        assert commune["commune_name"] == "Phường Sài Gòn"
        return {k: sorted(p["name"] for p in commune[k]) for k in ("declared", "symptoms", "missing")}

    # Trương Thị Hoa's quarantine ended yesterday: she is on no one's list today.
    assert status() == {"declared": [], "symptoms": [], "missing": ["Nguyễn Thị Ngọc Ánh", "Phạm Văn Đức"]}
    assert _declare(collector, PERSON).status_code == 200
    assert status() == {"declared": ["Nguyễn Thị Ngọc Ánh"], "symptoms": [], "missing": ["Phạm Văn Đức"]}
    duc = {**PERSON, "name": "Phạm Văn Đức", "id_number": "079185000777", "phone": "0912345678"}
    assert _declare(collector, duc, sym=["cough", "fatigue"]).status_code == 200
    assert status() == {"declared": ["Nguyễn Thị Ngọc Ánh", "Phạm Văn Đức"], "symptoms": ["Phạm Văn Đức"],
                        "missing": []}
    # The roster keeps no ID number and the status shows none.
    raw = requests.get(f"{collector.url}/v1/roster/status", headers=ADMIN, timeout=10).text
    assert "079185000777" not in raw and "0912345678" not in raw


def test_roster_import_refuses_a_bad_line_and_stores_nothing(collector):
    bad = ("id_number,name,phone,commune,kind,start,end\n"
           f"079190000123,Nguyễn Thị Ngọc Ánh,0901234567,{COMMUNE},home,2026-03-01,2026-03-14\n"
           "079185000777,Phạm Văn Đức,0912345678,Phường Không Có,home,2026-03-01,2026-03-14\n")
    r = requests.post(f"{collector.url}/v1/roster", data=bad.encode(), headers={**ADMIN, "Content-Type": "text/csv"}, timeout=10)
    assert r.status_code == 400 and "line 3" in r.json()["detail"] and "Phường Không Có" in r.json()["detail"]
    assert roster.people(collector.store, date(2026, 3, 2)) == []
    assert requests.get(f"{collector.url}/v1/roster/status", timeout=10).status_code == 401


def test_roster_cli_import_and_status(collector, tmp_path, capsys):
    from collector import cli

    today = datetime.now(timezone.utc).astimezone(REPORT_TZ).date()
    f = tmp_path / "cach-ly.csv"
    f.write_text("id_number,name,phone,commune,kind,start,end\n"
                 f"079190000123,Nguyễn Thị Ngọc Ánh,0901234567,{COMMUNE},home,{today},{today}\n", encoding="utf-8")
    db = collector.store.url
    assert cli.main(["roster", "import", str(f), "--db", db]) == 0
    assert cli.main(["roster", "status", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "1 on the roster, 0 declared" in out and "not declared: Nguyễn Thị Ngọc Ánh" in out


# --- attacks ------------------------------------------------------------------------------

@pytest.mark.parametrize("collector", ENGINES, indirect=True)
def test_a_submitted_form_cannot_be_replayed(collector):
    data = {**PERSON, "token": _form_token(collector)}
    first = requests.post(f"{collector.url}/d", data=data, timeout=10)
    assert first.status_code == 200 and "data:image/png;base64," in first.text
    # The same POST again (a resent or captured submission), or with someone else's name.
    again = requests.post(f"{collector.url}/d", data=data, timeout=10)
    other = requests.post(f"{collector.url}/d", data={**data, "name": "Kẻ Giả Mạo", "id_number": "001099000001"},
                          timeout=10)
    for r in (again, other):
        assert r.status_code == 409 and "đã được gửi" in r.text and "already sent" in r.text
        assert "data:image/png" not in r.text
    forged = requests.post(f"{collector.url}/d", data={**data, "token": data["token"][:-4] + "0000"}, timeout=10)
    assert forged.status_code == 400 and "data:image/png" not in forged.text
    none = requests.post(f"{collector.url}/d", data={**PERSON}, timeout=10)
    assert none.status_code == 400
    with collector.store.engine.connect() as conn:
        import sqlalchemy as sa

        assert conn.execute(sa.select(sa.func.count()).select_from(declarations.declarations)).scalar() == 1


def test_an_old_form_is_refused(collector):
    old = declarations.new_token(collector.store, now=datetime.now(timezone.utc) - declarations.TOKEN_TTL - timedelta(minutes=1))
    r = requests.post(f"{collector.url}/d", data={**PERSON, "token": old}, timeout=10)
    assert r.status_code == 400 and "hết hạn" in r.text


def test_the_hd1_binds_the_id_so_it_is_not_someone_elses(collector):
    """The signed declaration carries the keyed hash of the ID it was made for: a
    declaration of one person names a different subject than anyone else's."""
    from kiosk.checks import hd1
    from kiosk.checks.trust import TrustStore

    now = datetime.now(timezone.utc)
    trust = TrustStore.from_list(declarations.with_issuer(b"[]", collector.store), now=now)
    form = {k: [v] for k, v in PERSON.items()}
    a = declarations.issue(collector.store, declarations.validate(form, now=now)[0], now=now)
    b = declarations.issue(collector.store, declarations.validate(
        {**form, "id_number": ["079190000124"]}, now=now)[0], now=now)
    ca, cb = hd1.check(a.text, now=now, trust=trust), hd1.check(b.text, now=now, trust=trust)
    assert ca.failed is None and cb.failed is None
    assert ca.credential.subject_key != cb.credential.subject_key
    key, _ = declarations.issuer_key(collector.store)
    assert ca.credential.subject_key == "hd1:" + hd1.hash_id("079190000123", hd1.idh_key(key))


def test_the_form_is_rate_limited_per_address(collector, monkeypatch):
    monkeypatch.setattr(declarations, "FORM_PER_ADDRESS", 3)
    codes = [requests.post(f"{collector.url}/d", data={"name": "x"}, timeout=10).status_code for _ in range(5)]
    assert codes == [422, 422, 422, 429, 429]
    r = requests.post(f"{collector.url}/d", data={"name": "x"}, timeout=10)
    assert int(r.headers["Retry-After"]) > 0 and "too many declarations" in r.json()["detail"]


def test_a_huge_body_is_refused_before_it_is_read(collector):
    r = requests.post(f"{collector.url}/d", data={"name": "A" * 20_000}, timeout=10)
    assert r.status_code == 413
    r = requests.post(f"{collector.url}/d", json=PERSON, timeout=10)
    assert r.status_code == 415


def test_a_bad_venue_in_the_url_is_a_404_not_a_form(collector):
    assert requests.get(f"{collector.url}/d/-bad", timeout=10).status_code == 404
    assert requests.get(f"{collector.url}/d/{VENUE}", params={"lang": "fr"}, timeout=10).status_code == 422
    assert requests.get(f"{collector.url}/d/communes/99.json", timeout=10).status_code == 404


# --- pure parts ---------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(PERSON) + ["travel", "sym", "venue", "x"]),
                       st.lists(TEXT, max_size=3), max_size=14))
def test_validate_answers_any_form_with_a_declaration_or_field_errors(form):
    decl, errors = declarations.validate(form, now=datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert (decl is None) == bool(errors)
    assert all(isinstance(vi, str) and isinstance(en, str) and vi != en for vi, en in errors.values())


def test_the_2025_units_come_from_vietnam_provinces():
    assert len(divisions.provinces()) == 34
    assert divisions.province_name("79") == "Thành phố Hồ Chí Minh"
    assert sum(len(divisions.communes(p)) for p, _ in divisions.provinces()) == 3321


def test_issuer_adds_the_forms_key_to_a_trust_list(tmp_path, capsys):
    from collector import cli
    from kiosk.checks.trust import parse_list

    db = f"sqlite:///{tmp_path / 'c.db'}"
    trust = tmp_path / "trust.json"
    trust.write_text("[]", encoding="utf-8")
    assert cli.main(["issuer", "--trust", str(trust), "--db", db]) == 0
    assert cli.main(["issuer", "--trust", str(trust), "--db", db]) == 0  # once, not twice
    entries, _ = parse_list(trust.read_bytes())
    assert [e[1] for e in entries] == ["HD1"]


def test_poster_command_writes_a_pdf_and_a_png_whose_qr_reads_back(tmp_path, capsys):
    from collector import cli

    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert cli.main(["poster", "--venue", VENUE, "--out", str(tmp_path / "p.pdf"), "--db", db,
                     "--base-url", "https://khaibao.example/"]) == 0
    assert (tmp_path / "p.pdf").read_bytes().startswith(b"%PDF")
    assert cli.main(["poster", "--venue", VENUE, "--out", str(tmp_path / "p.png"), "--db", db,
                     "--base-url", "https://khaibao.example"]) == 0
    assert _decode(tmp_path / "p.png") == [f"https://khaibao.example/d/{VENUE}"]
    assert cli.main(["poster", "--venue=-bad", "--out", str(tmp_path / "x.png"), "--db", db]) == 2


def test_retention_clears_who_declared_and_keeps_the_counts(collector, capsys):
    from collector import cli

    assert _declare(collector, PERSON).status_code == 200
    with collector.store.engine.connect() as conn:
        import sqlalchemy as sa

        [row] = conn.execute(sa.select(declarations.declarations)).mappings().all()
    assert row["personal"] and row["person_key"] and row["name_masked"]
    later = datetime.now(timezone.utc) + timedelta(days=22)
    assert declarations.purge_personal(collector.store, before=later) == 1
    with collector.store.engine.connect() as conn:
        [row] = conn.execute(sa.select(declarations.declarations)).mappings().all()
    assert (row["personal"], row["person_key"], row["name_masked"]) == (None, None, None)
    assert row["commune"] == COMMUNE  # the day's count per commune stays
    assert cli.main(["retention", "--days", "21", "--db", collector.store.url]) == 0
    assert "0 declarations older than 21 days" in capsys.readouterr().out


def test_officials_register_the_roster_on_the_admin_page_and_see_who_is_missing(collector, tmp_path):
    today = datetime.now(timezone.utc).astimezone(REPORT_TZ).date()
    f = tmp_path / "cach-ly.csv"
    f.write_text("id_number,name,phone,commune,kind,start,end\n"
                 f"079185000777,Phạm Văn Đức,0912345678,{COMMUNE},lockdown,{today},{today}\n", encoding="utf-8")
    sync_api = browser_or_fail()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(http_credentials={"username": "officer", "password": ADMIN_TOKEN})
        page = context.new_page()
        page.goto(f"{collector.url}/v1/roster")
        page.set_input_files("#csv", str(f))
        page.click("#up button")
        page.wait_for_selector("tr.missing")
        assert "Phạm Văn Đức" in page.inner_text("tr.missing") and "phong tỏa" in page.inner_text("tr.missing")
        page.screenshot(path=str(SHOTS / "roster-admin.png"), full_page=True)
        context.close()
        browser.close()


def test_the_kiosk_idle_screen_qr_opens_the_form_for_its_venue(collector, tmp_path):
    """The kiosk's own idle QR (venue.checkin_url = the collector's /d/<venue>), drawn by
    the kiosk's screen code, reads back to the form with the venue filled in."""
    from collector.form import venue_url
    from kiosk.demo.screens import write_screens

    url = venue_url(collector.url, VENUE)
    [idle] = [p for p in write_screens(tmp_path, [(800, 480)], venue_name="Bệnh viện Chợ Rẫy", checkin_url=url,
                                       nested=False) if p.name == "idle.png"]
    assert _decode(idle) == [url]
    page = requests.get(url, timeout=10).text
    assert f'name="venue" value="{VENUE}"' in page and "Bệnh viện Chợ Rẫy" in page


def test_the_longest_real_form_fits_the_body_limit_and_a_large_roster_is_taken(collector):
    """A 100-letter Vietnamese name, a 200-letter address, every province and symptom fit
    the 4 KiB the form route takes; a roster CSV of 2,000 people goes through its own limit."""
    from urllib.parse import urlencode

    from collector.limits import DEFAULT_LIMIT

    data = {**PERSON, "name": ("Nguyễn Thị Ngọc Ánh " * 6)[:100].strip(), "street": ("Đường Nguyễn Thị Minh Khai " * 8)[:200],
            "travel": [p for p, _ in divisions.provinces()], "sym": [c for c, _, _ in declarations.SYMPTOMS],
            "token": _form_token(collector)}
    body = urlencode(data, doseq=True).encode()
    assert len(body) < DEFAULT_LIMIT.max_body
    r = requests.post(f"{collector.url}/d", data=body, timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and "data:image/png;base64," in r.text
    rows = "".join(f"0791900{i:05d},Nguyễn Văn {chr(65 + i % 26)},09{i:08d},{COMMUNE},home,2026-03-01,2026-03-14\n"
                   for i in range(2000))
    csv_body = ("id_number,name,phone,commune,kind,start,end\n" + rows).encode()
    r = requests.post(f"{collector.url}/v1/roster", data=csv_body, headers={**ADMIN, "Content-Type": "text/csv"}, timeout=30)
    assert len(csv_body) > 100_000 and r.status_code == 200 and r.json() == {"stored": 2000}
