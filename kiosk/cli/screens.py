"""`kiosk screens`: render every screen to PNG files, so anyone can review them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kiosk.cli._common import add_command, config_from
from kiosk.errors import ConfigError

__all__ = ["register"]


def cmd_screens(args: argparse.Namespace) -> int:
    """Render every screen (idle, scanning, pass, fail, review, each fault, and a
    warning banner) to PNG files for review.

    With --size: DIR/<state>.png at that size. Without: every supported size, into
    DIR/800x480/<state>.png, DIR/1024x600/<state>.png and DIR/1920x1080/<state>.png.
    The venue name and check-in URL come from the config.

    Example: kiosk screens --out /tmp/screens --size 800x480
    """
    from kiosk.demo.screens import write_screens
    from kiosk.display.screen import SIZES, parse_size

    cfg = config_from(args)
    out = Path(args.out)
    sizes = [parse_size(args.size)] if args.size else list(SIZES)
    allowed = ", ".join(f"{w}x{h}" for w, h in SIZES)
    if sizes[0] not in SIZES:
        raise ConfigError(f"--size {args.size}: not a screen size the kiosk has; allowed (display.size): {allowed}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = write_screens(out, sizes, venue_name=cfg.venue.name, checkin_url=cfg.venue.checkin_url,
                                font=cfg.display.font, nested=not args.size)
    except OSError as exc:
        raise ConfigError(f"--out {args.out}: cannot write the screens there: "
                          f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}") from None
    for path in written:
        print(os.fspath(path))
    return 0


def register(sub) -> None:
    p = add_command(sub, "screens", cmd_screens)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files (created)")
    p.add_argument("--size", default=None, metavar="WxH",
                   help="one of the sizes display.size allows: 800x480, 1024x600 or 1920x1080 (default: all three, in subfolders)")
