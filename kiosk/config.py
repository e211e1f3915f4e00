"""Typed, frozen configuration loaded once from TOML.

The file is chosen by `--config FILE`, else `$KIOSK_CONFIG`, else `/etc/kiosk/kiosk.toml`;
when none of them exists the built-in defaults run the demo. Unknown sections or keys,
wrong types and out-of-range values stop startup with a `ConfigError` that names the file,
the key and what is allowed. The annotated example lives beside this module
(`kiosk.example.toml`) and is exactly the defaults.

    >>> cfg = load_config(None, overrides={"venue.name": "Siêu thị A"})
    >>> cfg.venue.name
    'Siêu thị A'
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kiosk.errors import ConfigError
from kiosk.model import check_venue_code
from kiosk.schema import describe, parse_table, read_toml
from kiosk.schema import option as _opt

__all__ = [
    "Config",
    "DEFAULT_CONFIG_PATH",
    "ENV_CONFIG",
    "EXAMPLE_CONFIG",
    "Secret",
    "load_config",
    "resolve_config_path",
    "state_dir",
]

DEFAULT_CONFIG_PATH = Path("/etc/kiosk/kiosk.toml")
ENV_CONFIG = "KIOSK_CONFIG"
EXAMPLE_CONFIG = Path(__file__).with_name("kiosk.example.toml")

VENUE_TYPES = ("hospital", "supermarket", "school", "hotel", "transport", "office", "other")


class Secret(str):
    """A string that never shows itself in reprs or logs (device tokens, keys)."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class DeviceConfig:
    id: str = _opt("demo-kiosk", doc="device id known to the collector")
    state_dir: str = _opt("", doc="where the journal and state live; empty: $STATE_DIRECTORY or ~/.local/state/kiosk")
    provisioning_key: str = _opt("", doc="Ed25519 public key (base64 of 32 bytes or PEM) that signs provisioning QRs; empty: refuse them")


@dataclass(frozen=True)
class VenueConfig:
    name: str = _opt("Siêu thị Demo", doc="shown on the idle screen")
    code: str = _opt("DEMO-001", doc="venue code sent with every entry: letters, digits, '-' and '_', starting with a letter or digit")
    type: str = _opt("supermarket", choices=VENUE_TYPES, doc="chooses the built-in venue rules")
    checkin_url: str = _opt("https://kiosk.invalid/checkin/DEMO-001",
                            doc="encoded in the venue's own check-in QR on the idle screen")


@dataclass(frozen=True)
class ScannerConfig:
    kind: str = _opt("replay", choices=("replay", "camera", "serial", "evdev", "stdin"),
                     doc="where codes come from (evdev: a keyboard-mode USB scanner's input device)")
    camera: str = _opt("0", doc="camera: device index, /dev/videoN, a video file or an rtsp:// URL")
    width: int = _opt(1280, lo=160, hi=4096, doc="camera frame width")
    height: int = _opt(720, lo=120, hi=3072, doc="camera frame height")
    fps: int = _opt(15, lo=1, hi=120, doc="camera frames per second")
    camera_backend: str = _opt("opencv", choices=("opencv", "picamera2"),
                               doc="camera: OpenCV (USB/V4L2, files, RTSP) or picamera2 (the Pi camera module)")
    camera_preset: str = _opt("phone-screen", choices=("auto", "phone-screen", "manual"),
                              doc="camera exposure: the driver's auto, a short exposure for phone screens, or the values below")
    camera_exposure_ms: float = _opt(0.0, lo=0.0, hi=1000.0, doc="camera exposure time; 0: the preset's")
    camera_gain: float = _opt(0.0, lo=0.0, hi=1000.0, doc="camera gain (driver units); 0: the driver's")
    camera_focus: float = _opt(-1.0, lo=-1.0, hi=1000.0,
                               doc="camera focus (V4L2 focus_absolute; picamera2 dioptres); -1: autofocus")
    replay_path: str = _opt("", doc="replay: a folder of images or a video file; empty: built-in demo frames")
    replay_interval_s: float = _opt(0.4, lo=0.0, hi=60.0, doc="replay: seconds between frames")
    replay_loop: bool = _opt(False, doc="replay: start again at the end")
    serial_port: str = _opt("/dev/qrscanner", doc="serial scanner device (udev rule gives this name)")
    serial_baud: int = _opt(9600, choices=(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200),
                            doc="serial scanner baud rate")
    evdev_device: str = _opt("/dev/input/by-id/usb-qrscanner-event-kbd",
                             doc="evdev: the keyboard-mode scanner's input device (grabbed; see /dev/input/by-id)")
    reopen_backoff_max_s: float = _opt(30.0, lo=0.1, hi=600.0, doc="longest wait between reopen attempts")


@dataclass(frozen=True)
class DecoderConfig:
    budget_ms: float = _opt(120.0, lo=5.0, hi=5000.0, doc="time per frame for preprocessing variants")
    engines: tuple[str, ...] = _opt(("zxing", "zbar"), choices=("zxing", "zbar"), doc="engines, in order")
    variants: bool = _opt(True, doc="try preprocessing variants when the plain frame has no code")


@dataclass(frozen=True)
class JournalConfig:
    path: str = _opt("", doc="SQLite journal; empty: <state_dir>/journal.db")
    repeat_window_s: float = _opt(300.0, lo=0.0, hi=86400.0, doc="a repeat scan within this is not logged again")
    retention_days: int = _opt(21, lo=1, hi=365, doc="keep uploaded entries this long")
    seal_key: str = _opt("", doc="collector's X25519 public key (base64, `collector keygen`) to seal personal fields and identifiers; required unless the collector is on loopback")


@dataclass(frozen=True)
class RulesConfig:
    path: str = _opt("", doc="venue rules TOML; empty: built-in rules for venue.type")


@dataclass(frozen=True)
class TrustConfig:
    max_age_hours: float = _opt(72.0, lo=1.0, hi=24.0 * 90, doc="warn when the trust list is older")
    grace_hours: float = _opt(24.0, lo=0.0, hi=24.0 * 30,
                              doc="past a signed document's valid-until, passes that rely on it go to review after this")


@dataclass(frozen=True)
class DisplayConfig:
    backend: str = _opt("auto", choices=("auto", "pygame", "headless"), doc="auto: a window where a display exists")
    size: str = _opt("800x480", choices=("800x480", "1024x600", "1920x1080"), doc="screen layout")
    fullscreen: bool = _opt(True, doc="full screen (KMS/DRM on a Pi)")
    verdict_seconds: float = _opt(3.0, lo=0.5, hi=30.0, doc="how long a verdict stays before idle returns")
    font: str = _opt("", doc="TTF covering Vietnamese; empty: DejaVu Sans / Noto Sans found on the system")
    sound: bool = _opt(False, doc="play verdict tones through a speaker as well as the buzzer")
    voice: bool = _opt(False, doc="speak each verdict (Vietnamese, then English) through the speaker; clips by `kiosk voice build`")


@dataclass(frozen=True)
class PinsConfig:
    backend: str = _opt("mock", choices=("mock", "rpigpio", "lgpio", "auto"),
                        doc="pin backend; $KIOSK_PINS overrides")
    green: int = _opt(17, lo=2, hi=27, doc="BCM pin of the green light")
    red: int = _opt(27, lo=2, hi=27, doc="BCM pin of the red light")
    buzzer: int = _opt(22, lo=2, hi=27, doc="BCM pin of the buzzer")
    relay: int = _opt(23, lo=2, hi=27, doc="BCM pin of the door relay")
    button: int = _opt(24, lo=2, hi=27, doc="BCM pin of the guard button")
    relay_active_low: bool = _opt(False, doc="relay module switches on a low input")
    relay_pulse_s: float = _opt(1.5, lo=0.1, hi=30.0, doc="how long the door stays released on pass")
    button_bounce_s: float = _opt(0.05, lo=0.0, hi=1.0, doc="guard button debounce")


@dataclass(frozen=True)
class SyncConfig:
    collector_url: str = _opt("http://127.0.0.1:8470", doc="the health department's collector; https:// unless on loopback")
    publisher_key: str = _opt("", doc="the health department's publishing key (base64 Ed25519, `collector publisher-keygen`): only documents it signed are taken in; empty: none are")
    ca_file: str = _opt("", doc="PEM file of the CA that signed the collector's TLS certificate; empty: the system's CAs")
    device_token: Secret = _opt(Secret(""), doc="bearer token from enrolment")
    batch_size: int = _opt(500, lo=1, hi=10000, doc="entries per upload")
    batch_max_age_s: float = _opt(10.0, lo=0.0, hi=3600.0, doc="upload a partial batch once its oldest entry is this old")
    interval_s: float = _opt(15.0, lo=1.0, hi=3600.0, doc="seconds between upload rounds when idle")
    timeout_s: float = _opt(10.0, lo=1.0, hi=300.0, doc="HTTP timeout per request")
    trust_refresh_s: float = _opt(3600.0, lo=60.0, hi=86400.0, doc="seconds between trust/rules/deny list fetches")


@dataclass(frozen=True)
class UpdateConfig:
    enabled: bool = _opt(True, doc="take signed software updates offered by the collector (kiosk.update)")
    ready_timeout_s: float = _opt(120.0, lo=5.0, hi=3600.0, doc="a new version must reach READY=1 within this, else it is rolled back")
    confirm_s: float = _opt(60.0, lo=0.0, hi=3600.0, doc="... and then run this long without a restart before it is kept")


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    venue: VenueConfig = field(default_factory=VenueConfig)
    scanner: ScannerConfig = field(default_factory=ScannerConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    pins: PinsConfig = field(default_factory=PinsConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)
    source: str = "<built-in defaults>"

    def state_path(self) -> Path:
        return state_dir(self)

    def file(self) -> Path | None:
        """The config file this came from; None for the built-in defaults."""
        return Path(self.source) if not self.source.startswith("<") else None

    def journal_path(self) -> Path:
        return Path(self.journal.path) if self.journal.path else state_dir(self) / "journal.db"


def state_dir(cfg: Config) -> Path:
    if cfg.device.state_dir:
        return Path(cfg.device.state_dir)
    if os.environ.get("STATE_DIRECTORY"):  # set by systemd's StateDirectory=
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kiosk"


_SECTION_TYPES = {
    "device": DeviceConfig, "venue": VenueConfig, "scanner": ScannerConfig,
    "decoder": DecoderConfig, "journal": JournalConfig, "rules": RulesConfig,
    "trust": TrustConfig, "display": DisplayConfig, "pins": PinsConfig, "sync": SyncConfig,
    "update": UpdateConfig,
}


def _build(where: str, data: Mapping[str, Any]) -> Config:
    sections: dict[str, Any] = {}
    for name, table in data.items():
        if name not in _SECTION_TYPES:
            raise ConfigError(f"{where}: unknown section [{name}]; allowed sections: "
                              + ", ".join(_SECTION_TYPES))
        sections[name] = parse_table(where, name, _SECTION_TYPES[name], table)
    cfg = Config(**sections, source=where)
    _cross_check(cfg)
    return cfg


def _cross_check(cfg: Config) -> None:
    pins = {k: getattr(cfg.pins, k) for k in ("green", "red", "buzzer", "relay", "button")}
    seen: dict[int, str] = {}
    for name, pin in pins.items():
        if pin in seen:
            raise ConfigError(f"{cfg.source}: key 'pins.{name}' = {pin} is not allowed; "
                              f"GPIO{pin} is already used by 'pins.{seen[pin]}'")
        seen[pin] = name
    try:
        check_venue_code(cfg.venue.code)
    except ValueError as exc:
        # The collector refuses every entry of a venue code it cannot take: say so now,
        # not after a day of entries held back in the journal.
        raise ConfigError(f"{cfg.source}: key 'venue.code' = {cfg.venue.code!r} is not allowed; {exc}") from None
    if cfg.journal.seal_key:
        import base64
        import binascii

        try:
            raw = base64.b64decode(cfg.journal.seal_key, validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != 32:
            raise ConfigError(f"{cfg.source}: key 'journal.seal_key' is not allowed; expected the "
                              "collector's public seal key, base64 of 32 bytes (`collector keygen` prints it)")
    url = cfg.sync.collector_url
    if not (url.startswith("http://") or url.startswith("https://")):
        raise ConfigError(f"{cfg.source}: key 'sync.collector_url' = {url!r} is not allowed; "
                          "expected an http:// or https:// URL")
    if url.startswith("http://") and not _loopback(url):
        raise ConfigError(f"{cfg.source}: key 'sync.collector_url' = {url!r} is not allowed; "
                          "expected an https:// URL (plain http:// only on loopback: 127.0.0.1, ::1, localhost)")
    if cfg.sync.publisher_key:
        from kiosk.checks.signed import load_public_key

        try:
            load_public_key(cfg.sync.publisher_key)
        except ValueError as exc:
            raise ConfigError(f"{cfg.source}: key 'sync.publisher_key' is not allowed; {exc}") from None
    if cfg.sync.ca_file and not Path(cfg.sync.ca_file).is_file():
        raise ConfigError(f"{cfg.source}: key 'sync.ca_file' = {cfg.sync.ca_file!r} is not allowed; "
                          "expected a readable PEM file of the collector's CA")


def _loopback(url: str) -> bool:
    """True when the URL's host is this machine (the only place plain HTTP is allowed)."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    section, _, key = dotted.partition(".")
    if not key:
        raise ConfigError(f"override '{dotted}': expected section.key")
    data.setdefault(section, {})[key] = value


def resolve_config_path(explicit: str | os.PathLike | None) -> Path | None:
    """The config file to read, or None for the built-in defaults."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_config(path: str | os.PathLike | None = None, *,
                overrides: Mapping[str, Any] | None = None, search: bool = True) -> Config:
    """Load and validate a config. `path=None` searches $KIOSK_CONFIG and /etc (unless
    `search=False`), falling back to the built-in defaults. `overrides` are dotted keys
    (`{"journal.path": "/tmp/j.db"}`) applied on top, validated the same way."""
    chosen = resolve_config_path(path) if (path or search) else None
    data: dict[str, Any] = {}
    where = "<built-in defaults>"
    if chosen is not None:
        where = str(chosen)
        data = read_toml(chosen, "config")
    for dotted, value in (overrides or {}).items():
        _check_override(dotted, value)
        _set_dotted(data, dotted, value)
    return _build(where, data)


def _check_override(dotted: str, value: Any) -> None:
    """A `--set` key is checked on its own, so a typo blames `--set venue.nmae`, not
    the file or the defaults it lands in."""
    where = f"--set {dotted}"
    section, _, key = dotted.partition(".")
    if not key:
        raise ConfigError(f"{where}: expected section.key=VALUE")
    if section not in _SECTION_TYPES:
        raise ConfigError(f"{where}: unknown section [{section}]; allowed sections: " + ", ".join(_SECTION_TYPES))
    parse_table(where, section, _SECTION_TYPES[section], {key: value})


def replace(cfg: Config, **dotted: Any) -> Config:
    """A copy of `cfg` with dotted keys changed: `replace(cfg, **{"journal.path": p})`."""
    sections: dict[str, Any] = {}
    for key, value in dotted.items():
        section, _, name = key.partition(".")
        current = sections.get(section, getattr(cfg, section))
        sections[section] = dataclasses.replace(current, **{name: value})
    return dataclasses.replace(cfg, **sections)


#: What `to_toml` writes in place of a secret's value (unless asked to reveal it).
MASKED = "***"


def to_toml(cfg: Config, *, reveal_secrets: bool = False) -> str:
    """Render a config as TOML with a comment per key (what is allowed and why).

    Values are written by tomli-w, so any text (newlines, quotes, Vietnamese) reads back
    as it was; the comments are ours, one above each key. Secrets (the device token) are
    written as `***` unless `reveal_secrets`.
    """
    import tomli_w

    out: list[str] = []
    for name, cls in _SECTION_TYPES.items():
        section = getattr(cfg, name)
        out.append(f"[{name}]")
        for f in dataclasses.fields(cls):
            out.append(f"# {f.metadata.get('doc', '')} ({describe(f)})".replace("\n", " "))
            value = getattr(section, f.name)
            if isinstance(value, Secret) and value and not reveal_secrets:
                value = MASKED
            out.append(tomli_w.dumps({f.name: _plain(value)}).rstrip("\n"))
        out.append("")
    return "\n".join(out)


def _plain(value: Any) -> Any:
    """A config value as plain TOML data: tuples as lists, `Secret` as its text."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str.__str__(value)
    return value
