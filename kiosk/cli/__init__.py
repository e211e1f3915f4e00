"""The `kiosk` command: a thin layer, each command opens a library object and calls it.

Run `kiosk COMMAND --help` for each command's options and an example.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence

from kiosk import __version__
from kiosk.errors import KioskError

__all__ = ["main", "build_parser"]

Handler = Callable[[argparse.Namespace], int]


def _config(args: argparse.Namespace):
    from kiosk.config import load_config

    overrides = dict(getattr(args, "overrides", None) or {})
    return load_config(getattr(args, "config", None), overrides=overrides)


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False, sort_keys=False), flush=True)


# --- config -------------------------------------------------------------------------

def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a config file and print where it came from.

    Example: kiosk config check /etc/kiosk/kiosk.toml
    """
    from kiosk.config import load_config

    cfg = load_config(args.file) if args.file else _config(args)
    print(f"{cfg.source}: ok")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the effective config as TOML, with a comment on every key.

    Example: kiosk config show > /etc/kiosk/kiosk.toml
    """
    from kiosk.config import to_toml

    sys.stdout.write(to_toml(_config(args)))
    return 0


# --- journal ------------------------------------------------------------------------

def cmd_journal(args: argparse.Namespace) -> int:
    """Print the journal's counts: entries, pending upload, by verdict and by reason.

    Example: kiosk journal --json
    """
    from kiosk.journal import Journal
    from kiosk.model import utcnow

    cfg = _config(args)
    with Journal(cfg.journal_path()) as journal:
        counts = journal.counts(today=utcnow())
        counts["path"] = str(cfg.journal_path())
    if args.json:
        _print_json(counts)
    else:
        print(f"journal  {counts['path']}")
        print(f"entries  {counts['entries']} (today {counts['today']}), pending upload {counts['pending_upload']}")
        print("verdicts " + ", ".join(f"{k} {v}" for k, v in counts["by_verdict"].items()))
        if counts["by_reason"]:
            print("reasons  " + ", ".join(f"{k} {v}" for k, v in sorted(counts["by_reason"].items())))
    return 0


# --- parser -------------------------------------------------------------------------

def _override(text: str) -> tuple[str, object]:
    import tomllib

    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set {text!r}: expected section.key=VALUE")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word is a string
    return key.strip(), parsed


class _Overrides(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        items = dict(getattr(namespace, self.dest) or {})
        key, value = values
        items[key] = value
        setattr(namespace, self.dest, items)


def _add(sub, name: str, handler: Handler, **kwargs) -> argparse.ArgumentParser:
    doc = (handler.__doc__ or "").strip()
    first = " ".join(doc.split("\n\n")[0].split()) if doc else ""  # the first paragraph
    p = sub.add_parser(name, help=first, description=doc,
                       formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    p.set_defaults(func=handler)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="Check-in kiosk: scan a QR code, decide pass/fail/review, log it, signal it.",
        epilog="Config: --config FILE, else $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml, else built-in demo defaults.",
    )
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    parser.add_argument("--config", metavar="FILE", help="config file (TOML)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", type=_override,
                        action=_Overrides, help="override one config key, e.g. --set journal.path=/tmp/j.db")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("config", help="check or show the configuration")
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    c = _add(csub, "check", cmd_config_check)
    c.add_argument("file", nargs="?", help="config file to check (default: the one kiosk would use)")
    _add(csub, "show", cmd_config_show)

    p = _add(sub, "journal", cmd_journal)
    p.add_argument("--json", action="store_true", help="one JSON object")

    for register in _REGISTRARS:
        register(sub)
    return parser


def _register_run(sub) -> None:
    from kiosk import app

    p = _add(sub, "run", app.cmd_run)
    p.add_argument("--headless", action="store_true", help="no screen window")
    p.add_argument("--max-scans", type=int, default=None, metavar="N", help="stop after N codes (testing)")
    p.add_argument("--json", action="store_true", help="one JSON line per verdict")
    p = _add(sub, "demo", app.cmd_demo)
    p.add_argument("--headless", action="store_true", help="no screen window even where a display exists")
    p.add_argument("--fresh", action="store_true", help="start with an empty demo journal")
    p.add_argument("--interval", type=float, default=None, metavar="S", help="seconds between demo frames")
    p.add_argument("--json", action="store_true", help="one JSON line per verdict")
    p.add_argument("--no-collector", action="store_true", help="do not start the local collector")


def _register_decode(sub) -> None:
    from kiosk.scanner import cli as scanner_cli

    scanner_cli.register(sub, _add)


def _register_appliance(sub) -> None:
    from kiosk import appliance_cli

    appliance_cli.register(sub, _add)


def _register_sync(sub) -> None:
    from kiosk.sync import cli as sync_cli

    sync_cli.register(sub, _add)


def _register_display(sub) -> None:
    from kiosk.display import cli as display_cli

    display_cli.register(sub, _add)


def _register_checks(sub) -> None:
    from kiosk.checks import cli as checks_cli

    checks_cli.register(sub, _add)


# Each subsystem adds its commands here: a function taking the subparsers object.
_REGISTRARS: list[Callable] = [_register_run, _register_decode, _register_appliance, _register_sync, _register_checks, _register_display]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KioskError as exc:
        print(f"kiosk: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
