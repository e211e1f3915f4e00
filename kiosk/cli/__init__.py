"""The `kiosk` command: the top layer. Each command opens one library object, calls one
function and formats what it returns; nothing below this package imports it.

One module per command group, each with a `register(sub)` that adds its subcommands:

    config      kiosk config check|show
    journal     kiosk journal
    run         kiosk run, kiosk demo (and the verdict lines they print)
    decode      kiosk decode
    check       kiosk check, kiosk trust import|status, kiosk declaration keygen|issue
    sync        kiosk sync, kiosk enrol
    screens     kiosk screens
    provision   kiosk provision [make-qr|keygen|scan]
    doctor      kiosk doctor
    retention   kiosk retention
    voice       kiosk voice build

Run `kiosk COMMAND --help` for each command's options and an example.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from kiosk import __version__
from kiosk.errors import KioskError

__all__ = ["main", "build_parser"]


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
        items = dict(getattr(namespace, self.dest, None) or {})
        key, value = values
        items[key] = value
        setattr(namespace, self.dest, items)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="Check-in kiosk: scan a QR code, decide pass/fail/review, log it, signal it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Config: --config FILE, else $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml, else built-in demo defaults;\n"
               "--config and --set go before or after the command.\n\n"
               "Example: kiosk demo --headless\n"
               "         kiosk run --config /etc/kiosk/kiosk.toml\n"
               "Run `kiosk COMMAND --help` for each command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    parser.add_argument("--config", metavar="FILE", help="config file (TOML)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", type=_override,
                        action=_Overrides, help="override one config key, e.g. --set journal.path=/tmp/j.db")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from kiosk.cli import check, config, decode, doctor, journal, provision, retention, run, screens, sync, update, voice

    for module in (config, journal, run, decode, provision, doctor, retention, sync, update, check, screens, voice):
        module.register(sub)
    _add_config_options_everywhere(parser)
    return parser


def _add_config_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--config` and `--set` after any subcommand too (`kiosk run --config cam.toml`).

    Parsed into their own names (argparse lets a subcommand's namespace overwrite the
    top one) and merged by `main`: the later one wins, --set keys add up."""
    seen: set[int] = set()

    def walk(p: argparse.ArgumentParser) -> None:
        for action in p._actions:  # noqa: SLF001 - argparse has no public walk of subparsers
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                for child in action.choices.values():
                    if id(child) in seen:
                        continue
                    seen.add(id(child))
                    child.add_argument("--config", dest="sub_config", metavar="FILE", default=argparse.SUPPRESS,
                                       help="config file (TOML); also accepted before the command")
                    child.add_argument("--set", dest="sub_overrides", metavar="KEY=VALUE", type=_override,
                                       action=_Overrides, default=argparse.SUPPRESS,
                                       help="override one config key, e.g. --set journal.path=/tmp/j.db")
                    walk(child)

    walk(parser)


def _merge_config_options(args: argparse.Namespace) -> argparse.Namespace:
    if getattr(args, "sub_config", None):
        args.config = args.sub_config
    if getattr(args, "sub_overrides", None):
        args.overrides = {**(args.overrides or {}), **args.sub_overrides}
    for name in ("sub_config", "sub_overrides"):
        if hasattr(args, name):
            delattr(args, name)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = _merge_config_options(parser.parse_args(argv))
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
