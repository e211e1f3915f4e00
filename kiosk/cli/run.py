"""`kiosk run` and `kiosk demo`, and the line each verdict prints."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from kiosk.cli._common import add_command, config_from, print_json
from kiosk.errors import ConfigError

if TYPE_CHECKING:
    from kiosk.pipeline import Event

__all__ = ["register", "print_event", "json_event"]


def print_event(event: Event, label: str | None = None) -> None:
    """One readable line per verdict: time, verdict, reason, scheme, masked name."""
    v = event.verdict
    mark = {"pass": "PASS  ", "fail": "FAIL  ", "review": "REVIEW"}[v.outcome.value]
    again = "  (repeat, not logged again)" if event.repeat else ""
    shown = f"{v.scheme:<9}{v.name or ''}"
    tail = f"{shown:<26}[{label}]" if label else shown.rstrip()
    print(f"{event.scan.at.astimezone().strftime('%H:%M:%S')}  {mark} {v.reason.value:<22} {tail}{again}",
          flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the kiosk: scan, decide, log and signal until stopped (SIGTERM or Ctrl-C).

    Example: kiosk --config /etc/kiosk/kiosk.toml run
    """
    from kiosk.appliance import Kiosk

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = config_from(args)
    on_event = json_event if args.json else print_event
    if cfg.scanner.kind == "replay" and not cfg.scanner.replay_path:
        return _run_on_demo_frames(cfg, args, on_event)
    with Kiosk(cfg, headless=args.headless, on_event=on_event, max_scans=args.max_scans) as kiosk:
        return kiosk.run()


def _run_on_demo_frames(cfg, args: argparse.Namespace, on_event) -> int:
    """The defaults (`scanner.kind = "replay"`, no `replay_path`): the built-in demo frames
    and the demo trust list, made for this run and said so in one line."""
    import tempfile
    from pathlib import Path

    from kiosk.appliance import Kiosk
    from kiosk.demo.runner import prepare_demo
    from kiosk.pipeline import open_journal

    print(f"run: {cfg.source}: scanner.replay_path is empty: replaying the built-in demo frames with the "
          "demo trust list (set scanner.kind and its keys for a real camera or scanner)", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="kiosk-demo-frames-") as tmp, open_journal(cfg) as journal:
        prepare_demo(cfg, journal, Path(tmp) / "frames")
        with Kiosk(cfg, headless=args.headless, demo_dir=Path(tmp) / "frames", journal=journal,
                   on_event=on_event, max_scans=args.max_scans) as kiosk:
            return kiosk.run()


def json_event(event: Event, label: str | None = None) -> None:
    """One JSON line per verdict (for scripts and tests)."""
    out = event.verdict.as_dict()
    if label is not None:
        out["label"] = label
    if isinstance(out.get("detail"), dict):
        # A check's message may quote the value it refused (a birth date, a name): stdout
        # goes to journald, so only where the check failed is printed, never what it read.
        out["detail"] = {k: v for k, v in out["detail"].items() if k != "message"}
    out.update(id=event.entry.id if event.entry else None, logged=bool(event.entry and event.entry.logged),
               at=event.scan.at.isoformat(), engine=event.scan.engine)
    print_json(out)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole kiosk on built-in demo material: generated QR frames (phones, ID
    cards, dark mode, tilted), simulated pins, a local journal and a local collector.

    Prints each verdict and exits 0 when the frames are done. Shows the real screen in a
    window where a display exists; --headless never opens one.

    Uses the built-in defaults (--config is refused, --set honoured except the scanner,
    the pins and the collector, which the demo sets itself) and keeps its journal in a
    folder of its own per checkout (printed; --fresh empties it). It uploads only to the
    local collector it starts; to see your own entries at a collector, see the README.

    Example: kiosk demo --headless
    """
    from kiosk.demo.runner import run_demo

    if getattr(args, "config", None):
        raise ConfigError(f"demo: --config {args.config} is not used: the demo runs on the built-in defaults "
                          "(with --set on top); run a config with: kiosk run --config FILE")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return run_demo(on_event=json_event if args.json else print_event, headless=args.headless, fresh=args.fresh,
                    interval=args.interval, local_collector_wanted=not args.no_collector,
                    overrides=getattr(args, "overrides", None))


def register(sub) -> None:
    p = add_command(sub, "run", cmd_run)
    p.add_argument("--headless", action="store_true", help="no screen window")
    p.add_argument("--max-scans", type=int, default=None, metavar="N", help="stop after N codes (testing)")
    p.add_argument("--json", action="store_true", help="one JSON line per verdict")
    p = add_command(sub, "demo", cmd_demo)
    p.add_argument("--headless", action="store_true", help="no screen window even where a display exists")
    p.add_argument("--fresh", action="store_true", help="start with an empty demo journal")
    p.add_argument("--interval", type=float, default=None, metavar="S", help="seconds between demo frames")
    p.add_argument("--json", action="store_true", help="one JSON line per verdict")
    p.add_argument("--no-collector", action="store_true", help="do not start the local collector")
