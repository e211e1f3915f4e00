"""Provision a kiosk: venue, collector and enrolment, pins and camera, by CLI or by a
signed provisioning QR scanned at the kiosk.

A provisioning QR is `KP1:` + base45( zlib( COSE_Sign1 ) ), the same container as the
DCC, signed with EdDSA (Ed25519) by the provisioning key. Its payload is a CBOR map:

    {"v": 1, "iat": epoch, "exp": epoch, "dev": "" or a device id,
     "set": {"venue.name": "...", "sync.collector_url": "...", "pins.green": 17, ...},
     "enrol": "" or a one-time enrolment code}

A kiosk acts on one only when `device.provisioning_key` is configured and the signature
verifies with it; anything else is refused and logged, never partly applied. Only the
keys in `ALLOWED_KEYS` can be set from a QR (never the key that verifies QRs, a token or
a file path).

The config file is replaced atomically: the new TOML is written to a temporary file in
the same folder, validated with `load_config`, fsynced and renamed over the old one.

    >>> from cryptography.hazmat.primitives.asymmetric import ed25519
    >>> key = ed25519.Ed25519PrivateKey.generate()
    >>> text = make_qr_text({"venue.name": "Bệnh viện A"}, key, now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    >>> text[:4]
    'KP1:'
    >>> read_qr_text(text, key.public_key(), now=datetime(2026, 1, 1, 0, 10, tzinfo=timezone.utc)).settings
    {'venue.name': 'Bệnh viện A'}
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from kiosk.checks import cose
from kiosk.config import Config, load_config
from kiosk.errors import ConfigError, KioskError
from kiosk.files import atomic_write, replace_durably

__all__ = [
    "PREFIX", "ALLOWED_KEYS", "ProvisionError", "ProvisionRequest", "ProvisionResult",
    "make_qr_text", "read_qr_text", "check_scan", "handle_scan", "apply_settings", "provision",
    "load_private_key", "load_public_key", "public_key_text",
]

log = logging.getLogger(__name__)

PREFIX = "KP1:"
PAYLOAD_VERSION = 1
#: A QR printed for a technician is good for a day unless they ask for longer.
DEFAULT_VALIDITY = timedelta(hours=24)
MAX_VALIDITY = timedelta(days=30)
#: Tolerate a kiosk clock this far behind the technician's laptop.
CLOCK_SKEW = timedelta(minutes=10)
#: Refuse to inflate more than this (a QR holds ~3 kB; zip bombs stop here).
MAX_INFLATED_BYTES = 16 * 1024
ALG_EDDSA = -8
CONFIG_FILE_MODE = 0o640
ENROL_TIMEOUT_S = 15.0

#: Not a config key: the PEM text of the collector's CA. The kiosk writes it to
#: CA_FILE_NAME beside its config and points `sync.ca_file` there.
CA_PEM_KEY = "sync.ca_pem"
CA_FILE_NAME = "collector-ca.pem"
#: Keys a QR (or `kiosk provision`) may change but never blank: without them personal
#: fields go out unsealed, or nothing the collector publishes can be trusted.
NOT_BLANK = frozenset({"journal.seal_key", "sync.publisher_key"})
#: A QR for "any" device is a key to every kiosk that sees it: it lives minutes.
ANY_DEVICE = "any"
ANY_DEVICE_VALIDITY = timedelta(minutes=15)

#: What a QR (and `kiosk provision`) may set. Not `device.provisioning_key` (a QR must
#: not replace the key that vouches for it), not the token (that comes from enrolment)
#: and no file paths (a QR must not point the kiosk at arbitrary files).
ALLOWED_KEYS = frozenset({
    "device.id",
    "venue.name", "venue.code", "venue.type", "venue.checkin_url",
    "sync.collector_url", "journal.seal_key", "sync.publisher_key", CA_PEM_KEY,
    "scanner.kind", "scanner.camera", "scanner.width", "scanner.height", "scanner.fps",
    "scanner.serial_port", "scanner.serial_baud",
    "pins.backend", "pins.green", "pins.red", "pins.buzzer", "pins.relay", "pins.button",
    "pins.relay_active_low", "pins.relay_pulse_s",
    "display.size", "display.fullscreen", "display.sound",
    "journal.retention_days", "trust.max_age_hours",
})


class ProvisionError(KioskError, ValueError):
    """A provisioning request or QR cannot be applied; `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ProvisionRequest:
    """A verified provisioning QR's content."""

    settings: dict[str, Any]
    enrol_code: str = ""
    device: str = ""
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    digest: str = ""


@dataclass(frozen=True)
class ProvisionResult:
    """What `handle_scan` did. `accepted` False means nothing changed.

    `restart` True: the config file changed and the run loop should exit so systemd
    restarts it with the new config (the config is frozen and loaded once).
    """

    accepted: bool
    reason: str              # applied | already_applied | no_key | unsigned | bad_signature |
    #                          expired | not_yet_valid | other_device | bad_payload | bad_config |
    #                          enrol_failed | no_config_file | too_long | older | cannot_blank
    message: str
    changed: tuple[str, ...] = ()
    restart: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- keys ---------------------------------------------------------------------------

def load_private_key(path: str | os.PathLike) -> Any:
    """An Ed25519 private key from a PEM file (`openssl genpkey -algorithm ed25519`)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ProvisionError("bad_key", f"{path}: not a readable unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ProvisionError("bad_key", f"{path}: provisioning keys are Ed25519 keys")
    return key


def load_public_key(text: str) -> Any:
    """The configured provisioning key: base64 of the 32 raw bytes, or a PEM block."""
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            return key
        raw = base64.b64decode(text, validate=True)
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ConfigError(f"key 'device.provisioning_key' is not allowed: {exc}; "
                          "expected base64 of a 32-byte Ed25519 public key or a PEM block") from None


def public_key_text(key: Any) -> str:
    """base64 of the raw public key: what goes in `device.provisioning_key`."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = key.public_key() if hasattr(key, "public_key") else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _kid(public: Any) -> bytes:
    return hashlib.sha256(base64.b64decode(public_key_text(public))).digest()[:8]


# --- the QR container ----------------------------------------------------------------

def make_qr_text(settings: Mapping[str, Any], private_key: Any, *, now: datetime,
                 validity: timedelta | None = None, enrol_code: str = "",
                 device: str = ANY_DEVICE) -> str:
    """Sign a provisioning request. `settings` are dotted config keys. A QR for one
    device (`device="bv-01"`) is good for DEFAULT_VALIDITY unless told; one for any
    device ("any") for ANY_DEVICE_VALIDITY at most."""
    _check_settings(settings)
    device = device or ANY_DEVICE
    cap = ANY_DEVICE_VALIDITY if device == ANY_DEVICE else MAX_VALIDITY
    validity = validity or (ANY_DEVICE_VALIDITY if device == ANY_DEVICE else DEFAULT_VALIDITY)
    if not timedelta(0) < validity <= cap:
        raise ProvisionError("bad_payload", f"validity must be between 0 and {cap} for device {device!r}")
    payload = {
        "v": PAYLOAD_VERSION, "iat": int(now.timestamp()), "exp": int((now + validity).timestamp()),
        "dev": device, "set": dict(settings), "enrol": enrol_code,
    }
    signed = cose.sign1(payload, private_key, kid=_kid(private_key.public_key()), alg=ALG_EDDSA)
    return cose.seal(PREFIX, signed)


def read_qr_text(text: str, public_key: Any, *, now: datetime) -> ProvisionRequest:
    """Verify and decode a provisioning QR; raise ProvisionError with a reason code."""
    from kiosk.model import Reason

    try:
        raw = cose.unpack(text, PREFIX, max_bytes=MAX_INFLATED_BYTES)
    except cose.CheckFailed as exc:
        raise ProvisionError("bad_payload", f"not a provisioning QR: {exc}") from None
    try:
        msg = cose.parse_sign1(raw)
    except cose.CheckFailed as exc:
        if exc.reason is Reason.BAD_COSE:
            # Anything that is not a COSE_Sign1 (a bare CBOR map, say) carries no signature.
            raise ProvisionError("unsigned", f"not signed: no COSE_Sign1 envelope ({exc.detail})") from None
        raise ProvisionError("bad_payload", f"payload is not a CBOR map: {exc.detail}") from None
    if not msg.signature or msg.protected.get(cose.HDR_ALG) != ALG_EDDSA:
        raise ProvisionError("unsigned", "not signed with EdDSA")
    try:
        cose.verify(msg, public_key)
    except cose.CheckFailed as exc:
        raise ProvisionError("bad_signature", f"signature does not match the provisioning key ({exc.detail})") from None
    return _request(msg.claims, now=now, digest=hashlib.sha256(msg.payload).hexdigest())


def _request(claims: Any, *, now: datetime, digest: str) -> ProvisionRequest:
    if not isinstance(claims, Mapping) or claims.get("v") != PAYLOAD_VERSION:
        raise ProvisionError("bad_payload", f"payload is not a version {PAYLOAD_VERSION} provisioning map")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        raise ProvisionError("bad_payload", "iat/exp missing")
    issued = datetime.fromtimestamp(iat, timezone.utc)
    expires = datetime.fromtimestamp(exp, timezone.utc)
    if now + CLOCK_SKEW < issued:
        raise ProvisionError("not_yet_valid", f"issued {issued.isoformat()}, after the kiosk's clock")
    enrol, device = claims.get("enrol", ""), claims.get("dev", "")
    if not isinstance(enrol, str) or not isinstance(device, str):
        raise ProvisionError("bad_payload", "'enrol'/'dev' must be strings")
    device = device or ANY_DEVICE
    # Capped when read, not only when made: a key holder's long-lived QR is refused here.
    cap = ANY_DEVICE_VALIDITY if device == ANY_DEVICE else MAX_VALIDITY
    if expires - issued > cap:
        raise ProvisionError("too_long", f"valid for {expires - issued}; a QR for device {device!r} "
                             f"may be valid for {cap} at most")
    if now >= expires:
        raise ProvisionError("expired", f"expired {expires.isoformat()}")
    settings = claims.get("set", {})
    if not isinstance(settings, Mapping):
        raise ProvisionError("bad_payload", "'set' is not a map")
    _check_settings(settings)
    return ProvisionRequest(settings=dict(settings), enrol_code=enrol, device=device,
                            issued_at=issued, expires_at=expires, digest=digest)


def _check_settings(settings: Mapping[str, Any]) -> None:
    bad = sorted(k for k in settings if k not in ALLOWED_KEYS)
    if bad:
        raise ProvisionError("bad_payload", f"keys not allowed here: {', '.join(bad)}; "
                             f"allowed: {', '.join(sorted(ALLOWED_KEYS))}")
    blank = sorted(k for k in settings if k in NOT_BLANK | {CA_PEM_KEY}
                   and not (isinstance(settings[k], str) and settings[k].strip()))
    if blank:
        raise ProvisionError("cannot_blank", f"{', '.join(blank)} cannot be set empty "
                             "(only replaced by another key)")


# --- writing the config ----------------------------------------------------------------

def _render(data: Mapping[str, Mapping[str, Any]]) -> str:
    import tomli_w

    header = ("# Kiosk configuration, written by `kiosk provision`. Every key is optional;\n"
              "# see kiosk.example.toml for all keys and what each allows.\n\n")
    try:
        return header + tomli_w.dumps({section: dict(sorted(data[section].items())) for section in sorted(data)})
    except TypeError:  # a value TOML cannot hold (None, bytes...): name its key
        for section, table in data.items():
            for key, value in table.items():
                try:
                    tomli_w.dumps({key: value})
                except TypeError:
                    raise ConfigError(f"key '{section}.{key}' = {value!r} is not allowed: TOML cannot hold "
                                      f"a {type(value).__name__}") from None
        raise


def apply_settings(config_path: str | os.PathLike, settings: Mapping[str, Any]) -> Config:
    """Merge dotted `settings` into the TOML at `config_path` (created if absent) and
    replace the file atomically, only after the result validates. Returns the new config.

    Keys not in `settings` keep their values; the file's comments are not kept.
    """
    path = Path(config_path)
    data: dict[str, dict[str, Any]] = {}
    mode, gid = CONFIG_FILE_MODE, None
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the current config: {exc}") from None
        st = path.stat()
        mode, gid = st.st_mode & 0o777, st.st_gid
    for dotted, value in settings.items():
        section, _, key = dotted.partition(".")
        if not key:
            raise ConfigError(f"setting '{dotted}': expected section.key")
        data.setdefault(section, {})[key] = value
    text = _render(data)
    checked: list[Config] = []
    # load_config raises ConfigError naming the key; the old file then stays as it was.
    atomic_write(path, text, mode=mode, gid=gid, check=lambda tmp: checked.append(load_config(tmp)))
    return dataclasses.replace(checked[0], source=str(path))


Enrol = Callable[..., str]


def _default_enrol() -> Enrol:
    try:
        from kiosk.sync import enrol
    except ImportError as exc:
        raise ProvisionError("enrol_failed", f"enrolment is not available in this build: {exc}") from None
    return enrol


def provision(config_path: str | os.PathLike, settings: Mapping[str, Any], *,
              enrol_code: str = "", enrol: Enrol | None = None,
              timeout: float = ENROL_TIMEOUT_S) -> Config:
    """Apply `settings` and, with an enrolment code, get a device token from the
    collector (`POST /v1/devices`) and store it as `sync.device_token`.

    Enrolment happens before anything is written: a failed enrolment leaves the old
    config in place.
    """
    current = load_config(config_path) if Path(config_path).exists() else load_config(None, search=False)
    settings = dict(settings)
    _check_settings({k: v for k, v in settings.items() if k in NOT_BLANK | {CA_PEM_KEY}})
    ca_pem = settings.pop(CA_PEM_KEY, None)
    ca_path = Path(config_path).parent / CA_FILE_NAME
    if ca_pem is not None:
        _check_ca(ca_pem)
    # Validate the merged values before talking to the collector (raises ConfigError).
    load_config(None, search=False, overrides={**_overrides_from(current, settings),
                                                **({"sync.ca_file": ""} if ca_pem else {})})
    url = settings.get("sync.collector_url", current.sync.collector_url)
    drops_token = url != current.sync.collector_url and not enrol_code
    tmp_ca = _write_temp(ca_path, ca_pem) if ca_pem is not None else None
    try:
        if enrol_code:
            device = settings.get("device.id", current.device.id)
            enrol_fn = enrol or _default_enrol()
            ca_file = str(tmp_ca) if tmp_ca else current.sync.ca_file
            kwargs = {"verify": ca_file} if ca_file else {}
            try:
                token = enrol_fn(url, device, enrol_code, timeout=timeout, **kwargs)
            except KioskError as exc:
                raise ProvisionError("enrol_failed", f"enrolment at {url} as {device!r} failed: {exc}") from None
            except OSError as exc:
                raise ProvisionError("enrol_failed", f"enrolment at {url} as {device!r} failed: {exc}") from None
            settings["sync.device_token"] = str.__str__(token)
            venue = getattr(token, "venue", None)
            if venue:  # the collector's binding wins: entries for another venue are refused
                settings["venue.code"] = venue
        elif drops_token:
            # A token is the old collector's: a new collector must not learn it, and the
            # kiosk needs a new enrolment there.
            settings["sync.device_token"] = ""
        if tmp_ca is not None:
            replace_durably(tmp_ca, ca_path)
            tmp_ca = None
            settings["sync.ca_file"] = str(ca_path)
        cfg = apply_settings(config_path, settings)
    finally:
        if tmp_ca is not None:
            tmp_ca.unlink(missing_ok=True)
    if drops_token:
        _drop_enrolled_token(cfg)
    if enrol_code:
        _remember_enrolled_venue(cfg)
    return cfg


def _check_ca(pem: Any) -> None:
    from cryptography import x509

    try:
        if not x509.load_pem_x509_certificates(str(pem).encode()):
            raise ValueError("no certificate")
    except ValueError as exc:
        raise ProvisionError("bad_payload", f"{CA_PEM_KEY}: not a PEM certificate: {exc}") from None


def _write_temp(final: Path, text: str) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".kiosk-ca-", suffix=".pem.tmp", dir=final.parent)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text.strip() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(name, 0o644)
    return Path(name)


def _remember_enrolled_venue(cfg: Config) -> None:
    """After a new enrolment the journal's note of the enrolled venue is this config's."""
    from kiosk.journal import Journal
    from kiosk.sync.state import ENROLLED_VENUE_KEY

    with Journal(cfg.journal_path()) as journal:
        journal.set_state(ENROLLED_VENUE_KEY, cfg.venue.code)


def _drop_enrolled_token(cfg: Config) -> None:
    """Forget the token `kiosk enrol` stored in the journal (state `sync.token`)."""
    if not cfg.journal_path().exists():
        return
    from kiosk.journal import Journal
    from kiosk.sync.state import TOKEN_KEY

    with Journal(cfg.journal_path()) as journal:
        journal.set_state(TOKEN_KEY, "")
    log.warning("collector URL changed to %s: the device token was dropped; enrol again", cfg.sync.collector_url)


def _overrides_from(cfg: Config, settings: Mapping[str, Any]) -> dict[str, Any]:
    """All of `cfg` as dotted overrides, with `settings` on top (for a dry validation)."""
    out: dict[str, Any] = {}
    for section in ("device", "venue", "scanner", "decoder", "journal", "rules", "trust",
                    "display", "pins", "sync"):
        for f in dataclasses.fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            out[f"{section}.{f.name}"] = list(value) if isinstance(value, tuple) else (
                str.__str__(value) if isinstance(value, str) else value)
    out.update(settings)
    return out


# --- the run loop's entry point -------------------------------------------------------

_STATE_FILE = "provision.last"


def _last_applied(marker: Path) -> tuple[str | None, datetime | None]:
    """(digest, issued-at) of the QR applied last; the old format holds the digest only."""
    try:
        text = marker.read_text().strip()
    except OSError:
        return None, None  # no marker yet
    try:
        data = json.loads(text)
        iat = data.get("iat")
        return data.get("digest"), datetime.fromtimestamp(iat, timezone.utc) if isinstance(iat, int) else None
    except (ValueError, AttributeError):
        return text or None, None


def remember_applied(marker: Path, digest: str, issued_at: datetime | None) -> None:
    """Write the replay marker whole or not at all: a torn marker would let the same QR
    (or an older one) be applied again."""
    atomic_write(marker, json.dumps({"digest": digest, "iat": int(issued_at.timestamp())
                                     if issued_at else None}) + "\n", mode=0o600)


def _refuse(reason: str, message: str) -> ProvisionResult:
    log.warning("provisioning QR refused (%s): %s", reason, message)
    return ProvisionResult(False, reason, message)


def check_scan(text: str, cfg: Config, config_path: str | os.PathLike | None, *,
               now: datetime) -> ProvisionRequest | ProvisionResult:
    """The checks of `handle_scan` that need no network and write nothing: the verified
    request when the QR would be applied, else the ProvisionResult that refuses it (or
    says it was applied before). Fast enough for the scan path; the appliance then runs
    `handle_scan` (with its enrolment) beside the gate."""
    if not cfg.device.provisioning_key:
        return _refuse("no_key", "no provisioning key configured (device.provisioning_key)")
    try:
        public = load_public_key(cfg.device.provisioning_key)
    except ConfigError as exc:
        return _refuse("no_key", str(exc))
    try:
        request = read_qr_text(text, public, now=now)
    except ProvisionError as exc:
        return _refuse(exc.reason, str(exc))
    if request.device not in (ANY_DEVICE, cfg.device.id):
        return _refuse("other_device", f"this QR is for device {request.device!r}, not {cfg.device.id!r}")
    if config_path is None:
        return _refuse("no_config_file", "the kiosk runs on built-in defaults; there is no config file to write")
    marker = cfg.state_path() / _STATE_FILE
    last_digest, last_iat = _last_applied(marker)
    if last_digest == request.digest:
        return ProvisionResult(True, "already_applied", "this provisioning QR was applied before")
    if last_iat is not None and request.issued_at is not None and request.issued_at < last_iat:
        return _refuse("older", f"made {request.issued_at.isoformat()}, before the QR applied last "
                      f"({last_iat.isoformat()}): an old QR cannot undo a newer one")
    return request


def handle_scan(text: str, cfg: Config, config_path: str | os.PathLike | None, *,
                now: datetime, enrol: Enrol | None = None) -> ProvisionResult:
    """Act on a `KP1:` code scanned at the kiosk. Never raises on bad input.

    Accepted only when signed with `cfg.device.provisioning_key`; a refusal is logged
    with its reason and changes nothing. The same QR scanned twice is applied once
    (its one-time enrolment code would fail the second time). With an enrolment code
    this talks to the collector (up to ENROL_TIMEOUT_S): never call it in the scan path.
    """
    checked = check_scan(text, cfg, config_path, now=now)
    if isinstance(checked, ProvisionResult):
        return checked
    request = checked
    marker = cfg.state_path() / _STATE_FILE
    try:
        applied = provision(config_path, request.settings, enrol_code=request.enrol_code, enrol=enrol)
    except ProvisionError as exc:
        return _refuse(exc.reason, str(exc))
    except ConfigError as exc:
        return _refuse("bad_config", str(exc))
    try:
        remember_applied(marker, request.digest, request.issued_at)
    except OSError as exc:
        log.warning("cannot remember the applied provisioning QR in %s: %s", marker, exc)
    new_token = request.enrol_code or applied.sync.collector_url != cfg.sync.collector_url
    changed = tuple(sorted(request.settings)) + (("sync.device_token",) if new_token else ())
    log.warning("provisioning QR applied to %s: %s", config_path, ", ".join(changed) or "nothing")
    return ProvisionResult(True, "applied", f"configured {', '.join(changed) or 'nothing'}; restarting",
                           changed=changed, restart=True)
