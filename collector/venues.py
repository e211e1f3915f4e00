"""The venue registry: what a venue code means to a person reading the report.

Kiosks upload a venue code (`BV-CHORAY`); the report shows the venue's name, its type
and the district and commune it is in. Rows come from an admin (`PUT /v1/venues/{code}`,
`POST /v1/venues.csv`, `collector venue add|import`). A venue seen in entries or
enrolments but not registered is reported under its code, marked as not registered.

The CSV has a header with these columns (any order; extra columns are refused):

    venue_code,name,type,province,district,commune
    BV-CHORAY,Bệnh viện Chợ Rẫy,hospital,TP. Hồ Chí Minh,Quận 5,Phường 12

    >>> from collector.storage import Store
    >>> store = Store("sqlite://")
    >>> put(store, {"venue_code": "V1", "name": "Chợ Bến Thành", "type": "market"})["name"]
    'Chợ Bến Thành'
    >>> registry(store)["V1"]["type"]
    'market'
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from collector.storage import create_once
from kiosk.errors import KioskError

__all__ = ["VENUE_TYPES", "FIELDS", "VenueError", "put", "import_csv", "registry", "ensure_tables"]

#: What kinds of venue the department tracks (DESIGN.md: hospitals, supermarkets, ...).
VENUE_TYPES = ("hospital", "clinic", "supermarket", "market", "school", "hotel", "restaurant",
               "transport", "office", "factory", "government", "other")
FIELDS = ("venue_code", "name", "type", "province", "district", "commune")
#: Longest name of a venue, district or commune accepted (characters).
TEXT_MAX = 200

metadata = sa.MetaData()
venues = sa.Table(
    "venues", metadata,
    sa.Column("venue_code", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("province", sa.Text(), nullable=False, default=""),
    sa.Column("district", sa.Text(), nullable=False, default=""),
    sa.Column("commune", sa.Text(), nullable=False, default=""),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)



class VenueError(KioskError, ValueError):
    """A venue row is wrong; the message names the field (and the CSV line)."""


def ensure_tables(engine: sa.Engine) -> None:
    """Create the registry's table once per engine (idempotent, any process)."""
    create_once(metadata, engine)


def check(row: Mapping[str, Any], *, where: str = "") -> dict[str, str]:
    """A clean registry row, or VenueError naming what is wrong."""
    from collector.validation import check_venue_code

    prefix = f"{where}: " if where else ""
    unknown = set(row) - set(FIELDS)
    if unknown:
        raise VenueError(f"{prefix}unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(FIELDS)}")
    out: dict[str, str] = {}
    for key in FIELDS:
        value = row.get(key) or ""
        if not isinstance(value, str):
            raise VenueError(f"{prefix}{key}: expected text, got {value!r}")
        value = " ".join(value.split())
        if len(value) > TEXT_MAX:
            raise VenueError(f"{prefix}{key}: longer than {TEXT_MAX} characters")
        out[key] = value
    try:
        out["venue_code"] = check_venue_code(out["venue_code"])
    except ValueError as exc:
        raise VenueError(f"{prefix}venue_code: {exc}") from None
    if not out["name"]:
        raise VenueError(f"{prefix}name: a venue needs a name")
    out["type"] = out["type"].lower() or "other"
    if out["type"] not in VENUE_TYPES:
        raise VenueError(f"{prefix}type: {out['type']!r} is not one of {', '.join(VENUE_TYPES)}")
    return out


def _upsert(store: Any, rows: Iterable[dict[str, str]], now: datetime) -> int:
    ensure_tables(store.engine)
    rows = [{**r, "updated_at": now.astimezone(timezone.utc).replace(tzinfo=None)} for r in rows]
    if not rows:
        return 0
    ins = (postgresql.insert(venues) if store.engine.dialect.name == "postgresql" else sqlite.insert(venues))
    stmt = ins.on_conflict_do_update(index_elements=["venue_code"], set_={
        k: getattr(ins.excluded, k) for k in (*FIELDS[1:], "updated_at")})
    with store.engine.begin() as conn:
        conn.execute(stmt, rows)
    return len(rows)


def put(store: Any, row: Mapping[str, Any], *, now: datetime | None = None) -> dict[str, str]:
    """Add or replace one venue; returns the stored row."""
    clean = check(row)
    _upsert(store, [clean], now or datetime.now(timezone.utc))
    return clean


def import_csv(store: Any, text: str, *, now: datetime | None = None, where: str = "CSV") -> int:
    """Add or replace every venue of a CSV (header row first) in one transaction: one bad
    line refuses the whole file, naming the line. Returns how many rows were stored."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # Excel writes a BOM
    if not reader.fieldnames or "venue_code" not in reader.fieldnames:
        raise VenueError(f"{where}: the first line must be a header with {', '.join(FIELDS)}")
    rows = []
    for row in reader:
        if None in row:
            raise VenueError(f"{where} line {reader.line_num}: more cells than header columns")
        rows.append(check(row, where=f"{where} line {reader.line_num}"))
    return _upsert(store, rows, now or datetime.now(timezone.utc))


def registry(store: Any) -> dict[str, dict[str, str]]:
    """Every registered venue by code."""
    ensure_tables(store.engine)
    with store.engine.connect() as conn:
        return {r["venue_code"]: {k: r[k] for k in FIELDS}
                for r in conn.execute(sa.select(venues).order_by(venues.c.venue_code)).mappings()}
