"""What every command module shares: how a command is added, how it gets its config,
how it prints JSON. Only kiosk.cli's modules import this."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

__all__ = ["Handler", "add_command", "add_group", "config_from", "print_json", "progress_on_terminal"]

Handler = Callable[[argparse.Namespace], int]


def config_from(args: argparse.Namespace):
    """The config the command line names: --config FILE (else $KIOSK_CONFIG, else
    /etc/kiosk/kiosk.toml, else the built-in defaults) with each --set on top."""
    from kiosk.config import load_config

    return load_config(getattr(args, "config", None), overrides=dict(getattr(args, "overrides", None) or {}))


def print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False, sort_keys=False), flush=True)


def add_command(sub, name: str, handler: Handler, **kwargs) -> argparse.ArgumentParser:
    """Add a subcommand whose help is the first paragraph of `handler`'s docstring and
    whose description is all of it (with its example)."""
    doc = (handler.__doc__ or "").strip()
    first = " ".join(doc.split("\n\n")[0].split()) if doc else ""  # the first paragraph
    p = sub.add_parser(name, help=first, description=doc,
                       formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    p.set_defaults(func=handler)
    return p


def add_group(sub, name: str, *, help: str, description: str):
    """Add a command group (`kiosk NAME SUBCOMMAND ...`, a subcommand required) whose
    description keeps its line breaks (it ends with an example); returns its subparsers
    for `add_command`."""
    p = sub.add_parser(name, help=help, description=description,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    return p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)


def progress_on_terminal(label: str) -> Callable[[int, int], None] | None:
    """A `(done, total)` callback that redraws one progress line on the terminal, or
    None when stdout is no terminal (under systemd: journald gets no progress noise)."""
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        return None

    def show(done: int, total: int) -> None:
        share = f" ({100 * done // total}%)" if total else ""
        end = "\n" if done >= total else ""
        print(f"\r{label}: {done:,}/{total:,}{share}", end=end, file=sys.stderr, flush=True)

    return show
