"""`kiosk config check|show`."""

from __future__ import annotations

import argparse
import sys

from kiosk.cli._common import add_command, add_group, config_from

__all__ = ["register"]


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a config file and print where it came from.

    Example: kiosk config check /etc/kiosk/kiosk.toml
    """
    from kiosk.config import load_config

    cfg = load_config(args.file) if args.file else config_from(args)
    print(f"{cfg.source}: ok")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the effective config as TOML, with a comment on every key; secrets (the
    device token) as *** unless --reveal-secrets.

    Example: kiosk config show --reveal-secrets > /etc/kiosk/kiosk.toml
    """
    from kiosk.config import to_toml

    sys.stdout.write(to_toml(config_from(args), reveal_secrets=args.reveal_secrets))
    return 0


def register(sub) -> None:
    csub = add_group(sub, "config", help="check or show the configuration",
                     description="Validate a config file, or print the effective one with a comment on every key.\n\n"
                                 "Example: kiosk config check /etc/kiosk/kiosk.toml\n"
                                 "         kiosk --set venue.name=\"Chợ Bến Thành\" config show")
    c = add_command(csub, "check", cmd_config_check)
    c.add_argument("file", nargs="?", help="config file to check (default: the one kiosk would use)")
    show = add_command(csub, "show", cmd_config_show)
    show.add_argument("--reveal-secrets", action="store_true",
                      help="print the device token as it is (to write a config file)")
