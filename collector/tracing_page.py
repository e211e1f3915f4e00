"""The officers' tracing page (admin token, never cached): a case, by ID number (or a
kiosk subject key) or by venue and time, gives the contacts with their venues and times,
exportable as CSV and XLSX. Reached from the daily report. Vietnamese first, English beside.

    GET /v1/reports/tracing?id_number=079201001234&window_minutes=60
    GET /v1/reports/tracing?venue=BV-CHORAY&at=2026-03-02T08:15&window_minutes=30
    GET /v1/reports/tracing.csv?...   /v1/reports/tracing.xlsx?...

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
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

from collector import validation
from collector.report import csv_cell, local_time
from collector.storage import REPORT_TZ

__all__ = ["install", "contact_rows", "HEADER"]

HEADER = ["scanned_at (Vietnam time)", "venue_code", "venue_name", "device_id", "outcome", "reason",
          "name_masked", "personal", "is_case"]
NO_STORE = {"Cache-Control": "no-store"}
ID_NUMBER = re.compile(r"^\d{12}$")
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


def _subject(id_number: str | None, subject: str | None) -> str | None:
    if id_number and subject:
        raise HTTPException(400, "give id_number or subject, not both")
    if id_number:
        digits = id_number.strip()
        if not ID_NUMBER.match(digits):
            raise HTTPException(400, "id_number: a citizen ID (CCCD) has 12 digits")
        return f"cccd:{digits}"
    return subject.strip() if subject else None


def contact_rows(store: Any, seal_private_key: str, *, venue: str | None, at: datetime | None,
                 window: timedelta, subject: str | None, now: datetime) -> list[list[Any]]:
    """The tracing answer as a table: HEADER, then one row per person, oldest first."""
    from collector import venues as venues_mod
    from collector.tracing import opened_fields, trace
    from kiosk.seal import subject_hash

    h = subject_hash(store.tracing_key(), subject) if subject else None
    try:
        res = trace(store, venue=venue or None, at=at, window=window, subject_hash=h, now=now)
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


def _page(params: dict[str, str], rows: list[list[Any]] | None, error: str | None) -> str:
    v = lambda k: e(params.get(k) or "")  # noqa: E731
    query = urlencode({k: x for k, x in params.items() if x})
    if rows is None:
        result = "<p>Nhập số CCCD của ca bệnh, hoặc địa điểm và thời gian. / Enter the case's ID number, or a venue and a time.</p>"
    elif len(rows) == 1:
        result = "<p>Không có ai trong khoảng thời gian này. / Nobody in this window.</p>"
    else:
        body = "".join("<tr%s>%s</tr>" % (' class="case"' if r[-1] else "", "".join(f"<td>{e(str(c))}</td>" for c in r))
                       for r in rows[1:])
        result = (f'<p><b>{len(rows) - 1}</b> lượt / entries. Tải về / Download: '
                  f'<a href="tracing.csv?{e(query)}">CSV</a> · <a href="tracing.xlsx?{e(query)}">XLSX (Excel)</a></p>'
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
.error{{color:#c62828;font-weight:bold}}</style></head><body>
<h1>Truy vết tiếp xúc / Contact tracing</h1>
<p><a href="daily">← Báo cáo ngày / Daily report</a></p>
<form method="get" action="tracing">
<fieldset><legend>Ca bệnh / The case</legend>
<label>Số CCCD / ID number <input name="id_number" inputmode="numeric" pattern="[0-9]{{12}}" value="{v('id_number')}"></label>
<label>hoặc mã / or subject key <input name="subject" placeholder="dcc:URN:UVCI:..." value="{v('subject')}"></label></fieldset>
<fieldset><legend>hoặc địa điểm và thời gian / or a venue and a time (với ca bệnh: ngày được ghi nhận / with a case: when it was seen)</legend>
<label>Mã địa điểm / Venue code <input name="venue" value="{v('venue')}"></label>
<label>Thời gian (giờ VN) / Time (Vietnam) <input type="datetime-local" name="at" value="{v('at')}"></label></fieldset>
<label>Khoảng ± phút / Window ± minutes <input type="number" name="window_minutes" min="1" max="1440" value="{v('window_minutes') or 60}"></label>
<button type="submit">Tìm / Search</button></form>
{err}{result}
</body></html>
"""


# Query parameters of the three routes (module level: FastAPI resolves them by name).
Venue = Annotated[Optional[str], Query(max_length=validation.NAME_MAX)]
At = Annotated[Optional[str], Query(max_length=40, description="2026-03-02T08:15 (Vietnam) or ISO 8601 with offset")]
Window = Annotated[int, Query(ge=1, le=24 * 60)]
IdNumber = Annotated[Optional[str], Query(max_length=20, description="the case's 12-digit CCCD number")]
Subject = Annotated[Optional[str], Query(max_length=200, description="cccd:<ID>, dcc:<UVCI> or hd1:<idh>")]


def once_each(request: Request) -> None:
    """A query parameter given twice is refused (which one would count is a guess)."""
    names = [k for k, _ in request.query_params.multi_items()]
    twice = sorted({k for k in names if names.count(k) > 1})
    if twice:
        raise HTTPException(400, f"query parameter(s) given more than once: {', '.join(twice)}")


def install(app: FastAPI, *, store: Any, clock: Callable[[], datetime], auth: list) -> None:
    auth = [*auth, Depends(once_each)]
    def answer(request: Request, venue, at, window_minutes, id_number, subject) -> list[list[Any]] | None:
        who = _subject(id_number, subject)
        when = _parse_at(at, clock())
        if who is None and not venue and when is None:
            return None
        return contact_rows(store, request.app.state.config.seal_private_key, venue=venue, at=when,
                            window=timedelta(minutes=window_minutes), subject=who, now=clock())

    errors = {400: {"description": "neither a case nor a venue and time, or a malformed one"}}

    @app.get("/v1/reports/tracing", tags=["admin"], response_class=HTMLResponse, dependencies=auth,
             responses={400: {"description": "the page, saying what was wrong with the question"}})
    def tracing_page(request: Request, venue: Venue = None, at: At = None, window_minutes: Window = 60,
                     id_number: IdNumber = None, subject: Subject = None) -> HTMLResponse:
        """The tracing page: a form, and the contacts of the case asked for."""
        params = {"venue": venue, "at": at, "window_minutes": str(window_minutes), "id_number": id_number,
                  "subject": subject}
        try:
            rows, error, status = answer(request, venue, at, window_minutes, id_number, subject), None, 200
        except HTTPException as exc:
            rows, error, status = None, str(exc.detail), exc.status_code
        except RequestValidationError as exc:  # a time outside what the collector holds
            rows, error, status = None, "; ".join(err["msg"] for err in exc.errors()), 422
        return HTMLResponse(_page(params, rows, error), status_code=status, headers=NO_STORE)

    def export(request: Request, venue, at, window_minutes, id_number, subject) -> list[list[Any]]:
        rows = answer(request, venue, at, window_minutes, id_number, subject)
        if rows is None:
            raise HTTPException(400, "give id_number (or subject), or a venue and a time (at)")
        return rows

    @app.get("/v1/reports/tracing.csv", tags=["admin"], dependencies=auth, responses=errors,
             response_class=Response)
    def tracing_csv(request: Request, venue: Venue = None, at: At = None, window_minutes: Window = 60,
                    id_number: IdNumber = None, subject: Subject = None) -> Response:
        """The contacts as CSV (formula-looking cells neutralised)."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        for row in export(request, venue, at, window_minutes, id_number, subject):
            w.writerow(map(csv_cell, row))
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="tracing.csv"'})

    @app.get("/v1/reports/tracing.xlsx", tags=["admin"], dependencies=auth, responses=errors,
             response_class=Response)
    def tracing_xlsx(request: Request, venue: Venue = None, at: At = None, window_minutes: Window = 60,
                     id_number: IdNumber = None, subject: Subject = None) -> Response:
        """The contacts as an Excel workbook."""
        from collector.xlsx import XLSX_TYPE, rows_xlsx

        body = rows_xlsx("Tiep xuc - Contacts", export(request, venue, at, window_minutes, id_number, subject))
        return Response(body, media_type=XLSX_TYPE,
                        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="tracing.xlsx"'})
