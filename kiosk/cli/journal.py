"""`kiosk journal`."""

from __future__ import annotations

import argparse

from kiosk.cli._common import add_command, config_from, print_json

__all__ = ["register"]


def cmd_journal(args: argparse.Namespace) -> int:
    """Print the journal's counts: entries, pending upload, by verdict and by reason.

    Example: kiosk journal --json
    """
    from kiosk.journal import Journal
    from kiosk.model import utcnow

    cfg = config_from(args)
    with Journal(cfg.journal_path()) as journal:
        counts = journal.counts(today=utcnow())
        counts["path"] = str(cfg.journal_path())
    if args.json:
        print_json(counts)
    else:
        print(f"journal  {counts['path']}")
        print(f"entries  {counts['entries']} (today {counts['today']}), pending upload {counts['pending_upload']}")
        print("verdicts " + ", ".join(f"{k} {v}" for k, v in counts["by_verdict"].items()))
        if counts["by_reason"]:
            print("reasons  " + ", ".join(f"{k} {v}" for k, v in sorted(counts["by_reason"].items())))
    return 0


def register(sub) -> None:
    p = add_command(sub, "journal", cmd_journal)
    p.add_argument("--json", action="store_true", help="one JSON object")
