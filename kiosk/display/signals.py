"""Lights, buzzer, door relay and guard button, on gpiozero devices.

Every call returns at once: blinking, beeping and the relay pulse run in gpiozero's
background threads. A verdict pattern shows until `idle()`; then the fault pattern (if
any) comes back.

    >>> from kiosk.config import PinsConfig
    >>> from kiosk.model import Outcome, Reason, Verdict
    >>> with Signals(PinsConfig(backend="mock")) as signals:   # doctest: +SKIP
    ...     signals.signal(Verdict(Outcome.PASS, Reason.OK))
    ...     signals.green.is_lit, signals.relay.value
    (True, 1)

| verdict | lights                 | buzzer             | relay                   |
|---------|------------------------|--------------------|-------------------------|
| pass    | green on               | one long tone      | pulsed `relay_pulse_s`  |
| fail    | red on                 | three short tones  | -                       |
| review  | green and red blinking | two medium tones   | -                       |

Faults blink the red light (green for none of them, so no one mistakes a fault for a
pass): disk full fast, camera or scanner fault slow, clock short-long, trust list stale
or offline a short flash every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterable

from kiosk.errors import DeviceClosed, KioskError
from kiosk.model import Outcome, Verdict
from kiosk.display.pins import PinBackendError, make_pin_factory, resolve_backend
from kiosk.display.screen import FAULT_KINDS
from kiosk.display.tones import TONES

__all__ = ["FAULT_PATTERNS", "GUARD_REPEAT_S", "REVIEW_BLINK_S", "Signals", "UnknownFault"]

log = logging.getLogger(__name__)

#: Review: both lights blink together at this half-period (reads as amber from afar).
REVIEW_BLINK_S = 0.3
#: Fault kind -> red light (on seconds, off seconds). Most severe wins (FAULT_KINDS order).
FAULT_PATTERNS: dict[str, tuple[float, float]] = {
    "disk_full": (0.2, 0.2),
    "journal_fault": (0.2, 0.2),
    "camera_fault": (1.0, 1.0),
    "scanner_fault": (1.0, 1.0),
    "clock_unsynced": (0.5, 1.5),
    "collector_untrusted": (0.15, 2.85),
    "uploads_refused": (0.15, 2.85),
    "trust_stale": (0.15, 2.85),
    "offline": (0.15, 2.85),
}
#: One guard admission per press: a second press this soon is contact bounce or a
#: double tap, and must not admit the person before the last one as well. Applied in
#: software too, because not every pin backend debounces (the mock does not).
GUARD_REPEAT_S = 1.0

DEVICES = ("green", "red", "buzzer", "relay", "button")


class UnknownFault(KioskError, ValueError):
    """set_faults() got a kind that is not a known fault."""


class Signals:
    """The kiosk's lights, buzzer, relay and guard button; a context manager.

    `pin_factory=None` picks the backend from `pins_cfg.backend` / `$KIOSK_PINS`.
    `clock` (monotonic seconds) is only for the guard button's repeat guard.
    """

    def __init__(self, pins_cfg: Any, *, pin_factory: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from gpiozero import LED, Button, Buzzer, DigitalOutputDevice, GPIOZeroError

        self.cfg = pins_cfg
        self._clock = clock
        self._own_factory = pin_factory is None
        self.backend = resolve_backend(pins_cfg.backend) if pin_factory is None else type(pin_factory).__name__
        self.factory = make_pin_factory(self.backend) if pin_factory is None else pin_factory
        self._lock = threading.RLock()
        self._closed = False
        self._faults: frozenset[str] = frozenset()
        self._verdict: str | None = None
        self._guard: Callable[[], Any] | None = None
        self._last_press: float | None = None
        self._devices: list[Any] = []
        try:
            f = self.factory
            self.green = self._add(LED(pins_cfg.green, pin_factory=f))
            self.red = self._add(LED(pins_cfg.red, pin_factory=f))
            self.buzzer = self._add(Buzzer(pins_cfg.buzzer, pin_factory=f))
            self.relay = self._add(DigitalOutputDevice(pins_cfg.relay, active_high=not pins_cfg.relay_active_low,
                                                       initial_value=False, pin_factory=f))
            self.button = self._add(Button(pins_cfg.button, pull_up=True, pin_factory=f,
                                           bounce_time=pins_cfg.button_bounce_s or None))
        except GPIOZeroError as exc:
            self.close()
            raise PinBackendError(f"cannot set up the signal pins on {self.backend}: {exc}; "
                                  "check the [pins] numbers in the config") from exc
        self.button.when_pressed = self._pressed
        # Simulated pins: start the history at setup, with each pin's real resting level
        # (before setup a mock pin reads low, which would look like a released
        # active-low door or a pressed button).
        for device in self._devices:
            if hasattr(device.pin, "clear_states"):
                device.pin.clear_states()

    def _add(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    # --- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> "Signals":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Lights and buzzer off, relay released, pins freed. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for device in reversed(self._devices):
                device.close()
            self._devices.clear()
            if self._own_factory:
                self.factory.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceClosed("signals are closed")

    # --- verdicts ----------------------------------------------------------------------
    def signal(self, verdict: Verdict) -> None:
        """Show a verdict on the lights, buzzer and relay (returns at once)."""
        kind = verdict.outcome.value
        with self._lock:
            self._check_open()
            self._verdict = kind
            self._lights_off()
            if verdict.outcome is Outcome.PASS:
                self.green.on()
                if verdict.admits:
                    # n=1: one pulse, then gpiozero's thread releases the door by itself.
                    self.relay.blink(on_time=self.cfg.relay_pulse_s, off_time=0, n=1, background=True)
            elif verdict.outcome is Outcome.FAIL:
                self.red.on()
            else:
                self.green.blink(REVIEW_BLINK_S, REVIEW_BLINK_S, background=True)
                self.red.blink(REVIEW_BLINK_S, REVIEW_BLINK_S, background=True)
            tone = TONES[kind]
            self.buzzer.beep(on_time=tone.on_s, off_time=tone.off_s, n=tone.count, background=True)

    def idle(self) -> None:
        """The verdict is over: lights back to the fault pattern (or off). A running
        relay pulse or tone finishes on its own; the door is never cut short."""
        with self._lock:
            self._check_open()
            self._verdict = None
            self._show_faults()

    # --- faults ------------------------------------------------------------------------
    def set_faults(self, kinds: Iterable[str]) -> None:
        """The faults active now; their light pattern shows whenever no verdict does.
        Calling again with the same set changes nothing (the blink does not restart)."""
        kinds = frozenset(kinds)
        unknown = kinds - set(FAULT_PATTERNS)
        if unknown:
            raise UnknownFault(f"unknown fault {sorted(unknown)[0]!r}; expected one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._check_open()
            if kinds == self._faults:
                return
            self._faults = kinds
            if self._verdict is None:
                self._show_faults()

    @property
    def faults(self) -> frozenset[str]:
        return self._faults

    def _show_faults(self) -> None:
        self._lights_off()
        for kind in FAULT_KINDS:  # most severe first
            if kind in self._faults:
                on_s, off_s = FAULT_PATTERNS[kind]
                self.red.blink(on_s, off_s, background=True)
                return

    def _lights_off(self) -> None:
        self.green.off()
        self.red.off()

    # --- guard button ------------------------------------------------------------------
    def when_guard(self, callback: Callable[[], Any] | None) -> None:
        """Call `callback()` once per guard button press (debounced). It runs in the
        pin backend's thread: keep it short (put an event on a queue)."""
        with self._lock:
            self._check_open()
            self._guard = callback

    def _pressed(self) -> None:
        now = self._clock()
        with self._lock:
            if self._closed:
                return
            hold = max(GUARD_REPEAT_S, self.cfg.button_bounce_s)
            if self._last_press is not None and now - self._last_press < hold:
                log.debug("guard button: repeat within %.2fs ignored", hold)
                return
            self._last_press = now
            callback = self._guard
        if callback is None:
            log.info("guard button pressed; nothing is listening")
            return
        try:
            callback()
        except KioskError as exc:  # e.g. the journal cannot write: say so, keep the button alive
            log.error("guard button action failed: %s", exc)

    # --- what happened (simulated pins) --------------------------------------------------
    def pin(self, name: str) -> Any:
        """The gpiozero pin behind a device ("green", "red", "buzzer", "relay", "button")."""
        if name not in DEVICES:
            raise KeyError(f"no device {name!r}; expected one of {', '.join(DEVICES)}")
        return getattr(self, name).pin

    @property
    def history(self) -> list[tuple[float, str, int]]:
        """`(seconds since setup, device, value)` for every change, oldest first; `value`
        is logical (1 = light on, buzzer sounding, door released, button pressed),
        whatever the wiring's polarity. Only simulated pins record history; real
        backends give []."""
        out: list[tuple[float, str, int]] = []
        for name in DEVICES:
            device = getattr(self, name, None)
            states = getattr(getattr(device, "pin", None), "states", None) if device is not None else None
            if not states:
                continue
            # A pulled-up button reads low when pressed; outputs know their own polarity.
            active_high = (not device.pull_up) if name == "button" else device.active_high
            t = 0.0
            for state in list(states):
                t += state.timestamp
                level = int(bool(state.state))
                out.append((t, name, level if active_high else 1 - level))
        out.sort(key=lambda item: item[0])
        return out

    def on_periods(self, name: str) -> list[tuple[float, float]]:
        """`(start, seconds on)` for each finished time `name` was on, from `history`."""
        periods: list[tuple[float, float]] = []
        start: float | None = None
        for t, device, value in self.history:
            if device != name:
                continue
            if value and start is None:
                start = t
            elif not value and start is not None:
                periods.append((start, t - start))
                start = None
        return periods
