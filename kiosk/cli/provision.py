"""`kiosk provision`, `kiosk provision make-qr`, `kiosk provision keygen`,
`kiosk provision scan`: thin commands over kiosk.provision."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from kiosk.cli._common import add_command, config_from

__all__ = ["register"]

#: (flag, dotted config key, type, help) shared by `provision` and `provision make-qr`.
FLAGS: list[tuple[str, str, Callable[[str], Any], str]] = [
    ("--device-id", "device.id", str, "device id known to the collector"),
    ("--venue", "venue.name", str, "venue name shown on the screen"),
    ("--venue-code", "venue.code", str, "venue code sent with every entry"),
    ("--venue-type", "venue.type", str, "hospital, supermarket, school, hotel, transport, office, other"),
    ("--checkin-url", "venue.checkin_url", str, "URL in the venue's own check-in QR"),
    ("--collector-url", "sync.collector_url", str, "the collector, e.g. https://collector.example.vn"),
    ("--seal-key", "journal.seal_key", str, "the collector's public seal key (from `collector keygen`)"),
    ("--publisher-key", "sync.publisher_key", str,
     "the health department's publishing key (from `collector publisher-keygen`)"),
    ("--collector-ca", "sync.ca_pem", lambda path: _read_pem(path),
     "PEM file of the CA of the collector's TLS certificate (kept beside the config as sync.ca_file)"),
    ("--scanner", "scanner.kind", str, "camera, serial, replay or stdin"),
    ("--camera", "scanner.camera", str, "camera index, /dev/videoN or rtsp:// URL"),
    ("--serial-port", "scanner.serial_port", str, "serial scanner device"),
    ("--serial-baud", "scanner.serial_baud", int, "serial scanner baud rate"),
    ("--pins", "pins.backend", str, "pin backend: mock, rpigpio, lgpio, auto"),
    ("--pin-green", "pins.green", int, "BCM pin of the green light"),
    ("--pin-red", "pins.red", int, "BCM pin of the red light"),
    ("--pin-buzzer", "pins.buzzer", int, "BCM pin of the buzzer"),
    ("--pin-relay", "pins.relay", int, "BCM pin of the door relay"),
    ("--pin-button", "pins.button", int, "BCM pin of the guard button"),
]
#: Asked for in this order by `kiosk provision --interactive`.
INTERACTIVE = ["device.id", "venue.name", "venue.code", "venue.type", "sync.collector_url",
               "scanner.kind", "scanner.camera", "pins.backend"]
QR_SCALE = 6
QR_BORDER = 4


def _read_pem(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"{path}: cannot read a PEM file: {exc}") from None


def _dest(key: str) -> str:
    return "set_" + key.replace(".", "_")


def _add_flags(p: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    for flag, key, typ, text in FLAGS:
        if flag in skip:
            continue
        p.add_argument(flag, dest=_dest(key), type=typ, metavar="VALUE", help=f"{text} ({key})")
    p.add_argument("--enrol-code", metavar="CODE", default="",
                   help="one-time enrolment code from the collector: gets the device token")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {key: getattr(args, _dest(key)) for _, key, _, _ in FLAGS
            if getattr(args, _dest(key), None) is not None}


def _config_path(args: argparse.Namespace) -> Path:
    from kiosk.config import DEFAULT_CONFIG_PATH, resolve_config_path

    return resolve_config_path(getattr(args, "config", None)) or DEFAULT_CONFIG_PATH


def cmd_provision(args: argparse.Namespace) -> int:
    """Set venue, collector, enrolment, scanner and pins in the config file.

    By flags or by answering questions (--interactive). The file is replaced atomically,
    and only after the new config validates. An enrolment code gets the device token
    from the collector first; a failed enrolment changes nothing.

    Example: kiosk provision --device-id hn-bv-01 --venue "Bệnh viện Bạch Mai" --venue-code BM-01 --venue-type hospital --collector-url https://collector.example.vn --enrol-code 7F3K-92QD --scanner camera --pins auto
    """
    from kiosk import provision
    from kiosk.config import load_config

    path = _config_path(args)
    settings = _settings(args)
    if args.provisioning_key:
        key_text = args.provisioning_key
        if Path(key_text).is_file():
            key_text = Path(key_text).read_text()
        provision.load_public_key(key_text)  # refuse a bad key before writing
        settings["device.provisioning_key"] = key_text.strip()
    if args.interactive or (not settings and not args.enrol_code and sys.stdin.isatty()):
        current = load_config(path) if path.exists() else load_config(None, search=False)
        settings.update(_ask(current, settings))
        if not args.enrol_code:
            args.enrol_code = input("enrolment code (empty: keep the current token): ").strip()
    if not settings and not args.enrol_code:
        print("kiosk provision: nothing to set (see --help)", file=sys.stderr)
        return 2
    cfg = provision.provision(path, settings, enrol_code=args.enrol_code)
    changed = sorted(settings) + (["sync.device_token"] if args.enrol_code else [])
    print(f"{cfg.source}: set {', '.join(changed)}")
    # Installed by install.sh, kiosk-reload.path restarts the running services on this change.
    print("kiosk and kiosk-sync restart with it within seconds (kiosk-reload.path); "
          "elsewhere restart them: systemctl restart kiosk kiosk-sync")
    return 0


def _ask(current: Any, given: dict[str, Any]) -> dict[str, Any]:
    types = {key: typ for _, key, typ, _ in FLAGS}
    out: dict[str, Any] = {}
    for key in INTERACTIVE:
        if key in given:
            continue
        section, _, name = key.partition(".")
        now = getattr(getattr(current, section), name)
        answer = input(f"{key} [{now}]: ").strip()
        if answer:
            out[key] = types[key](answer)
    return out


def cmd_make_qr(args: argparse.Namespace) -> int:
    """Make a signed provisioning QR (PNG) for a technician to show to a kiosk.

    The kiosk applies it only when its device.provisioning_key is this key's public half,
    before it expires (--valid-hours), once.

    Example: kiosk provision make-qr --key provisioning.pem --venue "Trường THCS A" --venue-code THCS-A --collector-url https://collector.example.vn --enrol-code 7F3K-92QD --out qr.png
    """
    import segno

    from kiosk import provision
    from kiosk.model import utcnow

    key = provision.load_private_key(args.key)
    text = provision.make_qr_text(_settings(args), key, now=utcnow(),
                                  validity=timedelta(hours=args.valid_hours) if args.valid_hours else None,
                                  enrol_code=args.enrol_code, device=args.device or "")
    if args.out:
        segno.make(text, error="m", micro=False).save(args.out, scale=QR_SCALE, border=QR_BORDER)
        valid = f"{args.valid_hours:g} h" if args.valid_hours else (
            f"{provision.DEFAULT_VALIDITY}" if args.device else f"{provision.ANY_DEVICE_VALIDITY} (any device)")
        print(f"{args.out}: provisioning QR, valid {valid}, "
              f"public key {provision.public_key_text(key)}")
    if args.text or not args.out:
        print(text)
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    """Make a new Ed25519 provisioning key and print its public half.

    The private key goes to FILE.pem (mode 0600, never overwritten); put the printed
    public key in every kiosk's device.provisioning_key.

    Example: kiosk provision keygen --out provisioning.pem
    """
    import os

    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from kiosk import provision

    out = Path(args.out)
    if out.exists():
        print(f"kiosk provision keygen: {out} exists; not overwriting a key", file=sys.stderr)
        return 2
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    print(provision.public_key_text(key))
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    """Apply a provisioning QR's text as if it was scanned at the kiosk.

    Same checks as at the camera: signed with the configured provisioning key, not
    expired, for this device. Exit 1 when refused.

    Example: kiosk provision scan "KP1:6BFOXN..."
    """
    from kiosk import provision

    from kiosk.model import utcnow

    text = args.text if args.text != "-" else sys.stdin.read().strip()
    cfg = config_from(args)
    result = provision.handle_scan(text, cfg, _config_path(args), now=utcnow())
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        print(("accepted" if result.accepted else "refused") + f" ({result.reason}): {result.message}")
    return 0 if result.accepted else 1


def register(sub) -> None:
    p = add_command(sub, "provision", cmd_provision)
    _add_flags(p)
    p.add_argument("--provisioning-key", metavar="KEY",
                   help="public key (base64, or a PEM file) that signs provisioning QRs")
    p.add_argument("--interactive", "-i", action="store_true", help="ask for each setting")
    psub = p.add_subparsers(dest="provision_command", metavar="SUBCOMMAND")
    q = add_command(psub, "make-qr", cmd_make_qr)
    # One device flag only: a QR for one device is applied by that device, which keeps
    # its id, so --device-id (a setting) would only say the same thing twice.
    _add_flags(q, skip=("--device-id",))
    q.add_argument("--key", required=True, metavar="PRIVATE.pem", help="Ed25519 provisioning private key")
    q.add_argument("--device", metavar="ID", help="only this device may apply it (default: any)")
    q.add_argument("--valid-hours", type=float, default=None, metavar="H",
                   help="hours until it expires (default: 24 for one --device, 0.25 for any)")
    q.add_argument("--out", metavar="FILE.png", help="write the QR image here")
    q.add_argument("--text", action="store_true", help="also print the QR text")
    k = add_command(psub, "keygen", cmd_keygen)
    k.add_argument("--out", required=True, metavar="FILE.pem", help="where to write the private key")
    s = add_command(psub, "scan", cmd_scan)
    s.add_argument("text", help="the QR text (KP1:...), or - to read it from stdin")
    s.add_argument("--json", action="store_true", help="one JSON object")
