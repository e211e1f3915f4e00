"""The heartbeat a kiosk sends with each sync round (issue 24): what a technician needs
to see from the office without a guard calling.

`collect(cfg, journal, now)` reads only what the kiosk already keeps: its version, each
signed document it holds (version and age), free space on the card, the CPU temperature,
the time of the last scan, the faults the run loop shows, entries waiting and refused, and how the last software
update went (kiosk.update).
`send(...)` posts it to `POST /v1/heartbeat` with the device token; the collector keeps
the latest per device and works out the clock offset from `sent_at` itself.

    >>> from kiosk.journal import Journal
    >>> from kiosk.config import load_config
    >>> with Journal.memory() as j:
    ...     beat = collect(load_config(None, search=False), j, datetime(2026, 3, 2, tzinfo=timezone.utc))
    >>> sorted(beat)[:4], beat["pending"], beat["last_scan_at"]
    (['cpu_temp_c', 'disk_free_bytes', 'disk_free_pct', 'documents'], 0, None)
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from kiosk.model import iso_utc

__all__ = ["collect", "send", "HEARTBEAT_PATH", "FAULTS_KEY", "THERMAL_ZONE"]

log = logging.getLogger("kiosk.sync")

HEARTBEAT_PATH = "/v1/heartbeat"
#: Journal state where the run loop keeps the faults its screen shows (JSON list).
FAULTS_KEY = "run.faults"
#: The SoC temperature on a Raspberry Pi (millidegrees Celsius); absent elsewhere.
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def _cpu_temp(zone: Path = THERMAL_ZONE) -> float | None:
    try:
        return round(int(zone.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def collect(cfg: Any, journal: Any, now: datetime, *, zone: Path = THERMAL_ZONE) -> dict[str, Any]:
    """The heartbeat body (JSON-ready)."""
    from kiosk import __version__
    from kiosk.sync.fetcher import HELD_KEY
    from kiosk.sync.state import status as sync_status

    documents = {}
    for name, held in sorted((journal.get_json(HELD_KEY) or {}).items()):
        iat = held.get("iat")
        issued = datetime.fromtimestamp(iat, timezone.utc) if isinstance(iat, (int, float)) else None
        documents[name] = {"version": held.get("version"),
                           "age_s": int((now - issued).total_seconds()) if issued else None,
                           "expires_at": (iso_utc(datetime.fromtimestamp(held["exp"], timezone.utc))
                                          if isinstance(held.get("exp"), (int, float)) else None)}
    folder = cfg.journal_path().parent
    folder = folder if folder.exists() else Path(".")
    try:
        usage = shutil.disk_usage(folder)
        free, pct = usage.free, round(100.0 * usage.free / usage.total, 1) if usage.total else None
    except OSError:
        free, pct = None, None
    row = journal.db.conn.execute("SELECT max(scanned_at) FROM entries").fetchone()
    sync = sync_status(journal, now)
    faults = journal.get_json(FAULTS_KEY) or []
    from kiosk.update import OFFER_KEY, read_state, summary

    return {
        "version": __version__,
        "venue_code": cfg.venue.code,
        "sent_at": iso_utc(now),
        "documents": documents,
        "disk_free_bytes": free,
        "disk_free_pct": pct,
        "cpu_temp_c": _cpu_temp(zone),
        "last_scan_at": row[0] if row and row[0] else None,
        "faults": sorted(str(f) for f in faults)[:20],
        "pending": journal.pending_count(),
        "refused": sync.refused,
        "last_upload_at": iso_utc(sync.last_success) if sync.last_success else None,
        "last_error": str(sync.last_error)[:300] if sync.last_error else None,
        # The root half's last outcome (installed, rolled_back, refused...) and this
        # kiosk's decision on the offer it was shown (staged, waiting, refused).
        "update": summary(read_state()) or None,
        "update_offer": journal.get_json(OFFER_KEY),
    }


def send(url: str, token: str, body: dict[str, Any], *, session: requests.Session | None = None,
         timeout: float = 10.0, verify: str | None = None) -> bool:
    """POST the heartbeat; False (logged) when it did not arrive: a heartbeat is never
    worth failing a sync round for."""
    http = session or requests
    try:
        resp = http.post(url.rstrip("/") + HEARTBEAT_PATH, json=body, timeout=timeout, verify=verify,
                         headers={"Authorization": f"Bearer {token}"})
    except requests.RequestException as exc:
        log.info("heartbeat not sent: %s", exc)
        return False
    if resp.status_code >= 300:
        log.warning("heartbeat refused (%d): %s", resp.status_code, resp.text[:200])
        return False
    return True
