"""`kiosk voice build`: make the spoken verdicts with espeak-ng (install.sh runs it)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kiosk.cli._common import add_command, add_group, config_from

__all__ = ["register"]


def cmd_voice_build(args: argparse.Namespace) -> int:
    """Make the spoken verdicts: one WAV per verdict (Vietnamese, then English) with
    espeak-ng's voices, into the state folder's voice/ (or --out). The kiosk speaks them
    when display.voice = true.

    Example: kiosk voice build && kiosk --set display.voice=true run
    """
    from kiosk.display.voice import build_voice, voice_dir

    out = Path(args.out) if args.out else voice_dir(config_from(args))
    for path in build_voice(out, espeak=args.espeak):
        print(os.fspath(path))
    return 0


def register(sub) -> None:
    vsub = add_group(sub, "voice", help="make the spoken verdicts (espeak-ng)",
                     description="Make the spoken verdicts the kiosk plays when display.voice = true.\n\n"
                                 "Example: kiosk voice build")
    b = add_command(vsub, "build", cmd_voice_build)
    b.add_argument("--out", metavar="DIR", help="folder for the WAV files (default: <state dir>/voice)")
    b.add_argument("--espeak", metavar="PROGRAM", default=None, help="the espeak-ng program (default: from PATH)")
