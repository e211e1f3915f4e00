"""Registers the appliance commands: `kiosk provision`, `kiosk doctor`, `kiosk retention`."""

from __future__ import annotations

import argparse
from typing import Any, Callable

__all__ = ["register"]


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    from kiosk import provision_cli

    provision_cli.register(sub, add)
    for name in ("doctor", "retention"):
        try:
            module = __import__(f"kiosk.{name}", fromlist=["register"])
        except ImportError:
            continue
        module.register(sub, add)
