"""`kiosk doctor`: the self-test checklist of kiosk.doctor, as lines or one JSON object."""

from __future__ import annotations

import argparse
import json
import sys

from kiosk.cli._common import add_command, config_from
from kiosk.doctor import BUTTON_TIMEOUT_S, DECODE_TIMEOUT_S, FAIL, OK, SIMULATED, SKIP, WARN, Check, Doctor, overall

__all__ = ["register"]

_MARK = {OK: "[ ok ]", WARN: "[warn]", FAIL: "[FAIL]", SKIP: "[skip]", SIMULATED: "[sim ]"}


def cmd_doctor(args: argparse.Namespace) -> int:
    """Self-test every part of the kiosk and print a checklist.

    Camera frames and a test code, serial scanner, each light, buzzer, relay, guard
    button, the screen (a test pattern) and the speaker, clock, disk, journal, collector and token, trust list. Exit 1 when any check
    fails. Parts that exist only in software here (simulated pins, SDL's dummy
    drivers) say "simulated", never "ok"; on a Raspberry Pi simulated pins fail. Stop the kiosk first on a device (systemctl stop kiosk): the doctor needs the
    camera and the pins itself.

    Example: kiosk doctor            (on site, with a person at the kiosk)
    Example: kiosk doctor --json     (fleet tools; never waits for a person)
    """
    import logging

    cfg = config_from(args)
    # A source's own fault warnings ("camera fault: ... retrying") would land after the
    # checklist, which already says what failed.
    logging.getLogger("kiosk.scanner").setLevel(logging.ERROR)
    interactive = args.interactive if args.interactive is not None else (not args.json and sys.stdin.isatty())

    def show(check: Check) -> None:
        print(f"  {_MARK[check.status]} {check.name:<15} {check.detail}", flush=True)

    if not args.json:
        print(f"kiosk doctor: {cfg.device.id} at {cfg.venue.name} ({cfg.source})")
    doctor = Doctor(cfg, interactive=interactive, on_check=None if args.json else show,
                    button_timeout_s=args.button_timeout, decode_timeout_s=args.decode_timeout)
    checks = doctor.run()
    status = overall(checks)
    if args.json:
        print(json.dumps({"status": status, "device": cfg.device.id, "config": cfg.source,
                          "checks": [c.as_dict() for c in checks]}, ensure_ascii=False))
    else:
        counts = {s: sum(1 for c in checks if c.status == s) for s in (OK, WARN, FAIL, SKIP, SIMULATED)}
        print(f"{status.upper()}: {counts[OK]} ok, {counts[WARN]} warn, {counts[FAIL]} fail, "
              f"{counts[SIMULATED]} simulated, {counts[SKIP]} skipped", flush=True)
    return 1 if status == FAIL else 0


def register(sub) -> None:
    p = add_command(sub, "doctor", cmd_doctor)
    p.add_argument("--json", action="store_true", help="one JSON object with every check; never asks")
    p.add_argument("--interactive", dest="interactive", action="store_true", default=None,
                   help="ask the technician (default when run in a terminal without --json)")
    p.add_argument("--no-interactive", dest="interactive", action="store_false", help="never ask")
    p.add_argument("--button-timeout", type=float, default=BUTTON_TIMEOUT_S, metavar="S",
                   help="seconds to wait for the guard button")
    p.add_argument("--decode-timeout", type=float, default=DECODE_TIMEOUT_S, metavar="S",
                   help="seconds to wait for a test code in front of the camera")

