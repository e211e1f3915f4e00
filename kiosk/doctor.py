"""`kiosk doctor`: the on-site self-test, read like a checklist.

Every part in turn: the camera opens and delivers frames (and decodes a code held up),
the serial scanner answers, each light, the buzzer and the relay fire, the guard button
is pressed when asked, the clock is synchronised, there is disk space, the journal is
intact, the collector is reachable and accepts the device token, the trust list is
fresh. Each check ends `ok`, `warn`, `fail` or `skip` with one line of detail; any
`fail` makes the exit code non-zero. `--json` prints one object for fleet tools.

Stop the kiosk first on a real device (`systemctl stop kiosk`): the doctor needs the
camera and the GPIO pins to itself.

    >>> Check("disk", OK, "3.1 GB free").as_dict()
    {'name': 'disk', 'status': 'ok', 'detail': '3.1 GB free'}
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

from kiosk.config import Config
from kiosk.errors import short_error
from kiosk.health import clock_synchronised_flag

__all__ = ["Check", "Doctor", "OK", "WARN", "FAIL", "SKIP", "SIMULATED", "CHECKS", "overall", "running_on_pi"]

log = logging.getLogger(__name__)

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
#: A part that only exists in software here (gpiozero's MockFactory, SDL's dummy
#: drivers): not a pass. On a Raspberry Pi simulated pins are a FAIL instead.
SIMULATED = "simulated"
#: The checklist, in the order a technician walks through it.
CHECKS = ("config", "camera", "camera_decode", "serial_scanner", "light_green", "light_red",
          "buzzer", "relay", "guard_button", "screen", "speaker", "clock", "disk", "journal", "sealing",
          "collector", "trust_list")
#: Where the kernel names the board (a Pi: "Raspberry Pi 4 Model B Rev 1.4").
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
#: How long the screen's test pattern stays up (a technician looks at it).
PATTERN_S = 1.5

CAMERA_SECONDS = 2.0          # how long to watch the camera for frames
DECODE_TIMEOUT_S = 15.0       # how long a technician has to hold up a test code
READ_TIMEOUT_S = 0.5
OUTPUT_ON_S = 0.6             # each light/buzzer/relay stays on this long (visible, audible)
MOCK_OUTPUT_ON_S = 0.02
BUTTON_TIMEOUT_S = 15.0
SERIAL_ANSWER_TIMEOUT_S = 1.5
HTTP_TIMEOUT_S = 5.0
#: GM65/GM805 "read one setting register" (address 0x000D, CRC check skipped with AB CD).
#: The module answers 02 00 00 <len> <data> <crc>; in every mode it keeps this protocol.
GM65_QUERY = bytes.fromhex("7E 00 07 01 00 0D 01 AB CD")
GM65_ANSWER_PREFIX = b"\x02\x00\x00"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def overall(checks: list[Check]) -> str:
    # "simulated" is not a failure (a laptop, CI), but never "ok" in the checklist.
    statuses = {c.status for c in checks}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else OK


def running_on_pi(model_file: Path = DEVICE_TREE_MODEL) -> bool:
    """True on a Raspberry Pi (the device tree names the board)."""
    try:
        return "raspberry pi" in model_file.read_bytes().decode("ascii", "replace").lower()
    except OSError:
        return False


def clock_synchronised() -> bool | None:
    """True/False from systemd (timedatectl, or timesyncd's flag file); None: unknown."""
    try:
        out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
            return out.stdout.strip() == "yes"
    except (OSError, subprocess.TimeoutExpired):
        pass  # no timedatectl (container) or no D-Bus: fall back to the flag file
    return True if clock_synchronised_flag() else None


class Doctor:
    """Runs the checklist. Everything that touches the world can be injected for tests.

    `interactive`: ask the technician (hold up a code, press the button, did the light
    come on). Otherwise nothing waits for a person: simulated pins are driven, real ones
    are fired without asking, the button check on real pins is skipped.
    """

    def __init__(self, cfg: Config, *, interactive: bool = False, now: Callable[[], datetime] | None = None,
                 ask: Callable[[str], str] = input, say: Callable[[str], None] | None = None,
                 pin_factory: Any = None, clock_probe: Callable[[], bool | None] = clock_synchronised,
                 button_timeout_s: float = BUTTON_TIMEOUT_S, decode_timeout_s: float = DECODE_TIMEOUT_S,
                 camera_seconds: float = CAMERA_SECONDS, on_check: Callable[[Check], None] | None = None,
                 on_pi: Callable[[], bool] = running_on_pi) -> None:
        from kiosk.model import utcnow

        self.cfg = cfg
        self.interactive = interactive
        self.now = now or utcnow
        self.ask = ask
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.pin_factory = pin_factory
        self.clock_probe = clock_probe
        self.button_timeout_s = button_timeout_s
        self.decode_timeout_s = decode_timeout_s
        self.camera_seconds = camera_seconds
        self.on_check = on_check
        self.on_pi = on_pi
        self._pins_mock = False

    # --- driver ------------------------------------------------------------------
    def run(self) -> list[Check]:
        results: list[Check] = []
        for group in (self._config, self._camera, self._serial, self._pins, self._screen_and_speaker,
                      self._clock, self._disk, self._journal_and_collector):
            for check in self._guarded(group):
                results.append(check)
                if self.on_check is not None:
                    self.on_check(check)
        return results

    def _guarded(self, group: Callable[[], Iterator[Check]]) -> Iterator[Check]:
        names = _GROUP_NAMES[group.__name__]
        done: set[str] = set()
        try:
            for check in group():
                done.add(check.name)
                yield check
        except Exception as exc:  # noqa: BLE001 - a self-test reports every failure and goes on
            log.debug("doctor check %s failed", group.__name__, exc_info=True)
            for name in names:
                if name not in done:
                    yield Check(name, FAIL, f"{type(exc).__name__}: {exc}")

    # --- config -------------------------------------------------------------------
    def _config(self) -> Iterator[Check]:
        c = self.cfg
        detail = (f"{c.source}: device {c.device.id!r}, venue {c.venue.code} {c.venue.name!r}, "
                  f"scanner {c.scanner.kind}, pins {c.pins.backend}")
        status = OK
        if c.file() is None:
            status, detail = WARN, "no config file: running on the built-in demo defaults (run kiosk provision)"
        yield Check("config", status, detail)

    # --- camera --------------------------------------------------------------------
    def _camera(self) -> Iterator[Check]:
        kind = self.cfg.scanner.kind
        if kind not in ("camera", "replay"):
            yield Check("camera", SKIP, f"scanner.kind is {kind}")
            yield Check("camera_decode", SKIP, f"scanner.kind is {kind}")
            return
        if kind == "replay" and not self.cfg.scanner.replay_path:
            yield Check("camera", SKIP, "replay of the built-in demo frames (no scanner.replay_path)")
            yield Check("camera_decode", SKIP, "replay of the built-in demo frames")
            return
        from kiosk.scanner import EndOfStream, Frame, open_source
        from kiosk.scanner.decoder import Decoder

        decoder = Decoder(self.cfg.decoder)
        with open_source(self.cfg) as source:
            frames, shape, ended = 0, None, False
            pending: list[Any] = []
            started = time.monotonic()
            while time.monotonic() - started < self.camera_seconds:
                try:
                    item = source.read(READ_TIMEOUT_S)
                except EndOfStream:
                    ended = True
                    break
                if isinstance(item, Frame):
                    frames += 1
                    shape = item.image.shape
                    pending.append(item.image)
            elapsed = time.monotonic() - started
            if frames == 0:
                why = source.fault or "no frames arrived"
                yield Check("camera", FAIL, f"{self.cfg.scanner.camera if kind == 'camera' else self.cfg.scanner.replay_path}: {why}")
                yield Check("camera_decode", SKIP, "no frames to decode")
                return
            size = f"{shape[1]}x{shape[0]}" if shape is not None and len(shape) >= 2 else "?"
            yield Check("camera", OK, f"{frames} frames in {elapsed:.1f} s, {size}")

            if self.interactive:
                self.say(f"Hold a QR code in front of the camera ({self.decode_timeout_s:.0f} s)...")
            deadline = time.monotonic() + self.decode_timeout_s
            while True:
                for image in pending:
                    result = decoder.decode(image)
                    if result.codes:
                        code = result.codes[0]
                        yield Check("camera_decode", OK, f"read a {_scheme(code.text)} code "
                                    f"({len(code.text)} characters, {code.engine}, {result.ms:.0f} ms)")
                        return
                pending = []
                if ended or time.monotonic() >= deadline:
                    break
                try:
                    item = source.read(READ_TIMEOUT_S)
                except EndOfStream:
                    ended = True
                    continue
                if isinstance(item, Frame):
                    pending.append(item.image)
        status = FAIL if self.interactive else WARN
        yield Check("camera_decode", status, "no QR code read; hold a printed code 20-40 cm from the camera"
                    if self.interactive else "no QR code in view (run kiosk doctor on site and hold one up)")

    # --- serial scanner ------------------------------------------------------------
    def _serial(self) -> Iterator[Check]:
        sc = self.cfg.scanner
        if sc.kind != "serial":
            yield Check("serial_scanner", SKIP, f"scanner.kind is {sc.kind}")
            return
        import serial

        try:
            port = serial.Serial(sc.serial_port, sc.serial_baud, timeout=SERIAL_ANSWER_TIMEOUT_S)
        except (serial.SerialException, OSError) as exc:
            yield Check("serial_scanner", FAIL, f"{sc.serial_port}: cannot open: {exc} "
                        "(plugged in? udev rule 99-kiosk-scanner.rules installed? user in dialout?)")
            return
        with port:
            port.reset_input_buffer()
            port.write(GM65_QUERY)
            port.flush()
            answer = b""
            deadline = time.monotonic() + SERIAL_ANSWER_TIMEOUT_S
            while time.monotonic() < deadline and len(answer) < len(GM65_ANSWER_PREFIX) + 1:
                answer += port.read(16)
        if answer.startswith(GM65_ANSWER_PREFIX):
            yield Check("serial_scanner", OK, f"{sc.serial_port} at {sc.serial_baud} baud answered {answer[:7].hex(' ')}")
        elif answer:
            yield Check("serial_scanner", WARN, f"{sc.serial_port} answered {answer[:16]!r}, not the GM65 protocol "
                        "(wrong baud rate, or another scanner model)")
        else:
            yield Check("serial_scanner", WARN, f"{sc.serial_port} opened but did not answer a settings query "
                        f"within {SERIAL_ANSWER_TIMEOUT_S:g} s (scan a code to test it)")

    # --- pins ---------------------------------------------------------------------
    def _factory(self) -> Any:
        if self.pin_factory is not None:
            factory = self.pin_factory
        else:
            from kiosk.display.pins import make_pin_factory, resolve_backend

            factory = make_pin_factory(resolve_backend(self.cfg.pins.backend))
        self._pins_mock = type(factory).__name__ == "MockFactory"
        return factory

    def _pins(self) -> Iterator[Check]:
        from gpiozero import LED, Button, Buzzer, OutputDevice

        p = self.cfg.pins
        factory = self._factory()
        on_s = MOCK_OUTPUT_ON_S if self._pins_mock else OUTPUT_ON_S
        outputs = [
            ("light_green", "green light", lambda: LED(p.green, pin_factory=factory), p.green, True),
            ("light_red", "red light", lambda: LED(p.red, pin_factory=factory), p.red, True),
            ("buzzer", "buzzer", lambda: Buzzer(p.buzzer, pin_factory=factory), p.buzzer, True),
            ("relay", "door relay", lambda: OutputDevice(p.relay, active_high=not p.relay_active_low,
                                                         initial_value=False, pin_factory=factory),
             p.relay, not p.relay_active_low),
        ]
        for name, label, make, gpio, active_high in outputs:
            yield self._fire(name, label, make, gpio, active_high, on_s)
        yield self._button(Button, factory)

    def _fire(self, name: str, label: str, make: Callable[[], Any], gpio: int, active_high: bool,
              on_s: float) -> Check:
        try:
            device = make()
        except Exception as exc:  # noqa: BLE001 - GPIO libraries raise their own types
            return Check(name, FAIL, f"GPIO{gpio}: cannot claim the pin: {exc} (is the kiosk still running? "
                         "systemctl stop kiosk)")
        with device:
            if self.interactive:
                self.say(f"Watch/listen: the {label} (GPIO{gpio}) comes on now.")
            device.on()
            time.sleep(on_s)
            device.off()
            if self._pins_mock:
                levels = [s.state for s in device.pin.states]
                on_level, off_level = (1, 0) if active_high else (0, 1)
                if on_level in levels[1:] and levels[-1] == off_level:
                    return self._simulated(name, f"GPIO{gpio}")
                return Check(name, FAIL, f"GPIO{gpio} did not switch (levels {levels})")
        if self.interactive:
            answer = self.ask(f"Did the {label} come on? [y/n] ").strip().lower()
            if answer.startswith("y"):
                return Check(name, OK, f"GPIO{gpio}: seen by the technician")
            return Check(name, FAIL, f"GPIO{gpio}: not seen; check the wiring (hardware/wiring.md)")
        return Check(name, OK, f"GPIO{gpio} fired for {on_s:g} s (not confirmed by a person)")

    def _button(self, Button: Any, factory: Any) -> Check:
        p = self.cfg.pins
        if not self.interactive and not self._pins_mock:
            return Check("guard_button", SKIP, f"GPIO{p.button}: needs a person to press it (run without --json)")
        try:
            button = Button(p.button, pull_up=True, bounce_time=p.button_bounce_s or None, pin_factory=factory)
        except Exception as exc:  # noqa: BLE001 - GPIO libraries raise their own types
            return Check("guard_button", FAIL, f"GPIO{p.button}: cannot claim the pin: {exc}")
        with button:
            if self._pins_mock:
                # Nobody can press a simulated button, and the doctor pressing it itself
                # would only test gpiozero: say what it is.
                return self._simulated("guard_button", f"GPIO{p.button}")
            self.say(f"Press the guard button now ({self.button_timeout_s:.0f} s)...")
            pressed = button.wait_for_press(timeout=self.button_timeout_s)
        if pressed:
            return Check("guard_button", OK, f"GPIO{p.button} pressed")
        return Check("guard_button", FAIL, f"GPIO{p.button}: no press within {self.button_timeout_s:g} s "
                     "(button to GND, internal pull-up; see hardware/wiring.md)")

    def _simulated(self, name: str, what: str) -> Check:
        """A pin check on gpiozero's MockFactory: "simulated" off a Pi, FAIL on one."""
        if self.on_pi():
            return Check(name, FAIL, f"{what}: the pins are simulated on a Raspberry Pi; set pins.backend = "
                         '"auto" (or "lgpio") in the config and check $KIOSK_PINS')
        return Check(name, SIMULATED, f"{what}: simulated pins (pins.backend = mock): nothing is wired")

    # --- screen, speaker --------------------------------------------------------------
    def _screen_and_speaker(self) -> Iterator[Check]:
        yield self._screen()
        yield self._speaker()

    def _screen(self) -> Check:
        """A test pattern (every colour of the verdicts, both languages) through the
        display backend the kiosk would use."""
        from kiosk.display import ScreenState, open_display
        from kiosk.display.backends import HeadlessDisplay

        try:
            with open_display(self.cfg) as display:
                if isinstance(display, HeadlessDisplay):
                    return Check("screen", SKIP, f"no display here (display.backend = {self.cfg.display.backend}): "
                                 "nothing to draw on")
                for kind in ("pass", "fail", "review"):
                    display.show(ScreenState(kind=kind, venue_name=self.cfg.venue.name))
                    time.sleep(PATTERN_S / 3)
                driver = _sdl_driver("video")
        except Exception as exc:  # noqa: BLE001 - SDL and KMS fail in their own ways
            return Check("screen", FAIL, f"cannot draw on the screen: {exc}")
        if driver == "dummy":
            return Check("screen", SIMULATED, f"{self.cfg.display.size} test pattern drawn by pygame on SDL's dummy "
                         "video driver: no real screen")
        if self.interactive:
            if not self.ask("Did the screen show green, red and amber? [y/n] ").strip().lower().startswith("y"):
                return Check("screen", FAIL, f"{driver}: test pattern not seen (hardware/README.md: screen)")
            return Check("screen", OK, f"{driver}: test pattern seen by the technician")
        return Check("screen", OK, f"{self.cfg.display.size} test pattern drawn ({driver}; not confirmed by a person)")

    def _speaker(self) -> Check:
        if not (self.cfg.display.sound or getattr(self.cfg.display, "voice", False)):
            return Check("speaker", SKIP, "display.sound is off (the buzzer alone signals)")
        from kiosk.display.tones import Sound

        with Sound(enabled=True) as sound:
            if not sound.enabled:
                return Check("speaker", FAIL, "no audio device: pygame's mixer cannot open (check the speaker/HDMI audio)")
            sound.play("pass")
            time.sleep(0.5)
            driver = _sdl_driver("audio")
        if driver == "dummy":
            return Check("speaker", SIMULATED, "tone played on SDL's dummy audio driver: no real speaker")
        if self.interactive and not self.ask("Did you hear the tone? [y/n] ").strip().lower().startswith("y"):
            return Check("speaker", FAIL, f"{driver}: tone not heard; check the volume and the cable")
        return Check("speaker", OK, f"tone played ({driver})")

    # --- clock, disk ----------------------------------------------------------------
    def _clock(self) -> Iterator[Check]:
        from kiosk.pipeline import clock_plausible

        now = self.now()
        if not clock_plausible(now):
            yield Check("clock", FAIL, f"the clock says {now:%Y-%m-%d %H:%M} UTC: set it or fix NTP "
                        "(verdicts would be wrong)")
            return
        synced = self.clock_probe()
        if synced is True:
            yield Check("clock", OK, f"synchronised ({now:%Y-%m-%d %H:%M} UTC)")
        elif synced is False:
            yield Check("clock", WARN, f"not synchronised to NTP yet ({now:%Y-%m-%d %H:%M} UTC); "
                        "check the network and systemd-timesyncd")
        else:
            yield Check("clock", WARN, f"cannot tell whether the clock is synchronised ({now:%Y-%m-%d %H:%M} UTC)")

    def _disk(self) -> Iterator[Check]:
        from kiosk.health import MIN_FREE_BYTES, WARN_FREE_BYTES, disk_space

        space = disk_space(self.cfg.journal_path())
        if space.free < MIN_FREE_BYTES:
            yield Check("disk", FAIL, f"disk_full: {space.describe()}")
        elif space.free < WARN_FREE_BYTES:
            yield Check("disk", WARN, f"low: {space.describe()}")
        else:
            yield Check("disk", OK, space.describe())

    # --- journal, collector, trust --------------------------------------------------
    def _journal_and_collector(self) -> Iterator[Check]:
        from kiosk.journal import Journal

        path = self.cfg.journal_path()
        if not path.exists():
            yield Check("journal", WARN, f"{path}: no journal yet (the kiosk creates it when it starts)")
            yield self._sealing()
            yield self._collector(None)
            yield Check("trust_list", WARN, "never fetched (no journal yet)")
            return
        journal = Journal(path)
        try:
            integrity = journal.integrity()
            counts = journal.counts()
            oldest = journal.oldest_pending_at()
            if integrity == "ok":
                age = ""
                if oldest is not None:
                    age = f", oldest unsent {_age(self.now() - oldest)} old"
                yield Check("journal", OK, f"{path}: intact, {counts['entries']} entries, "
                            f"{counts['pending_upload']} waiting for upload{age}")
            else:
                yield Check("journal", FAIL, f"{path}: integrity check: {integrity}")
            yield self._sealing()
            yield self._collector(journal)
            yield self._trust(journal)
        finally:
            journal.close()
            _give_back(path)

    def _sealing(self) -> Check:
        """Personal fields and identifiers sealed to the collector's key: required
        wherever the collector is not on loopback (else `kiosk run` refuses to start)."""
        from kiosk.errors import ConfigError
        from kiosk.seal import seal_required, sealer_from_config

        try:
            sealer = sealer_from_config(self.cfg)
        except ConfigError as exc:
            return Check("sealing", FAIL, f"kiosk run will refuse to start: {exc}")
        if sealer is None:
            return Check("sealing", WARN if not seal_required(self.cfg) else FAIL,
                         "personal fields are kept unsealed (collector on loopback: demo or test only)")
        return Check("sealing", OK, "personal fields and identifiers sealed to the collector's key")

    def _collector(self, journal: Any) -> Check:
        import requests

        url = self.cfg.sync.collector_url.rstrip("/")
        verify = self.cfg.sync.ca_file or None   # the pinned collector CA, as kiosk sync uses it
        try:
            from kiosk.sync import resolve_token

            token = resolve_token(self.cfg, journal) if journal is not None else self.cfg.sync.device_token.reveal()
        except ImportError:
            token = self.cfg.sync.device_token.reveal()
        try:
            health = requests.get(url + "/healthz", timeout=HTTP_TIMEOUT_S, verify=verify)
        except requests.RequestException as exc:
            return Check("collector", FAIL, f"{url}: unreachable: {short_error(exc)}")
        if not token:
            return Check("collector", WARN, f"{url}: reachable (HTTP {health.status_code}) but this kiosk is "
                         "not enrolled: kiosk provision --enrol-code CODE")
        try:
            answer = requests.get(url + "/v1/trust", headers={"Authorization": f"Bearer {token}"},
                                  timeout=HTTP_TIMEOUT_S, verify=verify)
        except requests.RequestException as exc:
            return Check("collector", FAIL, f"{url}: reachable, then failed: {short_error(exc)}")
        if answer.status_code in (200, 304, 404):  # 404: accepted, no trust list published yet
            return Check("collector", OK, f"{url}: reachable, device token accepted")
        if answer.status_code in (401, 403):
            return Check("collector", FAIL, f"{url}: device token refused (HTTP {answer.status_code}); "
                         "enrol again: kiosk provision --enrol-code CODE")
        return Check("collector", WARN, f"{url}: reachable, trust list answered HTTP {answer.status_code}")

    def _trust(self, journal: Any) -> Check:
        try:
            from kiosk.checks.trust import TrustStore
        except ImportError:
            return Check("trust_list", SKIP, "trust store not available in this build")
        store = TrustStore(journal)
        age = store.age(self.now())
        limit = timedelta(hours=self.cfg.trust.max_age_hours)
        if age is None:
            return Check("trust_list", WARN, "never fetched: kiosk-sync fetches it once the collector is reachable")
        if age > limit:
            return Check("trust_list", FAIL, f"{_age(age)} old, older than {_age(limit)} (trust.max_age_hours); "
                         f"{len(store)} keys")
        return Check("trust_list", OK, f"{len(store)} keys, fetched {_age(age)} ago")


_GROUP_NAMES = {
    "_config": ("config",), "_camera": ("camera", "camera_decode"), "_serial": ("serial_scanner",),
    "_pins": ("light_green", "light_red", "buzzer", "relay", "guard_button"),
    "_screen_and_speaker": ("screen", "speaker"),
    "_clock": ("clock",),
    "_disk": ("disk",), "_journal_and_collector": ("journal", "sealing", "collector", "trust_list"),
}


def _give_back(path: Path) -> None:
    """Run as root, opening the journal creates -wal/-shm owned by root, which the
    `kiosk` user then could not open: hand them back to the journal's owner."""
    if os.geteuid() != 0:
        return
    try:
        st = path.stat()
    except OSError:
        return
    for suffix in ("-wal", "-shm"):
        side = Path(str(path) + suffix)
        try:
            os.chown(side, st.st_uid, st.st_gid)
        except FileNotFoundError:
            pass


def _sdl_driver(kind: str) -> str:
    """The SDL driver pygame runs on: the video one pygame names ("dummy", "kmsdrm",
    "x11"); for audio pygame names none, so the one $SDL_AUDIODRIVER asks for."""
    import pygame

    if kind == "video":
        try:
            return pygame.display.get_driver()
        except pygame.error:
            pass
    return os.environ.get(f"SDL_{kind.upper()}DRIVER", "") or "default"


def _scheme(text: str) -> str:
    try:
        from kiosk.checks import recognise
    except ImportError:
        return "QR"
    return recognise(text)


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
