"""`kiosk screens`: render every screen to PNG files, so anyone can review them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kiosk.cli._common import add_command, config_from

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
    written = write_screens(out, sizes, venue_name=cfg.venue.name, checkin_url=cfg.venue.checkin_url,
                            font=cfg.display.font, nested=not args.size)
    for path in written:
        print(os.fspath(path))
    return 0


def register(sub) -> None:
    p = add_command(sub, "screens", cmd_screens)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files (created)")
    p.add_argument("--size", default=None, metavar="WxH",
                   help="one size, e.g. 800x480 (default: 800x480, 1024x600 and 1920x1080 in subfolders)")
