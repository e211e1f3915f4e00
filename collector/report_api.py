"""The report's HTTP routes (admin token): the daily page, CSV and XLSX (without a date:
today, Vietnam time), the venue registry, and the officers' tracing page with its CSV
and XLSX exports. `collector.app.create_app` installs them.

    GET  /v1/reports/daily[.csv|.xlsx]?date=YYYY-MM-DD
    POST /v1/reports/tracing[.csv|.xlsx]  (form fields id_number=... or venue, at, window_minutes)
    GET  /v1/reports/tracing[.csv|.xlsx]?venue=V1&at=2026-03-02T08:15&window_minutes=60  (no ID in a URL)
    GET  /v1/venues              PUT /v1/venues/{code} (JSON)   POST /v1/venues.csv (CSV import)
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Callable, Optional

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from collector import delivery, report as report_mod, report_page, validation, venues as venues_mod
from collector.hardening import CSVResponse
from collector.limits import csv_text
from collector.storage import REPORT_TZ

__all__ = ["install", "Venue"]

DAY = Annotated[Optional[validation.IsoDate], Query(alias="date", description="YYYY-MM-DD, Vietnam local; default today")]
#: Longest venue registry CSV accepted (about 100,000 venues).
MAX_VENUE_CSV_BYTES = 16 * 1024 * 1024


class Venue(BaseModel):
    name: str = Field(min_length=1, max_length=venues_mod.TEXT_MAX)
    type: str = Field(default="other", max_length=32, description=" | ".join(venues_mod.VENUE_TYPES))
    province: str = Field(default="", max_length=venues_mod.TEXT_MAX)
    district: str = Field(default="", max_length=venues_mod.TEXT_MAX)
    commune: str = Field(default="", max_length=venues_mod.TEXT_MAX)


def install(app: FastAPI, *, store: Any, clock: Callable[[], datetime], admin: Callable[..., None],
            reader: Any = None) -> None:
    """The report, venue and tracing routes. Reads go to `reader` (a read replica's
    Store, collector.config read_db_url) when given; writes always to `store`."""
    auth = [Depends(admin)]
    reads = reader or store

    def the_day(day: date | None) -> date:
        return day if day is not None else clock().astimezone(REPORT_TZ).date()

    def current(day: date | None, *, hourly: bool = True) -> report_mod.DailyReport:
        return report_mod.collect(reads, the_day(day), now=clock(), hourly=hourly)

    @app.get("/v1/reports/daily.csv", tags=["admin"], response_class=CSVResponse, dependencies=auth)
    def daily_csv(day: DAY = None) -> Response:
        """The daily report per venue as CSV (without a date: today, Vietnam time)."""
        rep = current(day, hourly=False)  # the CSV has no per-hour columns
        return Response(report_mod.to_csv(rep), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="daily-{rep.day.isoformat()}.csv"'})

    @app.get("/v1/reports/daily.xlsx", tags=["admin"], dependencies=auth,
             responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}},
                              "description": "the report as an Excel workbook"}})
    def daily_xlsx(day: DAY = None) -> Response:
        """The daily report as XLSX: the CSV's table, totals, hours and kiosks."""
        from collector.xlsx import XLSX_TYPE, report_xlsx

        rep = current(day)
        return Response(report_xlsx(rep), media_type=XLSX_TYPE, headers={
            "Content-Disposition": f'attachment; filename="daily-{rep.day.isoformat()}.xlsx"'})

    @app.get("/v1/reports/daily", tags=["admin"], response_class=HTMLResponse, dependencies=auth)
    def daily_html(day: DAY = None) -> HTMLResponse:
        """The daily report as a readable page: totals, chart by verdict, venues, silent
        kiosks, deliveries; previous/next day and a date picker."""
        rep = current(day)
        return HTMLResponse(report_page.render(rep, deliveries=delivery.history(reads, day=rep.day)))

    @app.get("/v1/venues", tags=["admin"], dependencies=auth)
    def list_venues() -> dict[str, Any]:
        """The venue registry: names, types, district and commune per venue code."""
        return {"venues": list(venues_mod.registry(reads).values())}

    @app.put("/v1/venues/{code}", tags=["admin"], dependencies=auth,
             responses={400: {"description": "a field is not allowed (the message names it)"}})
    def put_venue(code: Annotated[str, Path(max_length=validation.NAME_MAX)], body: Venue) -> dict[str, str]:
        """Add or replace a venue in the registry."""
        try:
            return venues_mod.put(store, {"venue_code": code, **body.model_dump()}, now=clock())
        except venues_mod.VenueError as exc:
            raise HTTPException(400, str(exc)) from None

    @app.post("/v1/venues.csv", tags=["admin"], dependencies=auth,
              openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
              responses={400: {"description": "a bad line (named); nothing was stored"},
                         403: {"description": "sent by another site's page (Origin, Sec-Fetch-Site)"},
                         413: {"description": "file too large"},
                         415: {"description": "not sent as text/csv"}})
    async def import_venues(request: Request) -> dict[str, int]:
        """Import a venue CSV (header venue_code,name,type,province,district,commune): every
        row or none."""
        text = await csv_text(request, MAX_VENUE_CSV_BYTES, "venue")
        try:
            return {"stored": venues_mod.import_csv(store, text, now=clock())}
        except venues_mod.VenueError as exc:
            raise HTTPException(400, str(exc)) from None

    from collector import tracing_page

    tracing_page.install(app, store=reads, clock=clock, auth=auth)
