"""The daily report and tracing answers as XLSX workbooks (openpyxl), for officials who
work in Excel. The first sheet of the report holds exactly the CSV's table (same header,
same cells); more sheets hold the province and area totals, entries per hour by verdict
and the kiosks to look at.

Text cells are written as text (openpyxl's data_type "s"), so a venue called `=SUM(A1)`
stays words, never a formula.

    >>> from datetime import date
    >>> from collector.report import build
    >>> data = report_xlsx(build(date(2026, 3, 2), []))
    >>> data[:2]
    b'PK'
"""

from __future__ import annotations

import io
from typing import Any, Iterable, Sequence

from collector.report import HOURS, OUTCOMES, DailyReport, table

__all__ = ["report_xlsx", "rows_xlsx", "SHEET_VENUES", "XLSX_TYPE"]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEET_VENUES = "Dia diem - Venues"
#: Excel's limit on a sheet name is 31 characters; these are ASCII so every Excel opens them.
SHEET_TOTALS, SHEET_HOURS, SHEET_KIOSKS = "Tong hop - Totals", "Theo gio - Hourly", "Thiet bi - Kiosks"
SHEET_ROSTER = "Cach ly - Quarantine"


def _sheet(ws: Any, rows: Iterable[Sequence[Any]]) -> None:
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Font

    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row, 1):
            cell = ws.cell(row=r, column=c)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = TYPE_STRING  # "=..." stays text, never a formula
            if r == 1:
                cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    for col in ws.columns:
        width = max(len(str(c.value)) if c.value is not None else 0 for c in col)
        ws.column_dimensions[col[0].column_letter].width = min(max(width + 2, 8), 48)


def _save(wb: Any) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def report_xlsx(report: DailyReport) -> bytes:
    """The workbook of a daily report."""
    from openpyxl import Workbook

    from collector.report import local_time

    wb = Workbook()
    ws = wb.active
    ws.title = SHEET_VENUES
    _sheet(ws, table(report))
    total = report.total()
    when = lambda ts: local_time(ts).strftime("%Y-%m-%d %H:%M") if ts else ""  # noqa: E731
    totals = [["scope", "district", "commune", "entries", "passes", "fails", "reviews", "overrides"],
              ["Toàn tỉnh / Province", "", "", total.entries, total.passes, total.fails, total.reviews, total.overrides]]
    totals += [["area", a.district, a.commune, a.entries, a.passes, a.fails, a.reviews, a.overrides]
               for a in report.by_area()]
    totals += [[], ["date", report.day.isoformat()], ["generated (Vietnam time)", when(report.generated_at)],
               ["cut-off (Vietnam time)", when(report.cutoff)]]
    _sheet(wb.create_sheet(SHEET_TOTALS), totals)
    hours = [["hour", *OUTCOMES, "entries"]]
    hours += [[f"{h:02d}:00", *[total.hourly[o][h] for o in OUTCOMES], total.per_hour[h]] for h in range(HOURS)]
    _sheet(wb.create_sheet(SHEET_HOURS), hours)
    kiosks = [["device_id", "venue_code", "state", "uploads", "last_upload (Vietnam time)", "clock"]]
    kiosks += [[k.device_id, k.venue_code or "", "silent" if k.silent else "uploading", k.uploads,
                when(k.last_upload_at), k.clock_off or ""] for k in report.kiosks]
    _sheet(wb.create_sheet(SHEET_KIOSKS), kiosks)
    if report.roster is not None:
        roster = [["province", "commune", "on_roster", "declared", "with_symptoms", "not_declared"]]
        roster += [[r.province, r.commune, r.on_roster, r.declared, r.with_symptoms, r.not_declared] for r in report.roster]
        _sheet(wb.create_sheet(SHEET_ROSTER), roster)
    return _save(wb)


def rows_xlsx(title: str, rows: Iterable[Sequence[Any]]) -> bytes:
    """One sheet of rows (header first): the tracing export."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title[:31]
    _sheet(ws, rows)
    return _save(wb)
