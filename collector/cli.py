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


def _store(args: argparse.Namespace, *, must_exist: bool = False):
    """The Store of --db/config. `must_exist`: a command that only reads refuses a SQLite
    path that does not exist (a typo would otherwise make an empty database)."""
    from collector.storage import Store

    url = _config(args).db_url
    if must_exist:
        _refuse_missing_sqlite(url)
    return Store(url)


def _refuse_missing_sqlite(url: str) -> None:
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not parsed.database.startswith("file:") and not Path(parsed.database).exists():
        raise config_mod.CollectorConfigError(
            f"database {parsed.database} does not exist (check --db; `collector serve` creates it)")


def _int_in(lo: int, hi: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from lo to hi (`what` names it in the error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is not {what} ({lo}-{hi})")
        return value
    return parse


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line (`collector: error: ...`) and exit 2, like every other error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"collector: error: {self.prog.removeprefix('collector ')}: {message}\n")


def _one_line(exc: BaseException) -> str:
    """A database driver's error as one line: its first line, without SQLAlchemy's links."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the collector's HTTP API (uvicorn). SQLite ./collector.db unless --db says otherwise.

    HTTPS with --tls-cert/--tls-key (or behind a TLS reverse proxy: see the README).
    Example: collector serve --db postgresql://collector@127.0.0.1/collector --port 8470
    Example: collector serve --db postgresql://collector@db/collector --workers 4 --host 0.0.0.0
    Example: collector serve --host 0.0.0.0 --port 8443 --tls-cert fullchain.pem --tls-key privkey.pem
    """
    from collector.serve import serve

    cfg = _config(args)
    tls = {"ssl_certfile": args.tls_cert or cfg.tls_cert, "ssl_keyfile": args.tls_key or cfg.tls_key}
    if bool(tls["ssl_certfile"]) != bool(tls["ssl_keyfile"]):
        raise config_mod.CollectorConfigError("--tls-cert and --tls-key go together")
    for path in filter(None, tls.values()):
        if not Path(path).is_file():
            raise config_mod.CollectorConfigError(f"TLS file {path} not found")
    tls = {k: v for k, v in tls.items() if v}
    return serve(cfg, workers=args.workers, tls=tls, log_level=args.log_level)


def cmd_enrol_code(args: argparse.Namespace) -> int:
    """Mint a one-time enrolment code for a device; the kiosk trades it for its token.

    The code binds the device to its venue: it uploads entries for no other.

    Example: collector enrol-code --device kiosk-cho-ray-01 --venue BV-CHORAY   (then on the kiosk: kiosk enrol --code CODE)
    Example: collector enrol-code --device kiosk-cho-ray-01 --venue BV-CHORAY --venue-name "Bệnh viện Chợ Rẫy" --venue-type hospital
    """
    from collector.validation import check_venue_code

    from collector import venues

    # --venue-name registers the venue for the report (collector.venues), checked first.
    venue = venues.check({"venue_code": args.venue, "name": args.venue_name, "type": args.venue_type or "",
                          "district": args.district, "commune": args.commune}) if args.venue_name else None
    with _store(args) as store:
        code = store.create_enrol_code(args.device, now=_now(), ttl=timedelta(hours=args.ttl_hours),
                                       venue=check_venue_code(args.venue))
        if venue is not None:
            venues.put(store, venue)
    print(code)
    return 0


def cmd_device(args: argparse.Namespace) -> int:
    """List enrolled devices, revoke a device's token (its next request gets 401), or
    rotate it (the kiosk gets a new token in its next batch answer, losing nothing).

    Example: collector device list
    Example: collector device revoke kiosk-cho-ray-01
    Example: collector device rotate kiosk-cho-ray-01
    """
    with _store(args, must_exist=True) as store:
        if args.action == "list":
            rows = store.list_devices()
            print(f"{'device':<24} {'venue':<20} {'enrolled (UTC)':<17} {'entries':>8}  state")
            for r in rows:
                state = ("revoked " + r["revoked_at"].strftime("%Y-%m-%d %H:%M") if r["revoked_at"]
                         else "rotation pending" if r["rotate"] else "active")
                print(f"{r['device_id']:<24} {r['venue_code'] or '(unbound)':<20} "
                      f"{r['enrolled_at'].strftime('%Y-%m-%d %H:%M'):<17} {r['entries']:>8}  {state}")
            return 0
        if not args.device:
            raise ValueError(f"collector device {args.action} needs a device id")
        done = (store.revoke_device(args.device, now=_now()) if args.action == "revoke"
                else store.request_rotation(args.device))
        if not done:
            raise ValueError(f"no enrolled device {args.device!r} (see `collector device list`)")
    print(f"{args.device}: " + ("revoked; its token is refused from now on" if args.action == "revoke"
                                 else "a new token goes to the kiosk with its next upload"))
    return 0


def cmd_denylist(args: argparse.Namespace) -> int:
    """Make a deny list document from subject keys (one per line: `cccd:<ID>`, `dcc:<UVCI>`
    or `hd1:<idh>`, optionally a note after a tab), keyed with scrypt and a fresh salt so
    kiosks can check it offline and no one can invert it; then publish it.

    Example: collector denylist denied.txt --out denylist.json && collector publish denylist denylist.json
    """
    from kiosk.checks.denylist import make_denylist

    items = []
    for n, line in enumerate(Path(args.file).read_text(encoding="utf-8").splitlines(), 1):
        key, _, note = line.strip().partition("\t")
        if not key or key.startswith("#"):
            continue
        if ":" not in key:
            raise ValueError(f"{args.file}:{n}: {key[:20]!r} is not a subject key (cccd:<ID>, dcc:<UVCI>, hd1:<idh>)")
        items.append((key.strip(), note.strip()))
    Path(args.out).write_bytes(make_denylist(items))
    print(f"{len(items)} subjects keyed into {args.out}")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Forget who was where: clear personal fields, masked names and person keys of
    entries older than the tracing retention window (the counts for reports stay).
    Run daily by collector-retention.timer.

    Example: collector retention --days 21
    Example: collector retention --days 21 --drop-days 400   (also forget days older than 400)
    """
    days = args.days or _config(args).retention_days
    with _store(args, must_exist=True) as store:
        cleared = store.purge_personal(before=_now() - timedelta(days=days))
        from collector.declarations import purge_personal as purge_declarations

        cleared_declarations = purge_declarations(store, before=_now() - timedelta(days=days))
        if args.drop_days:
            from collector import partitions
            from collector.storage import entries

            first_kept = _now().astimezone(REPORT_TZ).date() - timedelta(days=args.drop_days)
            dropped = partitions.drop_days_before(store.engine, entries, first_kept)
            store.forget_rollup_before(first_kept)  # the report counts of those days go too
            what = "day partitions" if store.dialect == "postgresql" else "entries"
            print(f"dropped {dropped} {what} before {first_kept.isoformat()}")
    print(f"cleared the personal fields of {cleared} entries older than {days} days")
    print(f"cleared the personal fields of {cleared_declarations} declarations older than {days} days")
    return 0


def _signing_key(args: argparse.Namespace):
    from collector.publish import load_signing_key

    path = args.key or _config(args).publisher_key_file
    if not path:
        raise config_mod.CollectorConfigError(
            "no publishing key: give --key FILE or set publisher_key_file "
            "(make one with `collector publisher-keygen --out FILE`)")
    return load_signing_key(path)


def cmd_publish(args: argparse.Namespace) -> int:
    """Sign a trust list, venue rules or deny list file with the publishing key and
    publish it for kiosks to fetch (version = the published one + 1).

    Example: collector publish trust trustlist.json --key /etc/collector/publisher.pem
    """
    from collector.publish import publish

    body = Path(args.file).read_bytes()
    ctype = args.content_type or ("application/toml" if args.file.endswith(".toml") else "application/json")
    key = _signing_key(args)
    valid_for = timedelta(days=args.valid_days) if args.valid_days else None
    with _store(args) as store:
        try:
            doc = publish(store, args.name, body, key=key, now=_now(), content_type=ctype,
                          valid_for=valid_for)
        except ValueError as exc:
            print(f"collector: error: {args.file}: {exc}", file=sys.stderr)
            return 2
    print(f"published {args.name}: {len(body)} bytes signed, ETag {doc.etag}")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    """Offer a new kiosk version to the fleet: keep the wheel, sign the update offer.

    Kiosks in the rollout (their venue or id listed, or their bucket under --percent)
    download it with their next sync, install it into their other slot, run it on trial
    and roll back by themselves when it does not come up (kiosk.update). Make the wheel
    with `python -m pip wheel --no-deps -w dist .` in the source tree.

    Example: collector update dist/kiosk-0.2.0-py3-none-any.whl --percent 10 --venue BV-01
    """
    from collector.updates import publish_update

    key = _signing_key(args)
    with _store(args) as store:
        try:
            doc, offer = publish_update(store, args.wheel, key=key, now=_now(), percent=args.percent,
                                        venues=args.venue, devices=args.device,
                                        allow_downgrade=args.allow_downgrade)
        except ValueError as exc:
            print(f"collector: error: {exc}", file=sys.stderr)
            return 2
    where = ", ".join([f"{offer.percent} % of kiosks"] + [f"venue {v}" for v in offer.venues] +
                      [f"device {d}" for d in offer.devices])
    print(f"offered kiosk {offer.version} ({offer.size} bytes, SHA-256 {offer.sha256[:12]}...) to {where}; "
          f"ETag {doc.etag}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    """Publish revocations: each line of FILE is a hex hash (EU DCC revocation design:
    first 16 bytes of SHA-256 of the UVCI, of country+UVCI or of the signature),
    `uvci:<UVCI>` or `country-uvci:<CC>:<UVCI>`. --remove withdraws them again.

    Example: collector revoke revoked.txt --key /etc/collector/publisher.pem
    """
    from collector.publish import publish_revocation_index, revoke
    from kiosk.checks.revocation import parse_line

    hashes: list[str] = []
    for number, line in enumerate(Path(args.file).read_text(encoding="utf-8").splitlines(), 1):
        try:
            hashes += parse_line(line)
        except ValueError as exc:
            print(f"collector: error: {args.file} line {number}: {exc}", file=sys.stderr)
            return 2
    key = _signing_key(args)
    with _store(args) as store:
        if hashes:
            count = revoke(store, hashes, key=key, now=_now(), remove=args.remove)
        else:  # an empty file still publishes a fresh (signed) index
            publish_revocation_index(store, key=key, now=_now())
            count = 0
    print(f"{'withdrew' if args.remove else 'revoked'} {count} hashes; "
          f"revocation index version {_index_version(args)}")
    return 0


def _index_version(args: argparse.Namespace) -> int:
    from kiosk.checks.signed import peek

    with _store(args) as store:
        doc = store.document("revocations")
    return peek(doc.body).version if doc else 0


def cmd_publisher_keygen(args: argparse.Namespace) -> int:
    """Make the health department's publishing key: it signs every document kiosks trust.

    The private key goes to FILE (mode 0600; the collector's publisher_key_file); the
    public half is printed for every kiosk's sync.publisher_key (`kiosk provision
    --publisher-key` or a provisioning QR).
    Example: collector publisher-keygen --out /etc/collector/publisher.pem
    """
    from collector.publish import write_signing_key
    from kiosk.checks.signed import generate_private_key, private_key_pem, public_key_text

    key = generate_private_key()
    try:
        write_signing_key(args.out, private_key_pem(key))
    except FileExistsError:
        print(f"collector: error: {args.out} exists; not overwriting a publishing key", file=sys.stderr)
        return 2
    print(f"publisher_key_file = \"{args.out}\"   # collector config: keep it secret")
    print(f"publisher_key = \"{public_key_text(key)}\"   # kiosk config, [sync] section")
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
    with _store(args, must_exist=True) as store:
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
    from kiosk import __version__  # one version for the kiosk and its collector (one setup.py)

    parser = _Parser(prog="collector", description=__doc__.splitlines()[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="Example: collector serve --db sqlite:///collector.db --port 8470\n"
                            "         collector enrol-code --device hn-bv-01 --venue BM-01\n"
                            "Run `collector COMMAND --help` for each command's options and an example.")
    parser.add_argument("--version", action="version", version=f"collector {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = _add(sub, "serve", cmd_serve)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_int_in(1, 65535, "a port number"), help=f"port (default {config_mod.DEFAULT_PORT})")
    p.add_argument("--workers", type=_int_in(1, 64, "a number of processes"), default=1, metavar="N",
                   help="server processes sharing the port (default 1; no state is kept in one)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate chain (or tls_cert)")
    p.add_argument("--tls-key", metavar="PEM", help="... and this private key (or tls_key)")
    p = _add(sub, "enrol-code", cmd_enrol_code)
    p.add_argument("--device", required=True, metavar="ID", help="the device id the code is for")
    p.add_argument("--venue", required=True, metavar="CODE", help="the venue the device is bound to")
    p.add_argument("--ttl-hours", type=float, default=24 * 7, help="how long the code stays valid")
    p.add_argument("--venue-name", help="also register the venue for the report under this name")
    p.add_argument("--venue-type", help="... of this type (hospital, school, market, ...; see collector venue)")
    p.add_argument("--district", help="... in this district")
    p.add_argument("--commune", help="... and commune")
    p = _add(sub, "publish", cmd_publish)
    p.add_argument("name", choices=[d for d in DOCUMENTS if d not in ("revocations", "tracing_key", "update")])
    p.add_argument("file")
    p.add_argument("--content-type", help="default: application/json (application/toml for .toml)")
    p.add_argument("--key", metavar="FILE", help="publishing key (default: publisher_key_file)")
    p.add_argument("--valid-days", type=float, help="valid-until = now + this (default: per document)")
    p = _add(sub, "update", cmd_update)
    p.add_argument("wheel", help="kiosk-<version>-py3-none-any.whl")
    p.add_argument("--percent", type=_int_in(0, 100, "a percentage"), default=100,
                   help="share of all kiosks offered it (default 100)")
    p.add_argument("--venue", action="append", default=[], metavar="CODE", help="also every kiosk at this venue")
    p.add_argument("--device", action="append", default=[], metavar="ID", help="also this kiosk")
    p.add_argument("--allow-downgrade", action="store_true",
                   help="publish an older version anyway (kiosks will refuse it)")
    p.add_argument("--key", metavar="FILE", help="publishing key (default: publisher_key_file)")
    p = _add(sub, "revoke", cmd_revoke)
    p.add_argument("file", help="hashes, uvci:<UVCI> or country-uvci:<CC>:<UVCI>, one per line")
    p.add_argument("--remove", action="store_true", help="withdraw these revocations")
    p.add_argument("--key", metavar="FILE", help="publishing key (default: publisher_key_file)")
    p = _add(sub, "publisher-keygen", cmd_publisher_keygen)
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the private key")
    # report [--send|--xlsx|--html], deliver, status, venue add|import|list
    from collector import report_cli

    report_cli.register(sub, _add, store_of=_store, config_of=_config)
    # poster, roster import|status, issuer (the declaration form: collector.form_cli)
    from collector import form_cli

    form_cli.register(sub, _add, store_of=_store, config_of=_config)
    _add(sub, "keygen", cmd_keygen)
    p = _add(sub, "device", cmd_device)
    p.add_argument("action", choices=("list", "revoke", "rotate"))
    p.add_argument("device", nargs="?", metavar="ID", help="the device (revoke, rotate)")
    p = _add(sub, "denylist", cmd_denylist)
    p.add_argument("file", help="subject keys, one per line (a note after a tab)")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the deny list document")
    p = _add(sub, "retention", cmd_retention)
    p.add_argument("--days", type=_int_in(1, 3650, "a number of days"),
                   help="keep personal fields this long (default: retention_days, 21)")
    p.add_argument("--drop-days", type=_int_in(1, 36500, "a number of days"), metavar="N",
                   help="also forget whole days older than N days, counts included "
                        "(PostgreSQL drops their partitions)")
    p = _add(sub, "count", cmd_count)
    p.add_argument("--device", help="only this device's entries")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import sqlalchemy.exc

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (config_mod.CollectorConfigError, ValueError, OSError) as exc:
        print(f"collector: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except sqlalchemy.exc.SQLAlchemyError as exc:  # bad URL, unreachable or refusing database
        print(f"collector: error: database: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
