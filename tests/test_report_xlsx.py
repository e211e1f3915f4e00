"""The XLSX report opens with openpyxl and holds the CSV's figures, Vietnamese intact; a
venue or reason that looks like a formula stays text; the totals sheet adds up."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import report_data as data
from collector import report, xlsx
from collector_helpers import ENGINES, open_store


def _cells(body: bytes, sheet: int = 0) -> list[list[str]]:
    ws = openpyxl.load_workbook(io.BytesIO(body)).worksheets[sheet]
    return [["" if c is None else str(c) for c in row] for row in ws.iter_rows(values_only=True)]


@pytest.fixture(params=ENGINES)
def store(request, tmp_path):
    s = open_store(request.param, tmp_path)
    data.fill(s)
    yield s
    s.close()


def test_the_workbook_holds_the_csvs_figures_with_vietnamese_intact(store):
    rep = report.collect(store, data.DAY, now=data.AFTER_CUTOFF, cutoff=data.CUTOFF)
    body = xlsx.report_xlsx(rep)
    book = openpyxl.load_workbook(io.BytesIO(body))
    assert book.sheetnames[0] == xlsx.SHEET_VENUES
    rows = _cells(body)
    from_csv = list(csv.reader(io.StringIO(report.to_csv(rep))))
    assert rows[1:] == from_csv[1:]
    # The header says the CSV's columns in words an official reads (issue 23 item 10).
    assert rows[0] == [xlsx.header_words(h) for h in from_csv[0]]
    assert rows[0][:3] == ["Ngày / Date", "Mã địa điểm / Venue code", "Lượt / Entries"]
    assert book.sheetnames[:4] == ["Địa điểm - Venues", "Tổng hợp - Totals", "Theo giờ - Hourly", "Thiết bị - Kiosks"]
    header, venues = from_csv[0], {r[1]: dict(zip(from_csv[0], r)) for r in rows[1:]}
    assert venues["BV-CHORAY"]["venue_name"] == "Bệnh viện Chợ Rẫy"
    assert venues["CHO-BT"]["commune"] == "Phường Bến Thành"
    for venue, want in data.EXPECTED.items():
        assert {k: int(venues[venue][k]) for k in want} == want
    # Numbers are numbers in Excel (sums work), not text.
    ws = book.worksheets[0]
    assert isinstance(ws.cell(row=2, column=header.index("entries") + 1).value, int)
    totals = {r[0]: r for r in _cells(body, 1)}
    assert [int(x) for x in totals["Toàn tỉnh / Province"][3:8]] == [data.TOTAL[k] for k in
                                                                      ("entries", "passes", "fails", "reviews", "overrides")]
    hourly = _cells(body, 2)
    assert sum(int(r[4]) for r in hourly[1:]) == data.TOTAL["entries"]
    kiosks = {r[0]: r for r in _cells(body, 3)[1:]}
    assert kiosks[data.SILENT][2] == "silent" and kiosks[data.CLOCK_AHEAD][5] == "ahead"


def test_a_formula_in_a_venue_name_stays_text():
    hostile = '=HYPERLINK("http://evil.example/","x")'
    rep = report.build(data.DAY, [{"venue_code": "V1", "outcome": "pass", "reason": "ok", "hour_local": 8, "n": 1}],
                       registry={"V1": {"name": hostile, "type": "other"}})
    ws = openpyxl.load_workbook(io.BytesIO(xlsx.report_xlsx(rep))).worksheets[0]
    cell = ws.cell(row=2, column=8)
    assert cell.value == hostile and cell.data_type == "s"  # text, not a formula ("f")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["V1", "BỆNH-VIỆN", "=cmd", "V-2"]),
                          st.sampled_from(["pass", "fail", "review"]),
                          st.sampled_from(["ok", "expired", "identity_only", "override"]),
                          st.integers(0, 23), st.integers(1, 500)), max_size=30),
       st.text(alphabet="ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ -=+@\"'", max_size=40))
def test_any_day_gives_the_same_figures_in_csv_and_xlsx(rows, name):
    grouped: dict[tuple, int] = {}
    for venue, outcome, reason, hour, n in rows:
        grouped[(venue, outcome, reason, hour)] = grouped.get((venue, outcome, reason, hour), 0) + n
    counts = [{"venue_code": v, "outcome": o, "reason": r, "hour_local": h, "n": n} for (v, o, r, h), n in grouped.items()]
    rep = report.build(data.DAY, counts, registry={"V1": {"name": name, "type": "other"}},
                       generated_at=datetime(2026, 3, 2, 10, tzinfo=timezone.utc))
    from_csv = list(csv.reader(io.StringIO(report.to_csv(rep))))
    from_xlsx = _cells(xlsx.report_xlsx(rep))
    assert len(from_csv) == len(from_xlsx)
    assert from_xlsx[0] == [xlsx.header_words(h) for h in from_csv[0]]
    for c_row, x_row in zip(from_csv[1:], from_xlsx[1:]):
        # the CSV neutralises formula-looking text with an apostrophe; the XLSX keeps it as text
        # (whitespace-only names are folded to nothing by neither: both keep the cell)
        assert [c.removeprefix("'") if c.startswith("'") and x.startswith(("=", "+", "-", "@")) else c
                for c, x in zip(c_row, x_row)] == x_row


@pytest.mark.parametrize("lag, state", [
    (timedelta(seconds=20), None),                 # an online kiosk: uploads within seconds
    (timedelta(minutes=-1), None),                 # a second or so of drift either way
    (timedelta(minutes=-10), "ahead"),             # scanned 10 min after the collector got it
    (timedelta(minutes=40), "behind"),             # its freshest entry was always 40 min old
    (None, None),                                  # no upload: silent, not a clock question
])
def test_a_kiosks_clock_is_off_when_its_entries_cannot_be_that_old_or_new(lag, state):
    k = report.Kiosk("k1", "V1", uploads=0 if lag is None else 3, last_upload_at=None, last_seen_at=None,
                     clock_lag=lag)
    assert k.clock_off == state and k.silent == (lag is None)
