"""The quarantine roster: people under home or centralised quarantine, or living in a
locked-down area, who declare their health every day on the form.

Officials import a CSV (`collector roster import FILE`, `POST /v1/roster`) with a header

    id_number,name,phone,commune,kind,start,end
    079190000123,Trần Thị Mai,0901234567,26740,home,2026-03-01,2026-03-14

`commune` is the five-digit code or the exact name (2025 units, collector.divisions);
`kind` is home | centralised | lockdown; start and end are the first and last day
(Vietnam time). The ID number is kept only as its person key (HMAC under the tracing
key, as the declarations keep it) and its last three digits.

`daily_status(store, day)` says per commune who declared that day, who reported
symptoms and who has not declared yet: the daily report shows it.

    >>> from collector.storage import Store
    >>> store = Store("sqlite://")
    >>> import_csv(store, "id_number,name,phone,commune,kind,start,end\\n"
    ...            "079190000123,Trần Thị Mai,0901234567,26740,home,2026-03-01,2026-03-14\\n")
    1
    >>> [p["name"] for p in daily_status(store, date(2026, 3, 2))["communes"][0]["missing"]]
    ['Trần Thị Mai']
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from typing import Any, Mapping

import sqlalchemy as sa

from collector import declarations as decl_mod
from collector import divisions
from collector.storage import create_once
from kiosk.checks.hd1 import mask_phone
from kiosk.errors import KioskError

__all__ = ["KINDS", "FIELDS", "RosterError", "import_csv", "daily_status", "people", "ensure_tables"]

KINDS = ("home", "centralised", "lockdown")
FIELDS = ("id_number", "name", "phone", "commune", "kind", "start", "end")
#: Rows in one import (a province's roster at the height of an outbreak fits).
MAX_ROWS = 200_000

metadata = sa.MetaData()
roster = sa.Table(
    "roster", metadata,
    sa.Column("person_key", sa.String(64), primary_key=True),
    sa.Column("id_tail", sa.String(3), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("phone", sa.String(16), nullable=False),
    sa.Column("province", sa.String(2), nullable=False),
    sa.Column("commune", sa.String(5), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("start_day", sa.String(10), nullable=False),
    sa.Column("end_day", sa.String(10), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)


class RosterError(KioskError, ValueError):
    """A roster row is wrong; the message names the line and the column."""


def ensure_tables(engine: sa.Engine) -> None:
    create_once(metadata, engine)
    decl_mod.ensure_tables(engine)


def _commune(text: str, where: str) -> tuple[str, str]:
    """(province, commune) codes of a code or an exact name."""
    text = " ".join(text.split())
    hits = [(p, c) for p, _ in divisions.provinces() for c, name in divisions.communes(p)
            if text in (c, name)]
    if len(hits) != 1:
        raise RosterError(f"{where}: commune {text!r} is " + (
            "the name of several communes: give its five-digit code" if hits else
            "not a commune or ward of the 2025 units (code or exact name)"))
    return hits[0]


def _row(store: Any, raw: Mapping[str, str], where: str) -> dict[str, Any]:
    form = {"name": [raw.get("name") or ""], "phone": [raw.get("phone") or ""],
            "id_number": [raw.get("id_number") or ""]}
    _, errors = decl_mod.validate(form, now=datetime.now(timezone.utc))
    for key in ("id_number", "name", "phone"):
        if key in errors:
            raise RosterError(f"{where}: {key}: {errors[key][1]}")
    province, commune = _commune(raw.get("commune") or "", where)
    kind = (raw.get("kind") or "").strip()
    if kind not in KINDS:
        raise RosterError(f"{where}: kind {kind!r}: one of {', '.join(KINDS)}")
    try:
        start, end = date.fromisoformat((raw.get("start") or "").strip()), date.fromisoformat((raw.get("end") or "").strip())
    except ValueError:
        raise RosterError(f"{where}: start and end are days, YYYY-MM-DD") from None
    if end < start:
        raise RosterError(f"{where}: end {end} is before start {start}")
    id_number = (raw["id_number"] or "").replace(" ", "").upper()
    return {"person_key": decl_mod.person_key(store, id_number), "id_tail": id_number[-3:],
            "name": " ".join(raw["name"].split()), "phone": raw["phone"].strip(), "province": province,
            "commune": commune, "kind": kind, "start_day": start.isoformat(), "end_day": end.isoformat()}


def import_csv(store: Any, text: str, *, where: str = "CSV", now: datetime | None = None) -> int:
    """Store every row of a roster CSV (a person already on it is replaced), or none."""
    ensure_tables(store.engine)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    if set(header) != set(FIELDS):
        raise RosterError(f"{where}: the header must be {','.join(FIELDS)} (got {','.join(header) or 'nothing'})")
    reader.fieldnames = header
    rows = []
    for n, raw in enumerate(reader, 2):
        if n - 1 > MAX_ROWS:
            raise RosterError(f"{where}: more than {MAX_ROWS} rows")
        if None in raw:
            raise RosterError(f"{where} line {n}: more columns than the header")
        rows.append(_row(store, raw, f"{where} line {n}"))
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    with store.engine.begin() as conn:
        keys = [r["person_key"] for r in rows]
        for i in range(0, len(keys), 1000):
            conn.execute(roster.delete().where(roster.c.person_key.in_(keys[i:i + 1000])))
        if rows:
            conn.execute(roster.insert(), [{**r, "updated_at": stamp} for r in rows])
    return len(rows)


def people(store: Any, day: date) -> list[dict[str, Any]]:
    """Everyone on the roster on `day`."""
    ensure_tables(store.engine)
    c = roster.c
    d = day.isoformat()
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(roster).where(c.start_day <= d, c.end_day >= d)
                                              .order_by(c.commune, c.name)).mappings()]


def daily_status(store: Any, day: date) -> dict[str, Any]:
    """Per commune, for everyone on the roster on `day`: who declared, who of them reported
    symptoms (or a contact with a case), and who has not declared yet.

    `{"day": ..., "totals": {...}, "communes": [{"province", "province_name", "commune",
    "commune_name", "declared": [person], "symptoms": [person], "missing": [person]}]}`;
    a person is `{"name", "phone" (masked), "id" (masked), "kind", "declared_at", "status"}`
    (and `note` when a declaration came with another phone than the roster's: it counts not).
    """
    ensure_tables(store.engine)
    listed = people(store, day)
    c = decl_mod.declarations.c
    keys = [p["person_key"] for p in listed]
    phones = {p["person_key"]: decl_mod.phone_key(store, p["phone"]) for p in listed}
    latest: dict[str, dict[str, Any]] = {}
    other_phone: set[str] = set()
    with store.engine.connect() as conn:
        for i in range(0, len(keys), 1000):
            q = (sa.select(c.person_key, c.phone_key, c.declared_at, c.symptoms, c.contact, c.status)
                 .where(c.day_local == day.isoformat(), c.person_key.in_(keys[i:i + 1000]))
                 .order_by(c.declared_at))
            for r in conn.execute(q).mappings():
                # The day's last declaration made with the roster's phone counts; one with
                # another phone (anyone who knows the ID number) clears no one.
                if r["phone_key"] == phones[r["person_key"]]:
                    latest[r["person_key"]] = dict(r)
                else:
                    other_phone.add(r["person_key"])
    out: dict[str, dict[str, Any]] = {}
    for p in listed:
        group = out.setdefault(p["commune"], {
            "province": p["province"], "province_name": divisions.province_name(p["province"]),
            "commune": p["commune"], "commune_name": divisions.commune_name(p["province"], p["commune"]),
            "declared": [], "symptoms": [], "missing": []})
        d = latest.get(p["person_key"])
        person = {"name": p["name"], "phone": mask_phone(p["phone"]), "id": "*" * 9 + p["id_tail"],
                  "kind": p["kind"], "declared_at": None, "status": None}
        if d is None:
            if p["person_key"] in other_phone:
                person["note"] = ("khai báo bằng số điện thoại khác số trong danh sách / "
                                  "declared with a phone number other than the roster's")
            group["missing"].append(person)
            continue
        at = d["declared_at"].replace(tzinfo=timezone.utc)
        person.update(declared_at=at.isoformat().replace("+00:00", "Z"), status=d["status"])
        group["declared"].append(person)
        if d["symptoms"] or d["contact"]:
            group["symptoms"].append(person)
    communes = sorted(out.values(), key=lambda g: (g["province"], g["commune_name"] or ""))
    totals = {k: sum(len(g[k]) for g in communes) for k in ("declared", "symptoms", "missing")}
    return {"day": day.isoformat(), "totals": {"people": len(listed), **totals}, "communes": communes}
