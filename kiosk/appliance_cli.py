"""Registers the appliance commands: `kiosk provision`, `kiosk doctor`, `kiosk retention`."""

from __future__ import annotations

import argparse
from typing import Any, Callable

__all__ = ["register"]


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    from kiosk import doctor, provision_cli, retention

    provision_cli.register(sub, add)
    doctor.register(sub, add)
    retention.register(sub, add)
