"""The officers' tracing page (admin token, never cached): a case, by ID number (or a
kiosk subject key) or by venue and time, gives the contacts with their venues and times,
exportable as CSV and XLSX. Reached from the daily report. Vietnamese first, English beside.

    POST /v1/reports/tracing        id_number=079201001234&window_minutes=60  (form fields)
    GET  /v1/reports/tracing?venue=BV-CHORAY&at=2026-03-02T08:15&window_minutes=30
    POST /v1/reports/tracing.csv | .xlsx   (the same fields)   GET with a venue and time too

A case's ID number (or subject key) travels only in a POST body, never in a URL that
browser history and proxy logs keep (issue 23 item 6); a GET that carries one is refused.
The ID number is any the declaration form accepts (CCCD 12 digits, CMND 9, passport): it
finds the case's kiosk scans of the chip ID and the check-ins made on the web form.

A time without an offset (what a browser's date-time field sends) is Vietnam time.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Callable, Optional

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from collector import validation
from collector.report import csv_cell, local_time
from collector.storage import REPORT_TZ

__all__ = ["install", "contact_rows", "HEADER"]

HEADER = ["scanned_at (Vietnam time)", "venue_code", "venue_name", "device_id", "outcome", "reason",
          "name_masked", "personal", "is_case"]
NO_STORE = {"Cache-Control": "no-store"}
#: Words an officer reads instead of the codes kiosks log.
OUTCOME_WORDS = {"pass": "Đạt / pass", "fail": "Không đạt / fail", "review": "Cần kiểm tra / review"}
SELF_DECLARED = "Tự khai báo trên web / self-declared (web form)"
FIELDS = ("id_number", "subject", "venue", "at", "window_minutes")
IN_URL = ("the case's ID number (or subject key) is sent in the form's body (POST), never in the "
          "address: browser history and proxy logs keep addresses")
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")
e = html.escape


def _parse_at(text: str | None, now: datetime) -> datetime | None:
    if not text:
        return None
    text = text.strip()
    try:
        at = (datetime.fromisoformat(text).replace(tzinfo=REPORT_TZ) if _LOCAL_TIME.match(text)
              else datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise HTTPException(400, f"at = {text!r}: expected a time such as 2026-03-02T08:15 (Vietnam time)")
    validation.check_time(("query", "at"), at, now)
    return at


def _subjects(store: Any, id_number: str | None, subject: str | None) -> list[str] | None:
    """The subject keys to trace: every key a person with this ID number can have (the
    chip ID a kiosk reads, the web form's declaration), or the one key given."""
    from collector.declarations import clean_id_number, subject_keys

    if id_number and subject:
        raise HTTPException(400, "give id_number or subject, not both")
    if id_number:
        cleaned = clean_id_number(id_number)
        if cleaned is None:
            raise HTTPException(400, "id_number: a CCCD number has 12 digits, an old CMND 9, a passport "
                                     "number 6-9 letters and digits")
        return subject_keys(store, cleaned)
    return [subject.strip()] if subject and subject.strip() else None


def _short(value: str) -> str:
    """A 64-character hash in a subject key, as its first 8 characters: enough to tell
    two apart on the page, not a wall of hex."""
    return re.sub(r"\b([0-9a-f]{8})[0-9a-f]{56}\b", r"\1…", value)


def contact_rows(store: Any, seal_private_key: str, *, venue: str | None, at: datetime | None,
                 window: timedelta, subject: str | list[str] | None, now: datetime) -> list[list[Any]]:
    """The tracing answer as a table: HEADER, then one row per person, oldest first."""
    from collector import venues as venues_mod
    from collector.tracing import opened_fields, trace
    from kiosk.seal import subject_hash

    keys = [subject] if isinstance(subject, str) else list(subject or [])
    hashes = [subject_hash(store.tracing_key(), k) for k in keys] or None
    try:
        res = trace(store, venue=venue or None, at=at, window=window, subject_hash=hashes, now=now)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    names = venues_mod.registry(store)
    rows: list[list[Any]] = [HEADER]
    for r in res.people:
        opened = opened_fields(r, seal_private_key)
        personal = opened.get("personal", r["personal"])
        if r["sealed"] and not opened["opened"]:
            personal = "(niêm phong / sealed)"
        elif personal:
            try:
                personal = ", ".join(f"{k}: {v}" for k, v in json.loads(personal).items())
            except (ValueError, AttributeError):
                pass
        rows.append([local_time(r["scanned_at"]).strftime("%Y-%m-%d %H:%M:%S"), r["venue_code"],
                     names.get(r["venue_code"], {}).get("name", ""), r["device_id"], r["outcome"], r["reason"],
                     r["name_masked"] or "", personal or "", "yes" if r["is_case"] else ""])
    return rows


def _cells(row: list[Any]) -> list[str]:
    """A contact row as an officer reads it: verdicts and reasons in words, the web form
    named as such, hashes shortened."""
    from kiosk.display.texts import reason_text

    from collector.declarations import FORM_DEVICE

    when, code, name, device, outcome, reason, masked, personal, case = row
    words = reason_text(reason)
    return [when, code, name, SELF_DECLARED if device == FORM_DEVICE else device,
            OUTCOME_WORDS.get(outcome, outcome), f"{words.vi} / {words.en}" if words else reason,
            masked, _short(str(personal)), "Có / yes" if case else ""]


def _hidden(params: dict[str, str]) -> str:
    return "".join(f'<input type="hidden" name="{e(k)}" value="{e(params[k])}">' for k in FIELDS if params.get(k))


def _page(params: dict[str, str], rows: list[list[Any]] | None, error: str | None) -> str:
    v = lambda k: e(params.get(k) or "")  # noqa: E731
    if rows is None:
        result = "<p>Nhập số CCCD của ca bệnh, hoặc địa điểm và thời gian. / Enter the case's ID number, or a venue and a time.</p>"
    elif len(rows) == 1:
        result = "<p>Không có ai trong khoảng thời gian này. / Nobody in this window.</p>"
    else:
        body = "".join("<tr%s>%s</tr>" % (' class="case"' if r[-1] else "", "".join(f"<td>{e(str(c))}</td>" for c in _cells(r)))
                       for r in rows[1:])
        hidden = _hidden(params)
        result = (f'<p><b>{len(rows) - 1}</b> lượt / entries. Tải về / Download: '
                  f'<form class="dl" method="post" action="tracing.csv">{hidden}<button type="submit">CSV</button></form> '
                  f'<form class="dl" method="post" action="tracing.xlsx">{hidden}<button type="submit">XLSX (Excel)</button></form></p>'
                  '<table id="contacts"><thead><tr><th>Thời gian / Time</th><th>Mã địa điểm / Venue code</th>'
                  '<th>Địa điểm / Venue</th><th>Thiết bị / Kiosk</th><th>Kết quả / Verdict</th><th>Lý do / Reason</th>'
                  '<th>Tên / Name</th><th>Thông tin / Details</th><th>Ca bệnh / Case</th></tr></thead>'
                  f"<tbody>{body}</tbody></table>")
    err = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Truy vết tiếp xúc / Contact tracing</title>
<style>body{{font-family:"Noto Sans","DejaVu Sans",sans-serif;margin:1.5em;color:#222}}
fieldset{{margin:.6em 0;border:1px solid #ccc}} label{{margin-right:1em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:4px 8px;text-align:left}} th{{background:#f2f2f2}} tr.case{{background:#ffe0e0;font-weight:bold}}
.error{{color:#b71c1c;font-weight:bold}} form.dl{{display:inline}}</style></head><body>
<header><h1>Truy vết tiếp xúc / Contact tracing</h1>
<nav><a href="daily">← Báo cáo ngày / Daily report</a></nav></header>
<main>
<form method="post" action="tracing">
<fieldset><legend>Ca bệnh / The case</legend>
<label>Số CCCD, CMND hoặc hộ chiếu / ID card or passport number <input name="id_number" autocomplete="off"
 pattern="\\s*([0-9]{{9}}|[0-9]{{12}}|[A-Za-z0-9]{{6,9}})\\s*" value="{v('id_number')}"></label>
<label>hoặc mã / or subject key <input name="subject" placeholder="dcc:URN:UVCI:..." value="{v('subject')}"></label></fieldset>
<fieldset><legend>hoặc địa điểm và thời gian / or a venue and a time (với ca bệnh: ngày được ghi nhận / with a case: when it was seen)</legend>
<label>Mã địa điểm / Venue code <input name="venue" value="{v('venue')}"></label>
<label>Thời gian (giờ VN) / Time (Vietnam) <input type="datetime-local" name="at" value="{v('at')}"></label></fieldset>
<label>Khoảng ± phút / Window ± minutes <input type="number" name="window_minutes" min="1" max="1440" value="{v('window_minutes') or 60}"></label>
<button type="submit">Tìm / Search</button></form>
{err}{result}
</main>
</body></html>
"""


# Query parameters of the GET routes (module level: FastAPI resolves them by name).
Venue = Annotated[Optional[str], Query(max_length=validation.NAME_MAX)]
At = Annotated[Optional[str], Query(max_length=40, description="2026-03-02T08:15 (Vietnam) or ISO 8601 with offset")]
Window = Annotated[int, Query(ge=1, le=24 * 60)]
IdNumber = Annotated[Optional[str], Query(max_length=20, include_in_schema=False)]
Subject = Annotated[Optional[str], Query(max_length=200, include_in_schema=False)]
#: Field limits of the POST form (what the GET query allowed).
MAX_FIELD = {"id_number": 20, "subject": 200, "venue": validation.NAME_MAX, "at": 40, "window_minutes": 5}
FORM_BODY = {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "properties": {
        "id_number": {"type": "string", "maxLength": 20, "description": "CCCD (12 digits), CMND (9) or passport"},
        "subject": {"type": "string", "maxLength": 200, "description": "cccd:<ID>, dcc:<UVCI> or hd1:<idh>"},
        "venue": {"type": "string", "maxLength": validation.NAME_MAX},
        "at": {"type": "string", "maxLength": 40, "description": "2026-03-02T08:15 (Vietnam) or ISO 8601"},
        "window_minutes": {"type": "integer", "minimum": 1, "maximum": 1440, "default": 60}}}}}}}


def once_each(request: Request) -> None:
    """A query parameter given twice is refused (which one would count is a guess)."""
    names = [k for k, _ in request.query_params.multi_items()]
    twice = sorted({k for k in names if names.count(k) > 1})
    if twice:
        raise HTTPException(400, f"query parameter(s) given more than once: {', '.join(twice)}")


def no_case_in_url(request: Request) -> None:
    """A case's ID in an address is refused: history and proxy logs keep addresses."""
    if any(k in request.query_params for k in ("id_number", "subject")):
        raise HTTPException(400, IN_URL)


async def form_fields(request: Request) -> dict[str, str]:
    """The tracing form's fields from a urlencoded POST body: each at most once, within
    its length, unknown ones refused."""
    from urllib.parse import parse_qsl

    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the tracing form as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > 4096:
        raise HTTPException(413, "tracing form larger than 4096 bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "the tracing form must be UTF-8 form fields") from None
    names = [k for k, _ in pairs]
    unknown = sorted(set(names) - set(FIELDS))
    if unknown:
        raise HTTPException(400, f"unknown field(s): {', '.join(unknown)}")
    twice = sorted({k for k in names if names.count(k) > 1})
    if twice:
        raise HTTPException(400, f"field(s) given more than once: {', '.join(twice)}")
    fields = dict(pairs)
    for k, v in fields.items():
        if len(v) > MAX_FIELD[k]:
            raise HTTPException(400, f"{k}: at most {MAX_FIELD[k]} characters")
        if "\x00" in v:
            raise HTTPException(400, f"{k}: a NUL character is not allowed")
    fields = {k: v.strip() for k, v in fields.items()}
    window = fields.get("window_minutes") or "60"
    if not window.isdigit() or not 1 <= int(window) <= 24 * 60:
        raise HTTPException(400, "window_minutes: a whole number of minutes from 1 to 1440")
    fields["window_minutes"] = str(int(window))
    return fields


def install(app: FastAPI, *, store: Any, clock: Callable[[], datetime], auth: list) -> None:
    get_auth = [*auth, Depends(once_each), Depends(no_case_in_url)]

    def answer(request: Request, venue, at, window_minutes, id_number, subject) -> list[list[Any]] | None:
        who = _subjects(store, id_number, subject)
        when = _parse_at(at, clock())
        if who is None and not venue and when is None:
            return None
        return contact_rows(store, request.app.state.config.seal_private_key, venue=venue or None, at=when,
                            window=timedelta(minutes=int(window_minutes)), subject=who, now=clock())

    def page(request: Request, params: dict[str, str]) -> HTMLResponse:
        try:
            rows, error, status = answer(request, params.get("venue"), params.get("at"),
                                         params.get("window_minutes") or 60, params.get("id_number"),
                                         params.get("subject")), None, 200
        except HTTPException as exc:
            rows, error, status = None, str(exc.detail), exc.status_code
        except RequestValidationError as exc:  # a time outside what the collector holds
            rows, error, status = None, "; ".join(err["msg"] for err in exc.errors()), 422
        return HTMLResponse(_page(params, rows, error), status_code=status, headers=NO_STORE)

    def export(request: Request, params: dict[str, str]) -> list[list[Any]]:
        rows = answer(request, params.get("venue"), params.get("at"), params.get("window_minutes") or 60,
                      params.get("id_number"), params.get("subject"))
        if rows is None:
            raise HTTPException(400, "give id_number (or subject), or a venue and a time (at)")
        return rows

    def as_csv(rows: list[list[Any]]) -> Response:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        for row in rows:
            w.writerow(map(csv_cell, row))
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="tracing.csv"'})

    def as_xlsx(rows: list[list[Any]]) -> Response:
        from collector.xlsx import SHEET_CONTACTS, XLSX_TYPE, rows_xlsx

        return Response(rows_xlsx(SHEET_CONTACTS, rows), media_type=XLSX_TYPE,
                        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="tracing.xlsx"'})

    errors = {400: {"description": "neither a case nor a venue and time, or a malformed one"}}
    form_errors = {**errors, 413: {"description": "form too large"}, 415: {"description": "not a urlencoded form"}}

    @app.get("/v1/reports/tracing", tags=["admin"], response_class=HTMLResponse, dependencies=auth + [Depends(once_each)],
             responses={400: {"description": "the page, saying what was wrong with the question"}})
    def tracing_page(request: Request, venue: Venue = None, at: At = None, window_minutes: Window = 60,
                     id_number: IdNumber = None, subject: Subject = None) -> HTMLResponse:
        """The tracing page: a form (sent by POST), or the contacts at a venue and time."""
        params = {"venue": venue, "at": at, "window_minutes": str(window_minutes)}
        if id_number or subject:
            return HTMLResponse(_page(params, None, IN_URL), status_code=400, headers=NO_STORE)
        return page(request, params)

    @app.post("/v1/reports/tracing", tags=["admin"], response_class=HTMLResponse, dependencies=auth,
              openapi_extra=FORM_BODY, responses=form_errors)
    async def tracing_search(request: Request) -> HTMLResponse:
        """The tracing page's search: the contacts of the case (ID number or subject key) or
        of a venue and time, from the form's fields."""
        try:
            params = await form_fields(request)
        except HTTPException as exc:
            if exc.status_code in (413, 415):
                raise
            return HTMLResponse(_page({}, None, str(exc.detail)), status_code=exc.status_code, headers=NO_STORE)
        return await run_in_threadpool(page, request, params)

    def downloads(ext: str, render: Callable[[list[list[Any]]], Response], what: str) -> None:
        def by_venue(request: Request, venue: Venue = None, at: At = None, window_minutes: Window = 60) -> Response:
            return render(export(request, {"venue": venue, "at": at, "window_minutes": str(window_minutes)}))

        async def by_form(request: Request) -> Response:
            params = await form_fields(request)
            return render(await run_in_threadpool(export, request, params))

        by_venue.__doc__ = f"The contacts at a venue and time {what}."
        by_form.__doc__ = f"The contacts of the form's question (a case, or a venue and time) {what}."
        app.get(f"/v1/reports/tracing.{ext}", tags=["admin"], dependencies=get_auth, responses=errors,
                response_class=Response, name=f"tracing_{ext}")(by_venue)
        app.post(f"/v1/reports/tracing.{ext}", tags=["admin"], dependencies=auth, responses=form_errors,
                 openapi_extra=FORM_BODY, response_class=Response, name=f"tracing_{ext}_post")(by_form)

    downloads("csv", as_csv, "as CSV (formula-looking cells neutralised)")
    downloads("xlsx", as_xlsx, "as an Excel workbook")
