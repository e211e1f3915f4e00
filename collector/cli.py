"""The `collector` command: run the server and its small admin tasks.

Each command opens the Store and calls one method. Run `collector COMMAND --help`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Sequence

from collector import config as config_mod
from collector.storage import DOCUMENTS, REPORT_TZ

__all__ = ["main", "build_parser"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _config(args: argparse.Namespace) -> config_mod.CollectorConfig:
    return config_mod.load(args.config, db_url=getattr(args, "db", None),
                           host=getattr(args, "host", None), port=getattr(args, "port", None))


def _store(args: argparse.Namespace):
    from collector.storage import Store

    return Store(_config(args).db_url)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the collector's HTTP API (uvicorn). SQLite ./collector.db unless --db says otherwise.

    Example: collector serve --db postgresql://collector@127.0.0.1/collector --port 8470
    """
    import uvicorn

    from collector.app import create_app
    from collector.storage import Store

    cfg = _config(args)
    store = Store(cfg.db_url)
    print(f"collector: {store.dialect} database, listening on http://{cfg.host}:{cfg.port} "
          f"(OpenAPI at /docs)", file=sys.stderr, flush=True)
    if not cfg.admin_token:
        print("collector: no admin token set (COLLECTOR_ADMIN_TOKEN): reports and tracing are closed",
              file=sys.stderr, flush=True)
    try:
        # uvicorn turns SIGTERM/SIGINT into a graceful shutdown.
        uvicorn.run(create_app(store, cfg), host=cfg.host, port=cfg.port, log_level=args.log_level)
    finally:
        store.close()
    return 0


def cmd_enrol_code(args: argparse.Namespace) -> int:
    """Mint a one-time enrolment code for a device; the kiosk trades it for its token.

    Example: collector enrol-code --device kiosk-cho-ray-01   (then on the kiosk: kiosk enrol --code CODE)
    """
    with _store(args) as store:
        code = store.create_enrol_code(args.device, now=_now(), ttl=timedelta(hours=args.ttl_hours))
    print(code)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish a trust list, venue rules or deny list file for kiosks to fetch.

    Example: collector publish trust trustlist.json
    """
    body = Path(args.file).read_bytes()
    ctype = args.content_type or ("application/toml" if args.file.endswith(".toml") else "application/json")
    if ctype == "application/json":
        try:
            json.loads(body)
        except ValueError as exc:
            print(f"collector: error: {args.file}: not valid JSON: {exc}", file=sys.stderr)
            return 2
    with _store(args) as store:
        doc = store.publish(args.name, body, content_type=ctype, now=_now())
    print(f"published {args.name}: {len(body)} bytes, ETag {doc.etag}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print the daily report per venue as CSV (or --html) for a Vietnam-local day.

    Example: collector report --date 2026-03-02 > daily.csv
    """
    from collector import report

    day = date.fromisoformat(args.date) if args.date else _now().astimezone(REPORT_TZ).date()
    with _store(args) as store:
        rep = report.build(day, store.day_counts(day))
    sys.stdout.write(report.to_html(rep) if args.html else report.to_csv(rep))
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    """Make the collector's seal key pair: kiosks seal personal fields to the public half.

    Put the private half in the collector's config (seal_private_key or
    $COLLECTOR_SEAL_PRIVATE_KEY) and the public half in every kiosk's journal.seal_key.
    Example: collector keygen
    """
    from kiosk.seal import generate_keypair

    private, public = generate_keypair()
    print(f"seal_private_key = \"{private}\"   # collector config: keep it secret")
    print(f"seal_key = \"{public}\"   # kiosk config, [journal] section")
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    """Print how many entries the collector holds (all, or of one device).

    Example: collector count --device demo-kiosk
    """
    with _store(args) as store:
        print(store.count_entries(device_id=args.device))
    return 0


def _add(sub, name: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    doc = (handler.__doc__ or "").strip()
    p = sub.add_parser(name, help=doc.splitlines()[0], description=doc,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=handler)
    p.add_argument("--config", metavar="FILE", help="collector TOML config (or $COLLECTOR_CONFIG)")
    p.add_argument("--db", metavar="URL", help="database URL (or $COLLECTOR_DB_URL); default sqlite:///collector.db")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="collector", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = _add(sub, "serve", cmd_serve)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help=f"port (default {config_mod.DEFAULT_PORT})")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p = _add(sub, "enrol-code", cmd_enrol_code)
    p.add_argument("--device", required=True, metavar="ID", help="the device id the code is for")
    p.add_argument("--ttl-hours", type=float, default=24 * 7, help="how long the code stays valid")
    p = _add(sub, "publish", cmd_publish)
    p.add_argument("name", choices=DOCUMENTS)
    p.add_argument("file")
    p.add_argument("--content-type", help="default: application/json (application/toml for .toml)")
    p = _add(sub, "report", cmd_report)
    p.add_argument("--date", help="YYYY-MM-DD (default: today in Vietnam)")
    p.add_argument("--html", action="store_true", help="the HTML page instead of CSV")
    _add(sub, "keygen", cmd_keygen)
    p = _add(sub, "count", cmd_count)
    p.add_argument("--device", help="only this device's entries")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (config_mod.CollectorConfigError, ValueError, OSError) as exc:
        print(f"collector: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
