"""`kiosk decode`: read QR codes in image files with the kiosk's decoder chain."""

from __future__ import annotations

import argparse
import sys

from kiosk.cli._common import add_command, config_from, print_json
from kiosk.errors import DecodeError

__all__ = ["register", "cmd_decode"]


def cmd_decode(args: argparse.Namespace) -> int:
    """Decode QR codes in image files with the same chain the kiosk runs on camera frames.

    One line per image; with --json one JSON object per line:
    {"path": ..., "codes": [{"text": ..., "engine": ...}], "ms": ...}.
    A file that is not a readable image prints an error line and makes the exit code 1;
    the other files are still decoded.

    Example: kiosk decode --json ticket.png gate-*.jpg
    """

    from kiosk.scanner.decoder import Decoder

    cfg = config_from(args)
    decoder = Decoder(cfg.decoder)
    status = 0
    try:
        for path in args.images:
            try:
                result = decoder.decode_path(path)
            except DecodeError as exc:
                status = 1
                if args.json:
                    print_json({"path": path, "error": str(exc)})
                else:
                    print(f"{path}: error: {exc}", file=sys.stderr, flush=True)
                continue
            if args.json:
                print_json({"path": path, "codes": [{"text": c.text, "engine": c.engine} for c in result.codes],
                       "ms": round(result.ms, 3)})
            elif result.codes:
                for code in result.codes:
                    print(f"{path}: {code.text!r} ({code.engine}, {result.ms:.1f} ms)", flush=True)
            else:
                print(f"{path}: no QR code ({result.ms:.1f} ms)", flush=True)
    finally:
        decoder.close()
    return status


def register(sub) -> None:
    p = add_command(sub, "decode", cmd_decode)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
