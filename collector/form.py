"""The citizens' declaration form, served by the collector (`collector.app` installs it).

    GET  /d               the form (Vietnamese; `?lang=en` English)
    GET  /d/{VENUE}       the form from a venue's QR (kiosk idle screen, poster): the
                          declaration also records a check-in at that venue
    POST /d               submit (application/x-www-form-urlencoded, one-use token)
    GET  /d/last          the last declaration this phone kept (works offline)
    GET  /d/communes/{province}.json, /d/app.js, /d/sw.js
    GET  /v1/roster/status?date=   per commune: declared, symptoms, missing (admin)
    GET  /v1/roster (admin page)   POST /v1/roster (CSV import, admin)

The page is plain HTML with a little CSS and one small script (no framework): it
works without the script; the script keeps what the person typed on their own phone
(localStorage, never the server) to pre-fill the next day's declaration, keeps the
last QR for the gate, and loads a province's communes.

    >>> venue_url("https://collector.example/", "BV-CHORAY")
    'https://collector.example/d/BV-CHORAY'
"""

from __future__ import annotations

import base64
import html
import io
from datetime import date, datetime, timedelta
from pathlib import Path as FsPath
from typing import Annotated, Any, Callable, Mapping, Optional
from urllib.parse import parse_qs, quote

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from collector import declarations as decl_mod
from collector import divisions, roster as roster_mod, validation
from collector.limits import csv_text
from collector.storage import REPORT_TZ

__all__ = ["install", "venue_url", "render_form", "render_result", "qr_png", "FORM_PATH"]

FORM_PATH = "/d"
STATIC = FsPath(__file__).with_name("static")
#: Longest roster CSV accepted by POST /v1/roster.
MAX_ROSTER_CSV_BYTES = 16 * 1024 * 1024
#: Pixels per QR module in the result's PNG: a version-10 code comes out about 400 px,
#: which a kiosk camera reads off a phone screen at arm's length.
QR_SCALE = 6
LANGS = ("vi", "en")


def venue_url(base: str, venue: str) -> str:
    """The URL a venue's QR (kiosk idle screen: `venue.checkin_url`; poster) opens."""
    return f"{base.rstrip('/')}{FORM_PATH}/{quote(venue, safe='')}"


#: Every line of the page: key -> (Vietnamese, English).
T: Mapping[str, tuple[str, str]] = {
    "title": ("Khai báo y tế", "Health declaration"),
    "lead": ("Khai báo trung thực để bảo vệ bạn và cộng đồng. Các mục có dấu * là bắt buộc.",
             "Declare truthfully to protect yourself and others. Fields marked * are required."),
    "other_lang": ("English", "Tiếng Việt"),
    "venue": ("Địa điểm", "Venue"),
    "venue_note": ("Tờ khai này cũng ghi nhận bạn đến địa điểm này.",
                   "This declaration also records your visit to this venue."),
    "unregistered": ("Địa điểm chưa đăng ký", "Venue not registered"),
    "unregistered_why": ("Mã QR này không phải của một địa điểm đã đăng ký với Sở Y tế, nên không thể ghi nhận "
                         "lượt vào ở đây. Bạn vẫn có thể khai báo y tế.",
                         "This QR code is not a venue registered with the health department, so it cannot "
                         "check you in here. You can still make a health declaration."),
    "plain_form": ("Khai báo y tế (không gắn địa điểm)", "Health declaration (no venue)"),
    "person": ("Thông tin cá nhân", "About you"),
    "name": ("Họ và tên *", "Full name *"),
    "dob": ("Ngày sinh *", "Date of birth *"),
    "sex": ("Giới tính *", "Sex *"),
    "id_number": ("Số CCCD hoặc hộ chiếu *", "ID card (CCCD) or passport number *"),
    "id_hint": ("CCCD: 12 chữ số", "CCCD: 12 digits"),
    "phone": ("Số điện thoại *", "Phone number *"),
    "address": ("Nơi ở hiện nay", "Where you live now"),
    "province": ("Tỉnh/thành phố *", "Province or city *"),
    "commune": ("Phường/xã *", "Commune or ward *"),
    "choose": ("— Chọn —", "— Choose —"),
    "street": ("Số nhà, đường, thôn/ấp", "House number, street, village"),
    "travel": ("Trong 14 ngày qua, bạn đã đến tỉnh/thành phố nào khác?",
               "Which other provinces have you been to in the last 14 days?"),
    "travel_hint": ("Bỏ trống nếu không đi đâu.", "Leave empty if none."),
    "sym": ("Trong 14 ngày qua, bạn có triệu chứng nào?", "Any symptoms in the last 14 days?"),
    "sym_hint": ("Đánh dấu tất cả triệu chứng bạn có.", "Tick every symptom you have had."),
    "contact_case": ("Bạn có tiếp xúc với người bệnh hoặc nghi nhiễm COVID-19 không? *",
                     "Have you been in contact with a confirmed or suspected case? *"),
    "contact_area": ("Bạn có tiếp xúc với người từ vùng có dịch không? *",
                     "Have you been in contact with someone from an outbreak area? *"),
    "yes": ("Có", "Yes"), "no": ("Không", "No"),
    "consent": ("Tôi cam kết thông tin khai báo là đúng sự thật và đồng ý để ngành y tế sử dụng "
                "cho phòng chống dịch. *",
                "I confirm that what I declared is true and agree that the health department uses it "
                "to fight the epidemic. *"),
    "submit": ("Gửi tờ khai", "Send declaration"),
    "errors": ("Hãy sửa các mục sau:", "Please correct the following:"),
    "done": ("Đã khai báo", "Declared"),
    "show": ("Đưa mã QR này cho máy quét ở cửa.", "Show this QR code to the scanner at the door."),
    "declared_at": ("Khai lúc", "Declared at"),
    "valid_until": ("Có giá trị đến", "Valid until"),
    "save": ("Lưu ảnh mã QR", "Save the QR as an image"),
    "again": ("Khai báo lại", "Declare again"),
    "no_sym": ("Không có triệu chứng nào", "No symptoms at all"),
    "repeat": ("Bạn đã khai báo tại địa điểm này lúc {at}: lượt vào không được ghi thêm lần nữa.",
               "You already checked in here at {at}: no second check-in was recorded."),
    "offline_last": ("Không có mạng. Đây là tờ khai bạn đã lưu lần trước, KHÔNG phải khai báo mới: "
                     "chưa ghi nhận bạn đến địa điểm này.",
                     "No connection. This is the declaration you kept before, NOT a new one: your visit "
                     "here has not been recorded."),
    "kept": ("Mã này được lưu trên điện thoại để xem lại khi không có mạng.",
             "This phone keeps the code to show it again without a connection."),
    "last": ("Tờ khai gần nhất", "Your last declaration"),
    "none_kept": ("Điện thoại này chưa lưu tờ khai nào.", "This phone has kept no declaration yet."),
    "status_green": ("Không có triệu chứng, không tiếp xúc.", "No symptoms, no contact."),
    "status_yellow": ("Có tiếp xúc với người từ vùng có dịch.", "Contact with someone from an outbreak area."),
    "status_red": ("Có triệu chứng hoặc tiếp xúc với ca bệnh: hãy liên hệ cơ sở y tế.",
                   "Symptoms or contact with a case: please contact a health facility."),
    "refused": ("Không gửi được tờ khai", "The declaration was not sent"),
    "reload": ("Mở lại biểu mẫu", "Open the form again"),
    "prefilled": ("Đã điền sẵn từ lần khai trước trên điện thoại này.",
                  "Filled in from your last declaration on this phone."),
}


def _t(key: str, lang: str) -> str:
    vi, en = T[key]
    return en if lang == "en" else vi


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, body: str, lang: str) -> str:
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<title>{_e(title)}</title><style>{_css()}</style></head>'
            f'<body><main id="main">{body}</main><script src="{FORM_PATH}/app.js" defer></script></body></html>')


_CSS_CACHE: list[str] = []


def _css() -> str:
    if not _CSS_CACHE:
        _CSS_CACHE.append((STATIC / "form.css").read_text(encoding="utf-8"))
    return _CSS_CACHE[0]


def _error(field: str, errors: Mapping[str, tuple[str, str]], lang: str) -> str:
    if field not in errors:
        return ""
    vi, en = errors[field]
    first, second = (en, vi) if lang == "en" else (vi, en)
    return (f'<p class="err" id="e-{field}"><span aria-hidden="true">⚠ </span>{_e(first)}'
            f'<span class="alt" lang="{"vi" if lang == "en" else "en"}"> — {_e(second)}</span></p>')


def _attrs(field: str, errors: Mapping[str, Any]) -> str:
    return f' aria-invalid="true" aria-describedby="e-{field}"' if field in errors else ""


def _text_input(field: str, kind: str, values: Mapping[str, Any], errors: Mapping[str, Any], lang: str,
                extra: str = "", hint: str = "") -> str:
    hint_html = f'<span class="hint" id="h-{field}">{_e(_t(hint, lang))}</span>' if hint else ""
    described = f' aria-describedby="{"e-" + field + " " if field in errors else ""}h-{field}"' if hint else ""
    attrs = _attrs(field, errors) if not hint else (' aria-invalid="true"' if field in errors else "") + described
    return (f'<div class="f"><label for="{field}">{_e(_t(field, lang))}</label>{hint_html}'
            f'<input id="{field}" name="{field}" type="{kind}" value="{_e(values.get(field, ""))}"{extra}{attrs}>'
            f'{_error(field, errors, lang)}</div>')


def _choices(field: str, kind: str, options: list[tuple[str, str]], chosen: set[str], errors: Mapping[str, Any],
             legend: str, lang: str, hint: str = "", cls: str = "") -> str:
    items = "".join(
        f'<label class="c"><input type="{kind}" name="{field}" value="{_e(code)}"'
        f'{" checked" if code in chosen else ""}{" required" if kind == "radio" else ""}> {_e(label)}</label>'
        for code, label in options)
    hint_html = f'<p class="hint">{_e(_t(hint, lang))}</p>' if hint else ""
    return (f'<fieldset class="f {cls}" id="{field}"{_attrs(field, errors)}><legend>{_e(legend)}</legend>'
            f'{hint_html}<div class="cs">{items}</div>{_error(field, errors, lang)}</fieldset>')


def render_form(*, lang: str = "vi", venue: str | None = None, venue_name: str | None = None, token: str,
                values: Mapping[str, Any] | None = None, errors: Mapping[str, tuple[str, str]] | None = None,
                notice: tuple[str, str] | None = None) -> str:
    """The form page (`values`: what was submitted, to show it again with `errors`)."""
    values, errors = dict(values or {}), dict(errors or {})
    one = {k: (v[0] if isinstance(v, list) and v else v) for k, v in values.items() if k not in ("travel", "sym")}
    other = "en" if lang == "vi" else "vi"
    here = f"{FORM_PATH}/{quote(venue, safe='')}" if venue else FORM_PATH
    parts = [f'<p class="lang"><a href="{here}?lang={other}" lang="{other}" hreflang="{other}">'
             f'{_e(_t("other_lang", lang))}</a></p>',
             f'<h1>{_e(_t("title", lang))}</h1><p>{_e(_t("lead", lang))}</p>',
             f'<p class="kept" id="last-link" hidden><a href="{FORM_PATH}/last?lang={lang}">{_e(_t("last", lang))}</a></p>',
             f'<p class="note" id="prefilled" hidden>{_e(_t("prefilled", lang))}</p>']
    if notice:
        parts.append(f'<div class="box bad" role="alert"><h2>{_e(_t("refused", lang))}</h2>'
                     f'<p>{_e(notice[1] if lang == "en" else notice[0])}</p>'
                     f'<p class="alt" lang="{other}">{_e(notice[0] if lang == "en" else notice[1])}</p></div>')
    if errors:
        links = "".join(f'<li><a href="#{k}">{_e(_t(k, lang).rstrip(" *?.:") if k in T else k)}: '
                        f'{_e(v[1] if lang == "en" else v[0])}</a></li>' for k, v in errors.items())
        parts.append(f'<div class="box bad" role="alert" tabindex="-1" id="errors"><h2>{_e(_t("errors", lang))}</h2>'
                     f'<ul>{links}</ul></div>')
    if venue:
        parts.append(f'<p class="box venue"><strong>{_e(_t("venue", lang))}: {_e(venue_name or venue)}</strong>'
                     f'<br>{_e(_t("venue_note", lang))}</p>')
    provinces = list(divisions.provinces())
    chosen_p = one.get("province", "")
    p_opts = "".join(f'<option value="{c}"{" selected" if c == chosen_p else ""}>{_e(n)}</option>' for c, n in provinces)
    c_opts = "".join(f'<option value="{c}"{" selected" if c == one.get("commune") else ""}>{_e(n)}</option>'
                     for c, n in divisions.communes(chosen_p))
    sexes = [(code, en if lang == "en" else vi) for code, vi, en in decl_mod.SEXES]
    symptoms = [(code, en if lang == "en" else vi) for code, vi, en in decl_mod.SYMPTOMS]
    yes_no = [("yes", _t("yes", lang)), ("no", _t("no", lang))]
    form = [
        # novalidate: the page's own bilingual errors, next to each field, not the browser's
        # English bubble (the attributes stay for keyboards, autofill and :invalid styling).
        f'<form method="post" action="{FORM_PATH}" id="decl" accept-charset="utf-8" novalidate>',
        f'<input type="hidden" name="token" value="{_e(token)}"><input type="hidden" name="lang" value="{lang}">',
        f'<input type="hidden" name="venue" value="{_e(venue)}">' if venue else "",
        f'<fieldset class="g"><legend>{_e(_t("person", lang))}</legend>',
        _text_input("name", "text", one, errors, lang, ' autocomplete="name" required maxlength="100"'),
        _text_input("dob", "date", one, errors, lang,
                    f' autocomplete="bday" required min="1900-01-01" max="{datetime.now(REPORT_TZ).date().isoformat()}"'),
        _choices("sex", "radio", sexes, {one.get("sex", "")}, errors, _t("sex", lang), lang, cls="row"),
        _text_input("id_number", "text", one, errors, lang,
                    ' autocomplete="off" required maxlength="14" pattern="\\s*(\\d{12}|\\d{9}|[A-Za-z0-9]{6,9})\\s*"'
                    ' autocapitalize="characters"', hint="id_hint"),
        _text_input("phone", "tel", one, errors, lang,
                    ' autocomplete="tel" inputmode="tel" required maxlength="16" pattern="\\s*(0|\\+?84)[\\d .\\-]{9,12}\\s*"'),
        '</fieldset>',
        f'<fieldset class="g"><legend>{_e(_t("address", lang))}</legend>',
        f'<div class="f"><label for="province">{_e(_t("province", lang))}</label>'
        f'<select id="province" name="province" required{_attrs("province", errors)}>'
        f'<option value="">{_e(_t("choose", lang))}</option>{p_opts}</select>{_error("province", errors, lang)}</div>',
        f'<div class="f"><label for="commune">{_e(_t("commune", lang))}</label>'
        f'<select id="commune" name="commune" required{_attrs("commune", errors)}>'
        f'<option value="">{_e(_t("choose", lang))}</option>{c_opts}</select>{_error("commune", errors, lang)}</div>',
        _text_input("street", "text", one, errors, lang, ' autocomplete="street-address" maxlength="200"'),
        '</fieldset>',
        '<details class="f"' + (" open" if values.get("travel") or "travel" in errors else "") +
        f'><summary>{_e(_t("travel", lang))}</summary>' +
        _choices("travel", "checkbox", provinces, set(values.get("travel") or ()), errors, _t("travel", lang),
                 lang, hint="travel_hint", cls="cols") + '</details>',
        _choices("sym", "checkbox", symptoms + [("none", _t("no_sym", lang))], set(values.get("sym") or ()), errors,
                 _t("sym", lang), lang, hint="sym_hint"),
        _choices("contact_case", "radio", yes_no, {one.get("contact_case", "")}, errors, _t("contact_case", lang),
                 lang, cls="row"),
        _choices("contact_area", "radio", yes_no, {one.get("contact_area", "")}, errors, _t("contact_area", lang),
                 lang, cls="row"),
        f'<div class="f consent"><label class="c"><input type="checkbox" id="consent" name="consent" value="yes"'
        f' required{_attrs("consent", errors)}> {_e(_t("consent", lang))}</label>{_error("consent", errors, lang)}</div>',
        f'<button type="submit">{_e(_t("submit", lang))}</button></form>',
    ]
    return _page(_t("title", lang), "".join(parts) + "".join(form), lang)


def qr_png(text: str, *, scale: int = QR_SCALE) -> bytes:
    """The QR of `text` as PNG (ASCII `HD1:` text goes in alphanumeric mode; anything
    else in byte mode as UTF-8, as the kiosk's decoder reads it)."""
    import segno

    extra = {} if text.isascii() else {"mode": "byte", "encoding": "utf-8"}
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False, **extra).save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def _local(ts: datetime) -> str:
    return ts.astimezone(REPORT_TZ).strftime("%H:%M %d/%m/%Y")


def render_result(issued: decl_mod.Issued, *, lang: str = "vi", venue_name: str | None = None) -> str:
    """The result page: the QR large, the masked name, the time, the venue it checked in
    at (or that it did not again); saved on the phone by the script."""
    png = base64.b64encode(qr_png(issued.text)).decode()
    until = issued.declared_at + decl_mod.VALID_FOR
    stamp = issued.declared_at.astimezone(REPORT_TZ).strftime("%Y%m%d-%H%M")
    where = ""
    if issued.venue:
        where = (f'<p class="box venue" id="where"><strong>{_e(_t("venue", lang))}: {_e(venue_name or issued.venue)}</strong>'
                 f'<br>{_e(_t("venue_note", lang))}</p>')
    if issued.repeat_of is not None:
        where += (f'<p class="box note" role="status" id="repeat">'
                  f'{_e(_t("repeat", lang).format(at=_local(issued.repeat_of)))}</p>')
    body = (
        f'<h1>{_e(_t("done", lang))}</h1>{where}'
        f'<div class="qr status-{issued.status}" id="result" data-name="{_e(issued.name_masked)}"'
        f' data-at="{_e(_local(issued.declared_at))}" data-until="{_e(_local(until))}" data-status="{issued.status}">'
        f'<img id="qr" src="data:image/png;base64,{png}" alt="{_e(_t("show", lang))}">'
        f'<p class="who">{_e(issued.name_masked)}</p>'
        f'<p>{_e(_t("declared_at", lang))}: <strong>{_e(_local(issued.declared_at))}</strong><br>'
        f'{_e(_t("valid_until", lang))}: {_e(_local(until))}</p>'
        f'<p class="st">{_e(_t("status_" + issued.status, lang))}</p></div>'
        f'<p>{_e(_t("show", lang))}</p>'
        f'<p><a class="btn" id="save" download="to-khai-y-te-{stamp}.png" href="data:image/png;base64,{png}">'
        f'{_e(_t("save", lang))}</a></p>'
        f'<p class="hint">{_e(_t("kept", lang))}</p>'
        f'<p><a class="btn secondary" href="{FORM_PATH}{"/" + quote(issued.venue, safe="") if issued.venue else ""}?lang={lang}">'
        f'{_e(_t("again", lang))}</a></p>')
    return _page(_t("done", lang), body, lang)


def render_unregistered(venue: str, lang: str = "vi") -> str:
    """A venue QR whose code is not in the registry: no form that would check in there."""
    body = (f'<h1>{_e(_t("unregistered", lang))}</h1><p class="box" role="alert">{_e(_t("unregistered_why", lang))}'
            f' <code>{_e(venue)}</code></p><p><a class="btn" href="{FORM_PATH}?lang={lang}">{_e(_t("plain_form", lang))}</a></p>')
    return _page(_t("unregistered", lang), body, lang)


def render_last(lang: str = "vi") -> str:
    """The offline page: the script shows the QR this phone kept (nothing comes from the server)."""
    body = (f'<h1>{_e(_t("last", lang))}</h1>'
            f'<p class="box bad" role="alert" id="offline-note" hidden>{_e(_t("offline_last", lang))}</p>'
            f'<div class="qr" id="kept" hidden><img id="kept-qr" alt="QR">'
            f'<p class="who" id="kept-name"></p><p>{_e(_t("declared_at", lang))}: <strong id="kept-at"></strong><br>'
            f'{_e(_t("valid_until", lang))}: <span id="kept-until"></span></p></div>'
            f'<p id="none-kept">{_e(_t("none_kept", lang))}</p>'
            f'<p><a class="btn secondary" href="{FORM_PATH}?lang={lang}">{_e(_t("again", lang))}</a></p>')
    return _page(_t("last", lang), body, lang)


ROSTER_KINDS = {"home": "cách ly tại nhà", "centralised": "cách ly tập trung", "lockdown": "phong tỏa"}
_UPLOAD = """<script>document.getElementById('up').addEventListener('submit',function(ev){ev.preventDefault();
var f=document.getElementById('csv').files[0],out=document.getElementById('upres');if(!f){return;}
f.text().then(function(t){return fetch('/v1/roster',{method:'POST',body:t,headers:{'Content-Type':'text/csv'}});})
.then(function(r){return r.json().then(function(j){out.textContent=r.ok?('Đã lưu '+j.stored+' người / stored '+j.stored):j.detail;
if(r.ok){location.reload();}});});});</script>"""


def render_roster(status: Mapping[str, Any]) -> str:
    """The roster page (Vietnamese, for officials): one table per commune."""
    t = status["totals"]
    parts = [f'<h1>Danh sách cách ly: {_e(status["day"])}</h1>',
             f'<p>{t["people"]} người; đã khai {t["declared"]}, có triệu chứng {t["symptoms"]}, '
             f'chưa khai <strong>{t["missing"]}</strong>.</p>',
             '<form id="up" class="box venue"><label for="csv">Nhập danh sách (CSV: id_number,name,phone,commune,'
             'kind,start,end)</label><input type="file" id="csv" accept=".csv,text/csv">'
             '<button type="submit">Tải lên</button><p id="upres" role="status"></p></form>']
    for g in status["communes"]:
        rows = []
        for key, label in (("missing", "Chưa khai"), ("symptoms", "Có triệu chứng"), ("declared", "Đã khai")):
            for p in g[key]:
                note = f'<br><small class="note">{_e(p["note"])}</small>' if p.get("note") else ""
                rows.append(f'<tr class="{key}"><td>{_e(label)}{note}</td><td>{_e(p["name"])}</td><td>{_e(p["phone"])}</td>'
                            f'<td>{_e(ROSTER_KINDS.get(p["kind"], p["kind"]))}</td></tr>')
        parts.append(f'<h2>{_e(g["commune_name"])}, {_e(g["province_name"])}</h2>'
                     '<table><thead><tr><th scope="col">Tình trạng</th><th scope="col">Họ tên</th>'
                     '<th scope="col">Điện thoại</th><th scope="col">Hình thức</th></tr></thead>'
                     f'<tbody>{"".join(rows)}</tbody></table>')
    return (f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>Danh sách cách ly</title><style>{_css()}'
            'table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ccc;padding:.4rem;text-align:left}'
            f'tr.missing td:first-child{{color:#a00;font-weight:700}}</style></head><body><main>{"".join(parts)}</main>'
            f'{_UPLOAD}</body></html>')


# --- routes --------------------------------------------------------------------------------

LANG = Annotated[str, Query(pattern="^(vi|en)$", description="vi (default) or en")]
HTML = {"content": {"text/html": {}}}


def install(app: FastAPI, *, store: Any, clock: Callable[[], datetime], admin: Callable[..., None],
            seal_private_key: str = "") -> None:
    """Add the form's routes and the roster's admin routes to the collector app."""
    decl_mod.ensure_tables(store.engine)
    roster_mod.ensure_tables(store.engine)

    def html_page(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-store"})

    def venue_name(code: str | None) -> str | None:
        if not code:
            return None
        from collector import venues

        return (venues.registry(store).get(code) or {}).get("name")

    def registered(code: str) -> bool:
        from collector import venues

        return code in venues.registry(store)

    def form_page(lang: str, venue: str | None) -> HTMLResponse:
        return html_page(render_form(lang=lang, venue=venue, venue_name=venue_name(venue),
                                     token=decl_mod.new_token(store, now=clock())))

    @app.get(FORM_PATH, tags=["form"], response_class=HTMLResponse)
    def declaration_form(lang: LANG = "vi") -> HTMLResponse:
        """The declaration form (mobile-first; Vietnamese, `?lang=en` English)."""
        return form_page(lang, None)

    @app.get(f"{FORM_PATH}/app.js", tags=["form"], include_in_schema=False)
    def app_js() -> Response:
        return Response((STATIC / "form.js").read_bytes(), media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})

    @app.get(f"{FORM_PATH}/sw.js", tags=["form"], include_in_schema=False)
    def service_worker() -> Response:
        return Response((STATIC / "sw.js").read_bytes(), media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @app.get(f"{FORM_PATH}/last", tags=["form"], response_class=HTMLResponse)
    def last_declaration(lang: LANG = "vi") -> HTMLResponse:
        """The last declaration this phone kept (filled in by the page's script, offline too)."""
        return HTMLResponse(render_last(lang), headers={"Cache-Control": "no-cache"})

    @app.get(f"{FORM_PATH}/communes/{{province}}.json", tags=["form"],
             responses={404: {"description": "no such province"}})
    def communes(province: Annotated[str, Path(pattern=r"^\d{2}$")]) -> Response:
        """The communes and wards of a province (2025 units): `[[code, name], ...]`."""
        items = divisions.communes(province)
        if not items:
            raise HTTPException(404, f"no province {province!r}")
        return JSONResponse([list(i) for i in items], headers={"Cache-Control": "public, max-age=86400"})

    @app.get(f"{FORM_PATH}/{{venue}}", tags=["form"], response_class=HTMLResponse,
             responses={404: {"description": "not a venue code"}})
    def venue_form(venue: Annotated[str, Path(max_length=validation.NAME_MAX)], lang: LANG = "vi") -> HTMLResponse:
        """The form opened from a venue's QR: the declaration is also a check-in there."""
        try:
            validation.check_venue_code(venue)
        except ValueError as exc:
            raise HTTPException(404, f"not a venue code: {exc}") from None
        if not registered(venue):
            return html_page(render_unregistered(venue, lang), 404)
        return form_page(lang, venue)

    @app.post(FORM_PATH, tags=["form"], response_class=HTMLResponse,
              openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {
                  "schema": {"type": "object"}}}}},
              responses={200: HTML, 400: HTML, 409: {"description": "this form was already submitted"},
                         413: {"description": "body too large"}, 415: {"description": "not a form"},
                         422: HTML, 429: {"description": "too many declarations from this address"}})
    async def submit(request: Request) -> HTMLResponse:
        """Submit a declaration: the answer is the page with the signed QR (HD1), or the
        form again with an error next to each field, in both languages."""
        now = clock()
        address = request.client.host if request.client else "-"
        wait = await run_in_threadpool(request.app.state.rate_limiter.hit, f"form-addr:{address}",
                                       limit=decl_mod.FORM_PER_ADDRESS, window=decl_mod.FORM_WINDOW_S, now=now)
        if wait:
            raise HTTPException(429, f"quá nhiều tờ khai từ địa chỉ này; thử lại sau {wait} giây / "
                                     f"too many declarations from this address; try again in {wait} s",
                                headers={"Retry-After": str(wait)})
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
        body = await request.body()
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise HTTPException(400, "the form must be UTF-8 text with at most 100 fields") from None
        lang = (form.get("lang") or ["vi"])[0]
        lang = lang if lang in LANGS else "vi"
        venue = (form.get("venue") or [""])[0] or None
        token = (form.get("token") or [""])[0]
        decl, errors = decl_mod.validate(form, now=now)
        if venue and "venue" not in errors and not await run_in_threadpool(registered, venue):
            # Item 4 of issue 23: a check-in only at a venue the department registered.
            return html_page(render_form(lang=lang, venue=None, venue_name=None, token=token, values=form,
                                         notice=T["unregistered_why"]), 422)
        if errors:
            return html_page(render_form(lang=lang, venue=venue if "venue" not in errors else None,
                                         venue_name=venue_name(venue) if "venue" not in errors else None,
                                         token=token, values=form, errors=errors), 422)
        try:
            await run_in_threadpool(decl_mod.use_token, store, token, now=now)
        except decl_mod.FormError as exc:
            return html_page(render_form(lang=lang, venue=venue, venue_name=venue_name(venue),
                                         token=decl_mod.new_token(store, now=now), values=form,
                                         notice=(exc.vi, exc.en)), exc.status)
        issued = await run_in_threadpool(lambda: decl_mod.issue(store, decl, now=now,
                                                                seal_private_key=seal_private_key))
        return html_page(render_result(issued, lang=lang, venue_name=venue_name(issued.venue)))

    # --- the roster (admin) ---
    auth = [Depends(admin)]

    @app.get("/v1/roster/status", tags=["admin"], dependencies=auth)
    def roster_status(day: Annotated[Optional[validation.IsoDate], Query(alias="date")] = None) -> dict[str, Any]:
        """Per commune on `date` (default today, Vietnam time): who on the quarantine roster
        declared, who reported symptoms or a contact, and who has not declared yet."""
        the_day = day if day is not None else clock().astimezone(REPORT_TZ).date()
        return roster_mod.daily_status(store, the_day)

    @app.get("/v1/roster", tags=["admin"], dependencies=auth, response_class=HTMLResponse)
    def roster_page(day: Annotated[Optional[validation.IsoDate], Query(alias="date")] = None) -> HTMLResponse:
        """The officials' roster page: per commune who declared, with symptoms, missing;
        and a CSV upload that registers people (POST /v1/roster)."""
        the_day = day if day is not None else clock().astimezone(REPORT_TZ).date()
        return html_page(render_roster(roster_mod.daily_status(store, the_day)))

    @app.post("/v1/roster", tags=["admin"], dependencies=auth,
              openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
              responses={400: {"description": "a bad line (named); nothing was stored"},
                         403: {"description": "sent by another site's page (Origin, Sec-Fetch-Site)"},
                         413: {"description": "file too large"},
                         415: {"description": "not sent as text/csv"}})
    async def import_roster(request: Request) -> dict[str, int]:
        """Import a roster CSV (id_number,name,phone,commune,kind,start,end): every row or none."""
        text = await csv_text(request, MAX_ROSTER_CSV_BYTES, "roster")
        try:
            stored = await run_in_threadpool(roster_mod.import_csv, store, text, now=clock())
        except roster_mod.RosterError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"stored": stored}
