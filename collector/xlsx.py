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

__all__ = ["report_xlsx", "rows_xlsx", "header_words", "SHEET_VENUES", "SHEET_CONTACTS", "XLSX_TYPE"]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Sheet names in Vietnamese with their diacritics (Excel has taken Unicode sheet names
#: since 2007; the limit is 31 characters), English beside.
SHEET_VENUES = "Địa điểm - Venues"
SHEET_TOTALS, SHEET_HOURS, SHEET_KIOSKS = "Tổng hợp - Totals", "Theo giờ - Hourly", "Thiết bị - Kiosks"
SHEET_ROSTER = "Cách ly - Quarantine"
SHEET_CONTACTS = "Tiếp xúc - Contacts"
#: The header cells an official reads: the CSV keeps its column names for programs; the
#: workbook, for people, says them in Vietnamese and English.
HEADER_WORDS = {
    "date": "Ngày / Date", "venue_code": "Mã địa điểm / Venue code", "entries": "Lượt / Entries",
    "passes": "Đạt / Passes", "fails": "Không đạt / Fails", "reviews": "Cần kiểm tra / Reviews",
    "overrides": "Bảo vệ cho qua / Guard overrides", "venue_name": "Địa điểm / Venue",
    "venue_type": "Loại địa điểm / Venue type", "province": "Tỉnh, thành / Province",
    "district": "Quận, huyện / District", "commune": "Phường, xã / Commune", "scope": "Phạm vi / Scope",
    "hour": "Giờ / Hour", "pass": "Đạt / Pass", "fail": "Không đạt / Fail", "review": "Cần kiểm tra / Review",
    "device_id": "Thiết bị / Kiosk", "state": "Trạng thái / State", "uploads": "Lần gửi / Uploads",
    "last_upload (Vietnam time)": "Gửi lần cuối (giờ VN) / Last upload (Vietnam time)",
    "clock": "Đồng hồ / Clock", "on_roster": "Trong danh sách / On the roster",
    "declared": "Đã khai báo / Declared", "with_symptoms": "Có triệu chứng / With symptoms",
    "not_declared": "Chưa khai báo / Not declared",
    "generated (Vietnam time)": "Lập lúc (giờ VN) / Generated (Vietnam time)",
    "cut-off (Vietnam time)": "Hạn chót (giờ VN) / Cut-off (Vietnam time)",
    "scanned_at (Vietnam time)": "Thời gian (giờ VN) / Time (Vietnam)", "outcome": "Kết quả / Verdict",
    "reason": "Lý do / Reason", "name_masked": "Tên / Name", "personal": "Thông tin / Details",
    "is_case": "Ca bệnh / Case", "self_declared": "Tự khai báo trên web / Self-declared (web form)",
}


def header_words(name: str) -> str:
    """A column name as the workbook's header says it.

        >>> header_words("venue_code"), header_words("fail_expired")
        ('Mã địa điểm / Venue code', 'Không đạt: Chứng nhận đã hết hạn / Fail: This certificate has expired')
    """
    if name in HEADER_WORDS:
        return HEADER_WORDS[name]
    kind, _, reason = name.partition("_")
    if kind in ("fail", "review") and reason:
        from kiosk.display.texts import reason_text

        words = reason_text(reason)
        vi, en = ("Không đạt", "Fail") if kind == "fail" else ("Cần kiểm tra", "Review")
        if words:
            return f"{vi}: {words.vi} / {en}: {words.en}"
        return f"{vi} / {en}: {reason}"
    return name


def _sheet(ws: Any, rows: Iterable[Sequence[Any]], *, labels: bool = False) -> None:
    """Rows into a sheet; the first row (and, with `labels`, the first cell of every row)
    in words (header_words)."""
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Alignment, Font

    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row, 1):
            cell = ws.cell(row=r, column=c)
            if isinstance(value, str) and (r == 1 or labels and c == 1):
                value = header_words(value)
                if r == 1:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
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
    _sheet(wb.create_sheet(SHEET_TOTALS), totals, labels=True)
    hours = [["hour", *OUTCOMES, "entries"]]
    hours += [[f"{h:02d}:00", *[total.hourly[o][h] for o in OUTCOMES], total.per_hour[h]] for h in range(HOURS)]
    _sheet(wb.create_sheet(SHEET_HOURS), hours)
    kiosks = [["device_id", "venue_code", "state", "uploads", "last_upload (Vietnam time)", "clock"]]
    kiosks += [[k.device_id, k.venue_code or "", "refused" if k.refused else "silent" if k.silent else "uploading", k.uploads,
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
