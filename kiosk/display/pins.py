"""Choose gpiozero's pin factory: gpiozero already is the pin layer, we only pick it.

Backends, chosen by `pins.backend` in the config or `$KIOSK_PINS`:

- `mock`: gpiozero's MockFactory, the simulated twin. Output pins keep a timed history
  (`pin.states`), input pins can be driven (`pin.drive_low()`). Tests and `kiosk demo`.
- `rpigpio`: RPi.GPIO, Raspberry Pi 4 and older.
- `lgpio`: lgpio, Raspberry Pi 5 (where RPi.GPIO does not work).
- `auto`: lgpio on a Pi 5, RPi.GPIO on an older Pi, the mock anywhere else.

    >>> factory = make_pin_factory("mock")
    >>> type(factory).__name__
    'MockFactory'

Only the chosen backend's module is imported, and only when asked.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from kiosk.errors import ConfigError

__all__ = ["BACKENDS", "ENV_PINS", "PinBackendError", "make_pin_factory", "pi_model", "resolve_backend"]

log = logging.getLogger(__name__)

ENV_PINS = "KIOSK_PINS"
BACKENDS = ("mock", "rpigpio", "lgpio")
CHOICES = (*BACKENDS, "auto")
MODEL_PATH = Path("/proc/device-tree/model")
INSTALL_HINT = "on the Raspberry Pi run `pip install kiosk[pi]` (RPi.GPIO for a Pi 4 and older, lgpio for a Pi 5)"


class PinBackendError(ConfigError):
    """The configured pin backend cannot load here (library missing, not a Pi, no GPIO access)."""


def pi_model(path: Path = MODEL_PATH) -> str:
    """The board's model string ("Raspberry Pi 5 Model B Rev 1.0"), or "" when not a Pi."""
    try:
        text = path.read_bytes().decode("ascii", "replace").strip("\x00 \n")
    except OSError:
        return ""
    return text if text.startswith("Raspberry Pi") else ""


def resolve_backend(requested: str, *, env: Mapping[str, str] | None = None, model: str | None = None) -> str:
    """The concrete backend for a config value; `$KIOSK_PINS` wins over the config.

    >>> resolve_backend("auto", env={}, model="Raspberry Pi 5 Model B Rev 1.0")
    'lgpio'
    >>> resolve_backend("auto", env={}, model="Raspberry Pi 4 Model B Rev 1.4")
    'rpigpio'
    >>> resolve_backend("lgpio", env={"KIOSK_PINS": "mock"})
    'mock'
    """
    env = os.environ if env is None else env
    choice = (env.get(ENV_PINS) or requested or "auto").strip().lower()
    if choice not in CHOICES:
        where = f"${ENV_PINS}" if env.get(ENV_PINS) else "pins.backend"
        raise ConfigError(f"{where} = {choice!r} is not allowed; expected one of {', '.join(CHOICES)}")
    if choice != "auto":
        return choice
    model = pi_model() if model is None else model
    if not model:
        log.info("not a Raspberry Pi: pins.backend auto uses the simulated pins")
        return "mock"
    return "lgpio" if model.startswith("Raspberry Pi 5") else "rpigpio"


def make_pin_factory(backend: str) -> Any:
    """A gpiozero pin factory for a concrete backend, or PinBackendError saying how to fix it."""
    try:
        if backend == "mock":
            from gpiozero.pins.mock import MockFactory

            return MockFactory()
        if backend == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            return RPiGPIOFactory()
        if backend == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
    except ImportError as exc:
        raise PinBackendError(f"pins backend {backend!r} cannot load: {exc}; {INSTALL_HINT}; "
                              f"or set pins.backend = \"mock\" (or {ENV_PINS}=mock) to simulate") from exc
    except Exception as exc:  # noqa: BLE001 - C libraries raise their own types (RuntimeError, lgpio.error)
        raise PinBackendError(f"pins backend {backend!r} cannot open the GPIO chip: {exc}; "
                              f"run as a user in the 'gpio' group on a Raspberry Pi ({INSTALL_HINT}), "
                              f"or set {ENV_PINS}=mock to simulate") from exc
    raise ConfigError(f"pins backend {backend!r} is unknown; expected one of {', '.join(BACKENDS)}")
