"""The report's commands (`collector report|deliver|status|venue`), registered by
collector.cli's parser. Each opens the Store and calls one library function.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

__all__ = ["register"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _day(text: str | None) -> date:
    from collector.storage import REPORT_TZ

    if not text:
        return _now().astimezone(REPORT_TZ).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--date {text!r}: expected YYYY-MM-DD") from None


def _when(ts: datetime | None) -> str:
    from collector.report import local_time

    return local_time(ts).strftime("%Y-%m-%d %H:%M") if ts else "—"


def _print_delivery(d: Any) -> None:
    state = "sent" if d.ok else f"FAILED: {d.error}; retry at {_when(d.next_retry_at)}"
    print(f"{d.day.isoformat()} {d.kind:<9} attempt {d.attempt} at {_when(d.attempted_at)} "
          f"(cut-off {_when(d.cutoff)}) to {d.recipients or '(export only)'}: {state}")
    if d.export_path:
        print(f"  files in {d.export_path}")


def cmd_report(args: argparse.Namespace, *, store_of: Callable, config_of: Callable) -> int:
    """Print the daily report per venue as CSV (or --html, or --xlsx FILE) for a
    Vietnam-local day; --send delivers it now (export folder and e-mail, recorded and
    retried like the 16:30 delivery), counting entries scanned until now.

    Example: collector report --date 2026-03-02 > daily.csv
    Example: collector report --xlsx daily.xlsx
    Example: collector report --send
    """
    from collector import delivery, report, report_page

    day = _day(args.date)
    with store_of(args, must_exist=not args.send) as store:
        if args.send:
            d = delivery.deliver(store, config_of(args), day, now=_now(), kind=delivery.MANUAL)
            _print_delivery(d)
            return 0 if d.ok else 1
        rep = report.collect(store, day, now=_now())
        if args.xlsx:
            from collector.xlsx import report_xlsx

            Path(args.xlsx).write_bytes(report_xlsx(rep))
            print(f"wrote {args.xlsx}")
            return 0
        sys.stdout.write(report_page.render(rep, deliveries=delivery.history(store, day=day)) if args.html
                         else report.to_csv(rep))
    return 0


def cmd_deliver(args: argparse.Namespace, *, store_of: Callable, config_of: Callable) -> int:
    """Deliver what is due: today's report once report_time (default 16:30 Vietnam time)
    has passed and it has not gone out, and the retries of failed deliveries whose time
    has come. Run every few minutes by collector-report.timer; nothing due: no output.

    Example: collector deliver
    """
    from collector import delivery

    cfg = config_of(args)
    delivery.check_settings(cfg)
    with store_of(args) as store:
        done = delivery.run_due(store, cfg, now=_now())
    for d in done:
        _print_delivery(d)
    return 1 if any(not d.ok for d in done) else 0


def cmd_status(args: argparse.Namespace, *, store_of: Callable, config_of: Callable) -> int:
    """Show the report's deliveries (failed ones waiting for a retry first) and the
    kiosks that have not uploaded today or whose clocks are off.

    Example: collector status
    """
    from collector import delivery, report

    with store_of(args, must_exist=True) as store:
        waiting = delivery.pending(store)
        recent = delivery.history(store, limit=args.last)
        rep = report.collect(store, _day(None), now=_now())
    print(f"deliveries waiting for a retry: {len(waiting)}")
    for d in waiting:
        _print_delivery(d)
    print(f"last {len(recent)} deliveries:")
    for row in recent:
        _print_delivery(delivery.Delivery(**{k: row[k] for k in delivery.Delivery.__dataclass_fields__}))
    silent, clock = rep.silent_kiosks(), rep.clock_off_kiosks()
    print(f"kiosks: {len(rep.kiosks)} enrolled, {len(silent)} silent today, {len(clock)} with clocks off")
    for k in silent:
        print(f"  silent  {k.device_id} at {k.venue_code or '(unbound)'}, last upload {_when(k.last_seen_at)}")
    for k in clock:
        print(f"  clock {k.clock_off:<6} {k.device_id} at {k.venue_code or '(unbound)'} "
              f"(freshest entry {int(k.clock_lag.total_seconds() // 60)} min before its upload)")
    return 0


def cmd_venue(args: argparse.Namespace, *, store_of: Callable, config_of: Callable) -> int:
    """The venue registry the report names venues from: add (or change) one, import a
    CSV (venue_code,name,type,province,district,commune), or list them.

    Example: collector venue add BV-CHORAY --name "Bệnh viện Chợ Rẫy" --type hospital --district "Quận 5" --commune "Phường 12"
    Example: collector venue import venues.csv
    Example: collector venue list
    """
    from collector import venues

    with store_of(args) as store:
        if args.action == "add":
            if not args.target or not args.name:
                raise ValueError("collector venue add needs a venue code and --name")
            row = venues.put(store, {"venue_code": args.target, "name": args.name, "type": args.type or "other",
                                     "province": args.province or "", "district": args.district or "",
                                     "commune": args.commune or ""})
            print(f"{row['venue_code']}: {row['name']} ({row['type']})")
        elif args.action == "import":
            if not args.target:
                raise ValueError("collector venue import needs a CSV file")
            n = venues.import_csv(store, Path(args.target).read_text(encoding="utf-8"), where=args.target)
            print(f"stored {n} venues from {args.target}")
        else:
            for v in venues.registry(store).values():
                print(f"{v['venue_code']:<20} {v['type']:<12} {v['name']} — {v['commune']}, {v['district']}")
    return 0


def cmd_fleet(args: argparse.Namespace, *, store_of: Callable, config_of: Callable) -> int:
    """List every kiosk with its latest heartbeat; the ones that need a visit first.

    A kiosk needs a visit when it is silent (no heartbeat for 15 minutes), stale (a signed
    document expired or 3 days old), faulted (its screen shows a fault) or refused (the
    collector refuses its entries). Exit status 1 when any does, for a monitoring check.
    Example: collector fleet --db postgresql://collector@db/collector
    """
    from collector import fleet

    with store_of(args, must_exist=True) as store:
        now = datetime.now(timezone.utc)
        rows = fleet.rows(fleet.fleet(store, now=now))
    if args.json:
        print(json.dumps({"kiosks": rows}, ensure_ascii=False, indent=1))
    else:
        colour = sys.stdout.isatty()
        for r in rows:
            states = ", ".join(r["states"]) or "ok"
            line = (f"{r['device_id']:<20} {r['venue_code'] or '-':<14} {states:<24} v{r['version'] or '-':<8} "
                    f"seen {r['seen_at'] or 'never'}  pending {r['pending'] if r['pending'] is not None else '-'}"
                    + (f"  update: {r['update']}" if r["update"] else ""))
            print(f"\033[31m{line}\033[0m" if colour and r["red"] else line)
        print(f"{sum(r['red'] for r in rows)} of {len(rows)} kiosks need a look")
    return 1 if any(r["red"] for r in rows) else 0


def register(sub: Any, add: Callable, *, store_of: Callable, config_of: Callable) -> None:
    """Add the commands to collector's subparsers (`add` is collector.cli._add)."""
    def bind(fn: Callable) -> Callable:
        def run(args: argparse.Namespace) -> int:
            return fn(args, store_of=store_of, config_of=config_of)
        run.__doc__ = fn.__doc__
        return run

    p = add(sub, "report", bind(cmd_report))
    p.add_argument("--date", help="YYYY-MM-DD (default: today in Vietnam)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--html", action="store_true", help="the HTML page instead of CSV")
    out.add_argument("--xlsx", metavar="FILE", help="write the XLSX workbook to FILE")
    out.add_argument("--send", action="store_true", help="deliver it now: export folder and e-mail")
    add(sub, "deliver", bind(cmd_deliver))
    p = add(sub, "status", bind(cmd_status))
    p.add_argument("--last", type=int, default=10, metavar="N", help="show the last N deliveries (default 10)")
    p = add(sub, "fleet", bind(cmd_fleet))
    p.add_argument("--json", action="store_true", help="the rows as JSON (what GET /v1/fleet.json answers)")
    p = add(sub, "venue", bind(cmd_venue))
    p.add_argument("action", choices=("add", "import", "list"))
    p.add_argument("target", nargs="?", metavar="CODE|FILE", help="venue code (add) or CSV file (import)")
    p.add_argument("--name", help="the venue's name (add)")
    p.add_argument("--type", help="hospital, school, market, ... (add; default other)")
    p.add_argument("--province")
    p.add_argument("--district")
    p.add_argument("--commune")
