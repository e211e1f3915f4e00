"""Commands of the declaration form: `collector poster`, `collector roster import|status`,
`collector issuer` (the form's HD1 key in the trust list). collector.cli registers them."""

from __future__ import annotations

import argparse
import functools
import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

from collector.storage import REPORT_TZ

__all__ = ["register"]


def cmd_poster(args: argparse.Namespace, *, store_of: Callable, config_of: Callable) -> int:
    """Make a venue's A4 poster (PDF or PNG by the file's extension): its QR opens the
    declaration form for the venue, and each declaration made there is a check-in.

    --base-url is the collector's address as phones reach it (default: host and port of
    the config). The kiosk's idle QR opens the same URL: set its venue.checkin_url to it.
    Example: collector poster --venue BV-CHORAY --base-url https://khaibao.soyte.example --out BV-CHORAY.pdf
    """
    from collector import form, poster, venues
    from collector.validation import check_venue_code

    cfg = config_of(args)
    code = check_venue_code(args.venue)
    base = args.base_url or f"http://{cfg.host}:{cfg.port}"
    with store_of(args) as store:
        name = (venues.registry(store).get(code) or {}).get("name")
    url = form.venue_url(base, code)
    poster.write(args.out, code, url, name=name)
    print(f"{args.out}: poster for {name or code}, QR {url}")
    return 0


def cmd_roster(args: argparse.Namespace, *, store_of: Callable, config_of: Callable) -> int:
    """Register people under quarantine or in a locked-down area (CSV: id_number,name,
    phone,commune,kind,start,end; every row or none), or show per commune who declared
    today, who reported symptoms and who has not declared yet.

    Example: collector roster import cach-ly.csv
    Example: collector roster status --date 2026-03-02 --json
    """
    from collector import roster

    with store_of(args) as store:
        if args.action == "import":
            if not args.file:
                raise ValueError("collector roster import needs a CSV file")
            n = roster.import_csv(store, Path(args.file).read_text(encoding="utf-8"), where=args.file)
            print(f"stored {n} people from {args.file}")
            return 0
        day = date.fromisoformat(args.date) if args.date else datetime.now(timezone.utc).astimezone(REPORT_TZ).date()
        status = roster.daily_status(store, day)
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=1))
        return 0
    t = status["totals"]
    print(f"{status['day']}: {t['people']} on the roster, {t['declared']} declared, "
          f"{t['symptoms']} with symptoms or contact, {t['missing']} not declared")
    for g in status["communes"]:
        print(f"{g['commune_name']} ({g['province_name']}): declared {len(g['declared'])}, "
              f"symptoms {len(g['symptoms'])}, missing {len(g['missing'])}")
        for p in g["missing"]:
            print(f"    not declared: {p['name']}  {p['phone']}  {p['kind']}")
    return 0


def cmd_issuer(args: argparse.Namespace, *, store_of: Callable, config_of: Callable) -> int:
    """Print the declaration form's issuer key as a trust list entry (type HD1), or, with
    --trust FILE [--out FILE], write that trust list with the entry added (made when FILE
    does not exist yet; then publish it: every kiosk verifies the form's declarations offline).

    Example: collector issuer --trust trustlist.json --out trustlist.json && collector publish trust trustlist.json
    """
    from collector import declarations

    with store_of(args) as store:
        if args.trust:
            trust = Path(args.trust)
            # The README's first step runs before any trust list exists: a missing file
            # is an empty list, so the step makes one holding just the form's entry.
            existing = trust.read_bytes() if trust.exists() else b""
            body = declarations.with_issuer(existing, store)
            Path(args.out or args.trust).write_bytes(body)
            made = "" if existing else " (a new trust list)"
            print(f"{args.out or args.trust}: trust list with the form's HD1 issuer key{made}")
        else:
            print(json.dumps(declarations.issuer_entry(store)))
    return 0


def register(sub: Any, add: Callable, *, store_of: Callable, config_of: Callable) -> None:
    """Add the commands to collector's subparsers (`add` is collector.cli._add)."""
    def bind(fn: Callable) -> Callable:  # keeps the docstring: it is the command's help
        return functools.update_wrapper(functools.partial(fn, store_of=store_of, config_of=config_of), fn)

    p = add(sub, "poster", bind(cmd_poster))
    p.add_argument("--venue", required=True, metavar="CODE", help="the venue code")
    p.add_argument("--out", required=True, metavar="FILE", help="FILE.pdf or FILE.png")
    p.add_argument("--base-url", metavar="URL", help="the collector as phones reach it, e.g. https://khaibao.example")
    p = add(sub, "roster", bind(cmd_roster))
    p.add_argument("action", choices=("import", "status"))
    p.add_argument("file", nargs="?", metavar="FILE", help="roster CSV (import)")
    p.add_argument("--date", help="YYYY-MM-DD (status; default today in Vietnam)")
    p.add_argument("--json", action="store_true", help="status as JSON (what GET /v1/roster/status answers)")
    p = add(sub, "issuer", bind(cmd_issuer))
    p.add_argument("--trust", metavar="FILE", help="a trust list to add the form's HD1 entry to (made if missing)")
    p.add_argument("--out", metavar="FILE", help="where to write it (default: over --trust)")
