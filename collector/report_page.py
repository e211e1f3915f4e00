"""The daily report as one self-contained HTML page (no JavaScript, no external files):
province totals, an hourly chart split by verdict with axes, totals per district and
commune, per venue with its name and type, reasons for fails and reviews, the kiosks
that have not uploaded or whose clocks are off, the deliveries of the day, the roster of
people under quarantine (when the declaration form is installed), previous/next day, a
date picker and the downloads. Vietnamese first, English beside it.

    >>> from datetime import date
    >>> from collector.report import build
    >>> "Toàn tỉnh" in render(build(date(2026, 3, 2), []))
    True
"""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any, Iterable, Mapping

from collector.report import HOURS, OUTCOMES, UNREGISTERED, DailyReport, Kiosk, VenueDay, local_time

__all__ = ["render", "chart", "COLOURS", "OUTCOME_WORDS"]

#: Verdict colours, the kiosk's own lights: green pass, red fail, amber review.
COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "review": "#f9a825"}
OUTCOME_WORDS = {"pass": "Đạt / Pass", "fail": "Không đạt / Fail", "review": "Xem xét / Review"}
#: collector.venues.VENUE_TYPES in Vietnamese (English is the code itself).
TYPE_WORDS = {"hospital": "Bệnh viện", "clinic": "Phòng khám", "supermarket": "Siêu thị", "market": "Chợ",
              "school": "Trường học", "hotel": "Khách sạn", "restaurant": "Nhà hàng", "transport": "Giao thông",
              "office": "Văn phòng", "factory": "Nhà máy", "government": "Cơ quan nhà nước", "other": "Khác"}
#: Chart geometry (pixels): 24 labelled bars with a y axis on a laptop screen.
CHART_W, CHART_H = 760, 240
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 14, 40
SMALL_W, SMALL_H = 560, 170
e = html.escape


def _nice_ceiling(peak: int) -> tuple[int, int]:
    """A y-axis top and tick step: 1, 2 or 5 times a power of ten, about 4 ticks."""
    if peak <= 4:
        return max(peak, 1), 1
    raw = peak / 4
    mag = 10 ** (len(str(int(raw))) - 1)
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return -(-peak // step) * step, step


def chart(v: VenueDay, *, title: str, width: int = CHART_W, height: int = CHART_H) -> str:
    """Entries per hour stacked by verdict as inline SVG, with a y axis (entries) and an x
    axis (hour, Vietnam time), each hour's total above its bar and in its tooltip."""
    top, step = _nice_ceiling(max(v.per_hour))
    plot_w, plot_h = width - PAD_L - PAD_R, height - PAD_T - PAD_B
    bar_w = plot_w / HOURS
    base_y = PAD_T + plot_h
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}">']
    for tick in range(0, top + 1, step):
        y = base_y - plot_h * tick / top
        parts.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{width - PAD_R}" y2="{y:.1f}" stroke="#e3e3e3"/>'
                     f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{tick}</text>')
    for hour in range(HOURS):
        x = PAD_L + hour * bar_w
        total = v.per_hour[hour]
        split = ", ".join(f"{OUTCOME_WORDS[o]}: {v.hourly[o][hour]}" for o in OUTCOMES)
        parts.append(f'<g><title>{hour:02d}:00 — {total}</title>' if not total else
                     f'<g><title>{hour:02d}:00 — {total}</title><desc>{e(split)}</desc>')
        y = base_y
        for o in OUTCOMES:
            n = v.hourly[o][hour]
            if n:
                h = plot_h * n / top
                y -= h
                parts.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" '
                             f'fill="{COLOURS[o]}" class="bar-{o}"/>')
        if total:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="10" '
                         f'text-anchor="middle">{total}</text>')
        parts.append("</g>")
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base_y + 14}" font-size="10" '
                     f'text-anchor="middle">{hour:02d}</text>')
    parts.append(f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{base_y}" stroke="#333"/>'
                 f'<line x1="{PAD_L}" y1="{base_y}" x2="{width - PAD_R}" y2="{base_y}" stroke="#333"/>'
                 f'<text x="{PAD_L + plot_w / 2:.0f}" y="{height - 6}" font-size="11" text-anchor="middle">'
                 'Giờ (giờ Việt Nam) / Hour (Vietnam time)</text>'
                 f'<text x="12" y="{PAD_T + plot_h / 2:.0f}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {PAD_T + plot_h / 2:.0f})">Lượt / Entries</text></svg>')
    return "".join(parts)


def _reason_words(code: str) -> str:
    """A reason code as the kiosk's screen says it, with the code for reference:
    `Chứng nhận đã hết hạn / This certificate has expired (expired)`."""
    from kiosk.display.texts import reason_text

    text = reason_text(code)
    label = f"{text.vi} / {text.en} " if text is not None else ""
    return e(label) + f"<code>({e(code)})</code>"


def _reasons(counts: Mapping[str, int]) -> str:
    return "<br>".join(f"{_reason_words(k)}: <b>{n}</b>"
                       for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "—"


def _when(ts: Any) -> str:
    return local_time(ts).strftime("%Y-%m-%d %H:%M") if ts is not None else "—"


def _lag(k: Kiosk) -> str:
    if k.clock_lag is None:
        return "—"
    minutes = round(-k.clock_lag / timedelta(minutes=1))
    if k.clock_off == "ahead":
        return f"nhanh {minutes} phút / {minutes} min ahead"
    return f"chậm ≥ {-minutes} phút (hoặc tải lên trễ) / ≥ {-minutes} min behind (or late uploads)"


def _kiosks(report: DailyReport) -> str:
    rows = []
    for k in report.kiosks:
        if not (k.silent or k.clock_off or k.refused):
            continue
        state = (f'<span class="bad">máy chủ từ chối dữ liệu / uploads refused</span><br><small>{e(k.refusal)}</small>'
                 if k.refused else
                 '<span class="bad">chưa gửi dữ liệu hôm nay / no upload today</span>' if k.silent
                 else '<span class="warn">đồng hồ lệch / clock off</span>')
        rows.append(f"<tr><td>{e(k.device_id)}</td><td>{e(k.venue_code or '—')}</td><td>{state}</td>"
                    f"<td>{_when(k.last_upload_at if not k.silent else k.last_seen_at)}</td><td>{_lag(k)}</td></tr>")
    ok = len(report.kiosks) - len(rows)
    summary = (f"<p>{ok} / {len(report.kiosks)} thiết bị gửi dữ liệu bình thường / "
               f"kiosks uploading normally.</p>")
    if not rows:
        return summary
    return (summary + '<table id="kiosks"><thead><tr><th>Thiết bị / Kiosk</th><th>Địa điểm / Venue</th>'
            '<th>Tình trạng / State</th><th>Lần gửi cuối / Last upload</th><th>Đồng hồ / Clock</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _deliveries(deliveries: Iterable[Mapping[str, Any]]) -> str:
    rows = []
    for d in deliveries:
        state = ('<span class="ok">đã gửi / sent</span>' if d["ok"]
                 else f'<span class="bad">lỗi / failed</span>: {e(d["error"] or "")}'
                 + (f" — thử lại lúc / retry at {_when(d['next_retry_at'])}" if d.get("next_retry_at") else ""))
        rows.append(f"<tr><td>{_when(d['attempted_at'])}</td><td>{e(d['recipients'])}</td>"
                    f"<td>{_when(d['cutoff'])}</td><td>{d['attempt']}</td><td>{state}</td></tr>")
    if not rows:
        return "<p>Chưa gửi báo cáo này / This report has not been delivered yet.</p>"
    return ('<table id="deliveries"><thead><tr><th>Lúc / When</th><th>Người nhận / To</th>'
            '<th>Tính đến / Cut-off</th><th>Lần / Attempt</th><th>Kết quả / Result</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _roster(report: DailyReport) -> str:
    if report.roster is None:
        return ("<p>Danh sách cách ly chưa có trên máy chủ này (biểu mẫu khai báo chưa cài) / "
                "No quarantine roster on this collector (the declaration form is not installed).</p>")
    if not report.roster:
        return "<p>Không có ai trong danh sách cách ly hôm nay / Nobody on the quarantine roster this day.</p>"
    rows = "".join(f"<tr><td>{e(r.province)}</td><td>{e(r.commune)}</td><td>{r.on_roster}</td><td>{r.declared}</td>"
                   f"<td>{r.with_symptoms}</td><td{' class=bad' if r.not_declared else ''}>{r.not_declared}</td></tr>"
                   for r in report.roster)
    return ('<table id="roster"><thead><tr><th>Tỉnh/Thành phố / Province</th><th>Phường/Xã / Commune</th>'
            '<th>Đang cách ly / On roster</th><th>Đã khai báo / Declared</th><th>Có triệu chứng / Symptoms</th>'
            f'<th>Chưa khai báo / Not declared</th></tr></thead><tbody>{rows}</tbody></table>')


def _counts(v: VenueDay) -> str:
    return (f"<td>{v.entries}</td><td>{v.passes}</td><td>{v.fails}</td><td>{v.reviews}</td>"
            f"<td>{v.overrides}</td>")


COUNT_HEADS = ("<th>Lượt / Entries</th><th>Đạt / Pass</th><th>Không đạt / Fail</th><th>Xem xét / Review</th>"
               "<th>Cho qua / Overrides</th>")


def render(report: DailyReport, *, deliveries: Iterable[Mapping[str, Any]] = (), files: bool = False) -> str:
    """The page. `files`: links point at the exported files beside it (export folder and
    e-mail) instead of the collector's URLs."""
    day = report.day.isoformat()
    prev_day, next_day = (report.day - timedelta(days=1)).isoformat(), (report.day + timedelta(days=1)).isoformat()
    total = report.total()
    if files:
        downloads = f'<a href="daily-{day}.csv">CSV</a> · <a href="daily-{day}.xlsx">XLSX (Excel)</a>'
        nav = ""
    else:
        downloads = (f'<a href="daily.csv?date={day}">CSV</a> · <a href="daily.xlsx?date={day}">XLSX (Excel)</a> · '
                     f'<a href="tracing">Truy vết / Contact tracing</a> · <a href="../fleet">Thiết bị / Kiosk fleet</a>')
        nav = (f'<nav><a rel="prev" href="daily?date={prev_day}">← {prev_day}</a> '
               f'<form method="get" action="daily"><label>Ngày / Day <input type="date" name="date" value="{day}" required>'
               f'</label> <button type="submit">Xem / Show</button></form> '
               f'<a rel="next" href="daily?date={next_day}">{next_day} →</a></nav>')
    cards = "".join(f'<div class="card {cls}"><span>{label}</span><b>{n}</b></div>' for cls, label, n in (
        ("", "Lượt vào / Entries", total.entries), ("pass", OUTCOME_WORDS["pass"], total.passes),
        ("fail", OUTCOME_WORDS["fail"], total.fails), ("review", OUTCOME_WORDS["review"], total.reviews),
        ("", "Bảo vệ cho qua / Guard overrides", total.overrides),
        ("bad" if report.silent_kiosks() else "", "Thiết bị chưa gửi / Silent kiosks", len(report.silent_kiosks()))))
    legend = "".join(f'<span class="key"><i style="background:{COLOURS[o]}"></i>{OUTCOME_WORDS[o]}</span>'
                     for o in OUTCOMES)
    areas = "".join(f"<tr><td>{e(a.district)}</td><td>{e(a.commune)}</td>{_counts(a)}</tr>" for a in report.by_area())
    venue_rows = []
    for v in report.venues:
        name = e(v.name) if v.name else f'<span class="muted">{e(UNREGISTERED)}</span>'
        venue_rows.append(f"<tr><td>{name}<br><code>{e(v.venue_code)}</code></td><td>{e(TYPE_WORDS.get(v.type, v.type)) + ' / ' + e(v.type) if v.type else '—'}</td>"
                          f"<td>{e(', '.join(filter(None, (v.commune, v.district))) or '—')}</td>{_counts(v)}"
                          f"<td>{v.self_declared}</td>"
                          f"<td class=\"reasons\">{_reasons(v.fails_by_reason)}</td>"
                          f"<td class=\"reasons\">{_reasons(v.reviews_by_reason)}</td></tr>")
    charts = "".join(f"<section class=\"venue-chart\"><h3>{e(v.label)} <code>{e(v.venue_code)}</code></h3>"
                     f"{chart(v, title=f'Lượt vào theo giờ / entries per hour: {v.venue_code}', width=SMALL_W, height=SMALL_H)}"
                     "</section>" for v in report.venues)
    empty = "" if report.venues else "<p><b>Không có dữ liệu cho ngày này. / No entries for this day.</b></p>"
    cutoff = _when(report.cutoff) if report.cutoff else "lúc lập / when generated"
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Báo cáo ngày {day} / Daily report {day}</title>
<style>
body{{font-family:"Noto Sans","DejaVu Sans",sans-serif;margin:1.5em;color:#222;max-width:1200px}}
h1{{margin:.2em 0}} h2{{margin-top:1.6em;border-bottom:2px solid #ddd}}
table{{border-collapse:collapse;margin:.5em 0}} td,th{{border:1px solid #bbb;padding:4px 9px;text-align:right;vertical-align:top}}
th{{background:#f2f2f2;text-align:left}} td:first-child,td.reasons{{text-align:left}} td.reasons{{min-width:14em}} #venues td:first-child{{min-width:10em}}
#venues td:nth-child(2),#venues td:nth-child(3),#kiosks td,#kiosks th,#deliveries td,#deliveries th,#areas td:nth-child(2),
#roster td:nth-child(2){{text-align:left}}
code{{color:#555;font-size:85%}} .muted{{color:#616161}}
.meta{{color:#444}} nav{{display:flex;gap:1.2em;align-items:center;margin:.6em 0}} nav form{{margin:0}}
.cards{{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}}
.card{{border:1px solid #ccc;border-radius:6px;padding:.5em 1em;min-width:9em}}
.card span{{display:block;font-size:90%;color:#555}} .card b{{font-size:2em}}
.card.pass b{{color:{COLOURS['pass']}}} .card.fail b,.card.bad b,.bad{{color:{COLOURS['fail']}}}
.card.review b{{color:#8a5a00}} .warn{{color:#8a5a00}} .ok{{color:{COLOURS['pass']}}}
.key{{margin-right:1.2em}} .key i{{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}}
.venue-chart{{display:inline-block;margin-right:1em}} .venue-chart h3{{font-size:100%;margin:.8em 0 .2em}}
</style>
</head><body>
<header><h1>Báo cáo ngày {day} / Daily report {day}</h1>
<p class="meta">Giờ Việt Nam (UTC+7) / Vietnam time (UTC+7). Lập lúc / Generated: <b id="generated">{_when(report.generated_at)}</b>.
Tính các lượt quét đến / Counts entries scanned until: <b id="cutoff">{cutoff}</b>.</p>
{nav}<p>Tải về / Download: {downloads}</p></header>
<main>
{empty}<h2>Toàn tỉnh / Province</h2>
<div class="cards" id="totals">{cards}</div>
<div class="legend">{legend}</div>
{chart(total, title=f"Lượt vào theo giờ, toàn tỉnh / entries per hour, province, {day}")}
<h2>Thiết bị / Kiosks</h2>
{_kiosks(report)}
<h2>Theo quận/huyện và phường/xã / By district and commune</h2>
<table id="areas"><thead><tr><th>Quận/Huyện / District</th><th>Phường/Xã / Commune</th>{COUNT_HEADS}</tr></thead>
<tbody>{areas}</tbody></table>
<h2>Theo địa điểm / By venue</h2>
<table id="venues"><thead><tr><th>Địa điểm / Venue</th><th>Loại / Type</th><th>Phường/Xã, Quận/Huyện / Commune, district</th>
{COUNT_HEADS}<th>Tự khai báo trên web / Self-declared (web form)</th><th>Lý do không đạt / Fail reasons</th><th>Lý do xem xét / Review reasons</th></tr></thead>
<tbody>{''.join(venue_rows)}</tbody></table>
<h2>Người cách ly khai báo hôm nay / Quarantine roster: declarations today</h2>
{_roster(report)}
<h2>Gửi báo cáo / Deliveries</h2>
{_deliveries(deliveries)}
<h2>Lượt vào theo giờ từng địa điểm / Entries per hour by venue</h2>
{charts}
</main>
</body></html>
"""
