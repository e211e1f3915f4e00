"""`kiosk retention`: purge old uploaded entries (kiosk.retention) and say what it did."""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3

from kiosk.cli._common import add_command, config_from
from kiosk.errors import JournalError

__all__ = ["register"]


def cmd_retention(args: argparse.Namespace) -> int:
    """Purge uploaded journal entries older than journal.retention_days.

    Then compact the file when that frees enough space. Entries not yet uploaded are
    always kept. The daily kiosk-retention.timer runs this.

    Example: kiosk retention --json
    """
    from kiosk.model import utcnow
    from kiosk.retention import run_retention

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    cfg = config_from(args)
    try:
        report = run_retention(cfg, now=utcnow(), force_vacuum=args.vacuum)
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{cfg.journal_path()}: retention failed: {exc}") from exc
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(f"{report.journal}: purged {report.purged} entries; {report.note}; "
              f"{report.size_before} -> {report.size_after} bytes")
    return 0


def register(sub) -> None:
    p = add_command(sub, "retention", cmd_retention)
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--vacuum", action="store_true", help="compact the file even when little is free")
