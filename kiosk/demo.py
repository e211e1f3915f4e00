"""`kiosk demo`: the whole appliance on material it makes itself.

A demo issuer key and a demo DSC sign declarations and vaccine passports, their trust
list is imported into a demo journal, segno and OpenCV render the codes onto phone
screens and ID cards as a gate camera would see them, and the real run loop replays
those frames through the real decoder, checks, journal, screen and simulated pins.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any, Callable

from kiosk.config import Config, load_config, state_dir

__all__ = ["run_demo", "prepare_demo"]

#: Seconds between demo frames: long enough to read each verdict on screen.
WINDOW_INTERVAL_S = 2.5
HEADLESS_INTERVAL_S = 0.05


def demo_config(args: argparse.Namespace) -> Config:
    """Built-in defaults, with the demo's journal apart from a real one."""
    base = load_config(None, search=False)
    overrides: dict[str, Any] = {
        "scanner.kind": "replay",
        "scanner.replay_path": "",
        "pins.backend": "mock",
        "display.fullscreen": False,
        "journal.path": str(state_dir(base) / "demo" / "journal.db"),
    }
    if args.interval is not None:
        overrides["scanner.replay_interval_s"] = args.interval
    overrides.update(getattr(args, "overrides", None) or {})
    return load_config(None, overrides=overrides, search=False)


def prepare_demo(cfg: Config, journal: Any, frames_dir: Path) -> list[tuple[str, str]]:
    """Import the demo trust list into `journal` and render the demo frames. Returns
    the (label, payload) pairs shown."""
    from kiosk.checks.demo import demo_material
    from kiosk.checks.trust import TrustStore
    from kiosk.model import utcnow
    from kiosk.scanner.synth import write_demo_frames

    now = utcnow()
    material = demo_material(now)
    TrustStore(journal).import_list(material.trust_list_json, now=now)
    if frames_dir.exists():
        shutil.rmtree(frames_dir)
    frames_dir.mkdir(parents=True)
    write_demo_frames([payload for _, payload in material.payloads], frames_dir)
    return list(material.payloads)


def run_demo(args: argparse.Namespace, *, on_event: Callable[[Any], None]) -> int:
    from kiosk.app import Kiosk
    from kiosk.display.screen import display_available
    from kiosk.journal import Journal

    cfg = demo_config(args)
    headless = args.headless or not display_available()
    if args.interval is None:
        from kiosk.config import replace

        cfg = replace(cfg, **{"scanner.replay_interval_s": HEADLESS_INTERVAL_S if headless else WINDOW_INTERVAL_S})
    journal_path = cfg.journal_path()
    if args.fresh and journal_path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(journal_path) + suffix).unlink(missing_ok=True)
    frames_dir = journal_path.parent / "frames"
    with Journal(journal_path, repeat_window_s=cfg.journal.repeat_window_s) as journal:
        payloads = prepare_demo(cfg, journal, frames_dir)
        print(f"demo: {len(payloads)} codes rendered into {frames_dir}; journal {journal_path}", flush=True)
        with Kiosk(cfg, headless=headless, demo_dir=frames_dir, journal=journal, on_event=on_event) as kiosk:
            kiosk.run()
        counts = journal.counts()
    by = counts["by_verdict"]
    print(f"demo: journal holds {counts['entries']} entries (pass {by['pass']}, fail {by['fail']}, "
          f"review {by['review']}), {counts['pending_upload']} pending upload", flush=True)
    return 0
