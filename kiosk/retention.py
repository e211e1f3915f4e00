"""Journal retention: delete entries that were uploaded and are older than
`journal.retention_days`, then give the space back when that is worthwhile.

Never touches an entry still in the outbox: an unsent entry is kept however old it is
(the disk guard in kiosk.health shows `disk_full` long before it matters).

    kiosk retention            # what the daily timer runs
    kiosk retention --json
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.health import disk_space
from kiosk.journal import Journal

__all__ = ["RetentionReport", "run_retention"]

log = logging.getLogger(__name__)

#: VACUUM rewrites the whole file; do it only when at least this share of it is free
#: pages, and at least this many bytes come back.
VACUUM_MIN_FREE_FRACTION = 0.25
VACUUM_MIN_FREE_BYTES = 4 * 1024 * 1024
#: VACUUM needs up to twice the file size in temporary space; never start one that
#: could fill the disk the kiosk writes to.
VACUUM_SPACE_FACTOR = 2.5


@dataclass(frozen=True)
class RetentionReport:
    journal: str
    purged: int
    vacuumed: bool
    size_before: int
    size_after: int
    free_pages_bytes: int
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _size(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += Path(str(path) + suffix).stat().st_size
        except FileNotFoundError:
            pass
    return total


def run_retention(cfg: Config, *, now: datetime, force_vacuum: bool = False,
                  min_free_fraction: float = VACUUM_MIN_FREE_FRACTION,
                  min_free_bytes: int = VACUUM_MIN_FREE_BYTES) -> RetentionReport:
    """Purge, checkpoint and (when worthwhile and safe) VACUUM the journal."""
    path = cfg.journal_path()
    if not path.exists():
        return RetentionReport(str(path), 0, False, 0, 0, 0, "no journal yet")
    before = _size(path)
    with Journal(path) as journal:
        purged = journal.purge(now=now, retention_days=cfg.journal.retention_days)
        conn = journal.db.conn
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        free_bytes = free * page_size
        vacuumed, note = False, "nothing to compact"
        worthwhile = force_vacuum or (pages and free / pages >= min_free_fraction
                                      and free_bytes >= min_free_bytes)
        if worthwhile:
            room = disk_space(path).free
            if room < VACUUM_SPACE_FACTOR * pages * page_size:
                note = f"compaction skipped: needs {VACUUM_SPACE_FACTOR:g}x the journal size free"
            else:
                try:
                    conn.execute("VACUUM")
                    vacuumed, note = True, "compacted"
                except sqlite3.OperationalError as exc:
                    # Busy or out of space: the purge already stands; try again tomorrow.
                    note = f"compaction skipped: {exc}"
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            log.info("checkpoint deferred: %s", exc)
    report = RetentionReport(str(path), purged, vacuumed, before, _size(path), free_bytes, note)
    log.info("retention: purged %d entries older than %d days; %s", purged,
             cfg.journal.retention_days, note)
    return report
