"""Parse, verify and decide: one module per QR scheme, the trust store and the pure policy.

`evaluate()` is the one entry point the run loop uses. It never raises on bad input:
every outcome is a Verdict with a reason code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kiosk.model import Credential, Outcome, Reason, Verdict

__all__ = ["evaluate", "recognise"]

PREFIXES = {"HC1:": "dcc", "HD1:": "hd1", "KP1:": "provision"}


def recognise(text: str) -> str:
    """The scheme a QR text belongs to: dcc, hd1, provision, cccd or opaque."""
    for prefix, scheme in PREFIXES.items():
        if text.startswith(prefix):
            return scheme
    if text.count("|") in (6, 7) and text.split("|", 1)[0].isdigit():
        return "cccd"
    return "opaque"


def evaluate(text: str, *, now: datetime, trust: Any = None, rules: Any = None,
             history: Any = None, clock_synced: bool = True) -> tuple[Verdict, Credential | None]:
    """Foundation placeholder until the checks issue lands: recognise only, send to review."""
    scheme = recognise(text)
    return Verdict(Outcome.REVIEW, Reason.IDENTITY_ONLY, scheme), Credential(scheme=scheme)
