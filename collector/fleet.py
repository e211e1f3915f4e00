"""The fleet: each kiosk's latest heartbeat, and which need a technician (issue 24).

    POST /v1/heartbeat   (device token)  what a kiosk sends with its sync rounds
    GET  /v1/fleet       (admin)         the page: one row per kiosk, red when it needs a visit
    GET  /v1/fleet.json  (admin)         the same as JSON
    collector fleet [--json]             the same in a terminal

A kiosk is red when it is
- silent: enrolled but no heartbeat for SILENT_AFTER (or never);
- stale: a signed document it holds is past its expiry, or older than STALE_DOCUMENT;
- faulted: its screen shows a fault (camera, scanner, disk, clock, trust...);
- refused: the collector refuses its entries (another venue's, before its enrolment);
- update_failed: its last software update was rolled back (or could not be installed):
  it runs its previous version, and the version is marked bad on it (kiosk.update).
Its clock is flagged when it is more than CLOCK_TOLERANCE off the collector's.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Callable, Optional

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from collector import validation
from collector.storage import REPORT_TZ, _aware, _naive_utc, create_once

__all__ = ["install", "fleet", "Kiosk", "record", "ensure_tables", "SILENT_AFTER", "STALE_DOCUMENT"]

SILENT_AFTER = timedelta(minutes=15)
STALE_DOCUMENT = timedelta(days=3)
CLOCK_TOLERANCE = timedelta(minutes=2)
STATE_WORDS = {"silent": "im lặng / silent", "stale": "dữ liệu cũ / stale", "faulted": "có lỗi / faulted",
               "refused": "bị từ chối / refused", "clock": "lệch giờ / clock off",
               "update_failed": "cập nhật lỗi, đã quay lại / update rolled back"}

metadata = sa.MetaData()
heartbeats = sa.Table(
    "heartbeats", metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("received_at", sa.DateTime(), nullable=False),    # naive UTC
    sa.Column("clock_offset_s", sa.Float()),                   # kiosk clock - collector clock
    sa.Column("body", sa.Text(), nullable=False),              # the heartbeat as sent (validated)
)


def ensure_tables(engine: sa.Engine) -> None:
    create_once(metadata, engine)


class Document(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: Optional[int] = Field(default=None, ge=0, strict=True)
    age_s: Optional[int] = Field(default=None, ge=-86400, strict=True)
    expires_at: Optional[validation.IsoDateTime] = None


class UpdateOutcome(BaseModel):
    """The kiosk's last software update (kiosk.update), or its decision on an offer."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    state: Optional[str] = Field(default=None, max_length=20, strict=True)
    decision: Optional[str] = Field(default=None, max_length=20, strict=True)
    version: Optional[str] = Field(default=None, max_length=40, strict=True)
    from_: Optional[str] = Field(default=None, max_length=40, strict=True, alias="from")
    at: Optional[validation.IsoDateTime] = None
    detail: Optional[str] = Field(default=None, max_length=300, strict=True)


class Heartbeat(BaseModel):
    """What a kiosk says about itself (kiosk.sync.heartbeat). Unknown fields from newer
    kiosks are ignored; every known one is bounded."""

    model_config = ConfigDict(extra="ignore")
    version: str = Field(max_length=40, strict=True)
    venue_code: Optional[str] = Field(default=None, max_length=64, strict=True)
    sent_at: validation.IsoDateTime
    documents: dict[str, Document] = Field(default_factory=dict, max_length=20)
    disk_free_bytes: Optional[int] = Field(default=None, ge=0, strict=True)
    disk_free_pct: Optional[float] = Field(default=None, ge=0, le=100, strict=True)
    cpu_temp_c: Optional[float] = Field(default=None, ge=-60, le=150, strict=True)
    last_scan_at: Optional[validation.IsoDateTime] = None
    faults: list[Annotated[str, Field(max_length=40, strict=True)]] = Field(default_factory=list, max_length=20)
    pending: int = Field(default=0, ge=0, strict=True)
    refused: int = Field(default=0, ge=0, strict=True)
    last_upload_at: Optional[validation.IsoDateTime] = None
    last_error: Optional[str] = Field(default=None, max_length=300, strict=True)
    update: Optional[UpdateOutcome] = None
    update_offer: Optional[UpdateOutcome] = None


#: Update outcomes a technician must look at (the kiosk itself is back on its old version).
UPDATE_FAILED = frozenset({"rolled_back", "failed"})


def record(store: Any, device_id: str, beat: Heartbeat, *, now: datetime) -> float:
    """Keep `beat` as the device's latest; returns the clock offset in seconds."""
    ensure_tables(store.engine)
    offset = (beat.sent_at - now).total_seconds()
    values = {"device_id": device_id, "received_at": _naive_utc(now), "clock_offset_s": offset,
              "body": beat.model_dump_json(by_alias=True, exclude_none=True)}
    from sqlalchemy.dialects import postgresql, sqlite

    insert = (postgresql.insert if store.engine.dialect.name == "postgresql" else sqlite.insert)(heartbeats)
    stmt = insert.values(**values).on_conflict_do_update(
        index_elements=["device_id"], set_={k: v for k, v in values.items() if k != "device_id"})
    with store.engine.begin() as conn:
        conn.execute(stmt)
    return offset


@dataclass
class Kiosk:
    device_id: str
    venue_code: str | None
    seen_at: datetime | None = None           # the last heartbeat (UTC)
    clock_offset_s: float | None = None
    beat: dict[str, Any] = field(default_factory=dict)
    refused_at: datetime | None = None
    states: list[str] = field(default_factory=list)

    @property
    def red(self) -> bool:
        return any(s != "clock" for s in self.states)


def _states(k: Kiosk, now: datetime) -> list[str]:
    states = []
    if k.seen_at is None or now - k.seen_at > SILENT_AFTER:
        states.append("silent")
    for doc in k.beat.get("documents", {}).values():
        exp = doc.get("expires_at")
        expired = exp is not None and datetime.fromisoformat(str(exp).replace("Z", "+00:00")) < now
        if expired or (doc.get("age_s") or 0) > STALE_DOCUMENT.total_seconds():
            states.append("stale")
            break
    if [f for f in k.beat.get("faults", []) if f != "offline" or "silent" not in states]:
        states.append("faulted")
    if k.beat.get("refused") or (k.refused_at is not None and now - k.refused_at < timedelta(days=1)):
        states.append("refused")
    if (k.beat.get("update") or {}).get("state") in UPDATE_FAILED:
        states.append("update_failed")
    if k.clock_offset_s is not None and abs(k.clock_offset_s) > CLOCK_TOLERANCE.total_seconds():
        states.append("clock")
    return states


def fleet(store: Any, *, now: datetime) -> list[Kiosk]:
    """Every enrolled, unrevoked device with its latest heartbeat and its states, red first."""
    from collector.storage import devices

    ensure_tables(store.engine)
    d, h = devices.c, heartbeats.c
    q = (sa.select(d.device_id, d.venue_code, d.refused_at, h.received_at, h.clock_offset_s, h.body)
         .select_from(devices.outerjoin(heartbeats, d.device_id == h.device_id))
         .where(d.revoked_at.is_(None)).order_by(d.device_id))
    out = []
    with store.engine.connect() as conn:
        for r in conn.execute(q).mappings():
            k = Kiosk(r["device_id"], r["venue_code"], seen_at=_aware(r["received_at"]),
                      clock_offset_s=r["clock_offset_s"], beat=json.loads(r["body"]) if r["body"] else {},
                      refused_at=_aware(r["refused_at"]))
            k.states = _states(k, now)
            out.append(k)
    return sorted(out, key=lambda k: (not k.red, k.device_id))


def _when(ts: datetime | str | None) -> str:
    if ts is None:
        return "—"
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return ts.astimezone(REPORT_TZ).strftime("%Y-%m-%d %H:%M")


def rows(kiosks: list[Kiosk]) -> list[dict[str, Any]]:
    """The fleet as plain rows (JSON, the CLI, the page)."""
    out = []
    for k in kiosks:
        b = k.beat
        docs = ", ".join(f"{n} v{d.get('version')} ({(d.get('age_s') or 0) // 3600} h)"
                         for n, d in sorted(b.get("documents", {}).items()))
        out.append({"device_id": k.device_id, "venue_code": k.venue_code, "states": k.states, "red": k.red,
                    "version": b.get("version"), "seen_at": k.seen_at.isoformat() if k.seen_at else None,
                    "clock_offset_s": None if k.clock_offset_s is None else round(k.clock_offset_s, 1),
                    "documents": docs, "disk_free_pct": b.get("disk_free_pct"), "cpu_temp_c": b.get("cpu_temp_c"),
                    "last_scan_at": b.get("last_scan_at"), "faults": b.get("faults", []),
                    "pending": b.get("pending"), "refused": b.get("refused"), "last_error": b.get("last_error"),
                    "update": _update_words(b.get("update"), b.get("update_offer"))})
    return out


def _update_words(outcome: dict | None, offer: dict | None) -> str:
    """One line on the last update (kiosk.update.describe), and on an offer it has not taken."""
    from kiosk.update import describe

    parts = []
    if outcome:
        parts.append(describe(outcome))
    if offer and (not outcome or offer.get("version") != outcome.get("version")):
        parts.append(f"offer {offer.get('version')}: {offer.get('decision')} ({offer.get('detail') or ''})")
    return "; ".join(parts)


def render(kiosks: list[Kiosk], *, now: datetime) -> str:
    e = html.escape
    body = []
    for r in rows(kiosks):
        states = ", ".join(STATE_WORDS[s] for s in r["states"]) or "bình thường / ok"
        body.append(f'<tr class="{"red" if r["red"] else "ok"}"><td>{e(r["device_id"])}</td><td>{e(r["venue_code"] or "—")}</td>'
                    f'<td>{e(states)}</td><td>{e(r["version"] or "—")}</td><td>{_when(r["seen_at"])}</td>'
                    f'<td>{e(r["documents"] or "—")}</td><td>{"—" if r["disk_free_pct"] is None else r["disk_free_pct"]}</td>'
                    f'<td>{"—" if r["cpu_temp_c"] is None else r["cpu_temp_c"]}</td>'
                    f'<td>{"—" if r["clock_offset_s"] is None else r["clock_offset_s"]}</td>'
                    f'<td>{_when(r["last_scan_at"])}</td><td>{e(", ".join(r["faults"]) or "—")}</td>'
                    f'<td>{"—" if r["pending"] is None else r["pending"]} / {"—" if r["refused"] is None else r["refused"]}</td>'
                    f'<td>{e(r["update"] or "—")}</td></tr>')
    red = sum(1 for k in kiosks if k.red)
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Thiết bị / Kiosk fleet</title>
<style>body{{font-family:"Noto Sans","DejaVu Sans",sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse}} td,th{{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top}}
th{{background:#f2f2f2}} tr.red td{{background:#fde8e8}} tr.red td:nth-child(3){{color:#a00;font-weight:bold}}</style>
</head><body>
<header><h1>Thiết bị / Kiosk fleet</h1>
<nav><a href="reports/daily">← Báo cáo ngày / Daily report</a></nav>
<p>Lúc / At {_when(now)} (giờ VN / Vietnam time): <b id="red-count">{red}</b> / {len(kiosks)} thiết bị cần kiểm tra /
kiosks need a look.</p></header>
<main><table id="fleet"><thead><tr><th>Thiết bị / Kiosk</th><th>Địa điểm / Venue</th><th>Tình trạng / State</th>
<th>Phiên bản / Version</th><th>Tín hiệu cuối / Last heartbeat</th><th>Dữ liệu ký / Signed documents</th>
<th>Đĩa trống % / Disk free %</th><th>CPU °C</th><th>Lệch giờ (s) / Clock offset (s)</th><th>Quét cuối / Last scan</th>
<th>Lỗi / Faults</th><th>Chờ gửi / bị từ chối / Pending / refused</th><th>Cập nhật / Software update</th></tr></thead>
<tbody>{''.join(body)}</tbody></table></main>
</body></html>
"""


def install(app: FastAPI, *, store: Any, clock: Callable[[], datetime], admin: Callable[..., None],
            device: Callable[..., str]) -> None:
    auth = [Depends(admin)]

    @app.post("/v1/heartbeat", tags=["devices"], status_code=200,
              responses={401: {"description": "no, bad or revoked device token"}})
    def heartbeat(beat: Heartbeat, request: Request, device_id: str = Depends(device)) -> dict[str, float]:
        """A kiosk's state (kiosk.sync.heartbeat): kept as its latest. Answers the clock
        offset the collector sees (kiosk minus collector, seconds)."""
        return {"clock_offset_s": round(record(store, device_id, beat, now=clock()), 3)}

    @app.get("/v1/fleet", tags=["admin"], response_class=HTMLResponse, dependencies=auth)
    def fleet_page() -> HTMLResponse:
        """Every kiosk's latest heartbeat; red: silent, stale, faulted, refused or update rolled back."""
        now = clock()
        return HTMLResponse(render(fleet(store, now=now), now=now))

    @app.get("/v1/fleet.json", tags=["admin"], dependencies=auth)
    def fleet_json() -> dict[str, Any]:
        """The fleet page's rows as JSON."""
        return {"kiosks": rows(fleet(store, now=clock()))}
