"""`kiosk update apply|status`: the root half of signed A/B software updates (kiosk.update)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from kiosk.cli._common import add_command, add_group, config_from, print_json
from kiosk.errors import TrustError

__all__ = ["register"]


def _layout(args: argparse.Namespace, cfg=None):
    from kiosk.update import Layout

    layout = Layout()
    if cfg is not None and cfg.device.state_dir:  # install.sh sets it: /var/lib/kiosk
        layout.staged = cfg.state_path() / "update"
    if args.prefix:
        layout.prefix = Path(args.prefix)
    if args.staged:
        layout.staged = Path(args.staged)
    if args.state_dir:
        layout.state_dir = Path(args.state_dir)
    return layout


def cmd_apply(args: argparse.Namespace) -> int:
    """Install a staged update into the other slot, switch to it, keep it or roll back.

    Runs as root from kiosk-update.service (started by kiosk-update.path when `kiosk
    sync` has staged a signed offer, and once at boot to finish a trial a power cut
    interrupted). Exit 0 unless the pass itself failed; the outcome is in the state file
    (`kiosk update status`) and in the next heartbeat.

    Example: kiosk update apply   (as root; or: systemctl start kiosk-update)
    """
    from kiosk.update import Updater

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    cfg = config_from(args)
    state = Updater(_layout(args, cfg), publisher_key=cfg.sync.publisher_key,
                    ready_timeout_s=cfg.update.ready_timeout_s, confirm_s=cfg.update.confirm_s).run()
    print_json(state) if args.json else print(_line(state))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Say which version runs in which slot and how the last update went.

    Example: kiosk update status --json
    """
    from kiosk.update import read_state, slot_version

    layout = _layout(args)
    state = read_state(layout.state_dir / "state.json")
    try:
        current = layout.current()
    except TrustError as exc:  # not installed with slots: said, not a crash
        current = None
        state.setdefault("detail", str(exc))
    slots = {name: slot_version(layout.slot(name)) for name in ("a", "b")}
    out = {"current_slot": current, "slots": slots, **state}
    print_json(out) if args.json else print(f"running slot {current or '?'} "
                                            f"({slots.get(current or '', None) or '?'}); last update: {_line(state)}")
    return 0


def _line(state: dict) -> str:
    from kiosk.update import describe

    return describe(state, at=True) if state else "none yet"


def register(sub) -> None:
    group = add_group(sub, "update", help="signed A/B software updates (the root half)",
                      description="Signed software updates with two slots that roll back by themselves.\n\n"
                                  "Example: kiosk update status")
    for name, handler in (("apply", cmd_apply), ("status", cmd_status)):
        p = add_command(group, name, handler)
        p.add_argument("--prefix", help="the install folder holding slots/ and venv (default /opt/kiosk)")
        p.add_argument("--staged", help="where kiosk sync stages offers (default /var/lib/kiosk/update)")
        p.add_argument("--state-dir", help="the updater's own folder (default /var/lib/kiosk-update)")
        p.add_argument("--json", action="store_true", help="one JSON object")
