"""Provisioning: by flags, and by a signed QR scanned at the kiosk. An unsigned or
wrongly signed QR is refused, logged and changes nothing."""

from __future__ import annotations

import argparse
import base64
import logging
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings, strategies as st

from kiosk import provision
from kiosk.config import load_config
from kiosk.errors import ConfigError

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def kiosk_config(tmp_path: Path, key) -> Path:
    """A kiosk that trusts `key` for provisioning, as after `kiosk provision --provisioning-key`."""
    path = tmp_path / "etc" / "kiosk.toml"
    path.parent.mkdir()
    path.write_text(f'[device]\nid = "bv-01"\nstate_dir = "{tmp_path / "state"}"\n'
                    f'provisioning_key = "{provision.public_key_text(key)}"\n')
    return path


class Enrolment:
    """Stands in for the collector's POST /v1/devices and remembers what it was asked."""

    def __init__(self, token: str = "tok-123", fail: bool = False) -> None:
        self.calls: list[tuple] = []
        self.token, self.fail = token, fail

    def __call__(self, url: str, device_id: str, code: str, *, timeout: float) -> str:
        self.calls.append((url, device_id, code))
        if self.fail:
            from kiosk.errors import SyncError
            raise SyncError("401 enrolment code already used")
        return self.token


SETTINGS = {"venue.name": "Bệnh viện Bạch Mai", "venue.code": "BM-01", "venue.type": "hospital",
            "sync.collector_url": "https://collector.example.vn", "pins.green": 5, "scanner.kind": "camera"}


def _scan(text: str, path: Path, enrol=None, now: datetime = NOW) -> provision.ProvisionResult:
    return provision.handle_scan(text, load_config(path), path, now=now, enrol=enrol or Enrolment())


def _decode_png(png: Path) -> str:
    """Read the QR back through the kiosk's decoder (or zxing-cpp while it is absent)."""
    import cv2

    image = cv2.imread(str(png))
    try:
        from kiosk.config import DecoderConfig
        from kiosk.scanner.decoder import Decoder
    except ImportError:
        import zxingcpp
        return zxingcpp.read_barcodes(image)[0].text
    return Decoder(DecoderConfig()).decode(image).codes[0].text


def test_signed_qr_rendered_and_scanned_configures_the_kiosk(tmp_path, key, kiosk_config) -> None:
    from kiosk.cli import provision as provision_cli

    key_file = tmp_path / "prov.pem"
    parser = _parser()
    assert parser.parse_args(["provision", "keygen", "--out", str(key_file)]).func(
        parser.parse_args(["provision", "keygen", "--out", str(key_file)])) == 0
    # The kiosk trusts the new key.
    kiosk_config.write_text(kiosk_config.read_text().replace(
        provision.public_key_text(key), provision.public_key_text(provision.load_private_key(key_file))))
    png = tmp_path / "qr.png"
    args = parser.parse_args(["provision", "make-qr", "--key", str(key_file), "--venue", "Bệnh viện Bạch Mai",
                              "--venue-code", "BM-01", "--collector-url", "https://collector.example.vn",
                              "--pin-green", "5", "--enrol-code", "7F3K-92QD", "--out", str(png)])
    assert args.func is provision_cli.cmd_make_qr
    assert args.func(args) == 0
    text = _decode_png(png)
    assert text.startswith("KP1:")

    enrol = Enrolment(token="device-token-xyz")
    result = provision.handle_scan(text, load_config(kiosk_config), kiosk_config,
                                   now=datetime.now(timezone.utc), enrol=enrol)
    assert result.accepted and result.reason == "applied" and result.restart
    assert enrol.calls == [("https://collector.example.vn", "bv-01", "7F3K-92QD")]
    cfg = load_config(kiosk_config)
    assert cfg.venue.name == "Bệnh viện Bạch Mai"
    assert cfg.venue.code == "BM-01"
    assert cfg.pins.green == 5
    assert cfg.sync.device_token.reveal() == "device-token-xyz"
    assert cfg.device.id == "bv-01"  # untouched keys stay


def test_the_same_qr_twice_is_applied_once(key, kiosk_config) -> None:
    text = provision.make_qr_text(SETTINGS, key, now=NOW, enrol_code="ONCE")
    enrol = Enrolment()
    assert _scan(text, kiosk_config, enrol).reason == "applied"
    assert _scan(text, kiosk_config, enrol).reason == "already_applied"
    assert len(enrol.calls) == 1


def _unchanged(path: Path, result: provision.ProvisionResult, before: bytes, reason: str) -> None:
    assert not result.accepted
    assert result.reason == reason
    assert path.read_bytes() == before


def test_unsigned_qr_is_refused_and_logged(kiosk_config, caplog) -> None:
    payload = cbor2.dumps({"v": 1, "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 3600,
                           "set": {"venue.name": "Evil"}, "enrol": "", "dev": ""})
    before = kiosk_config.read_bytes()
    for body in (payload,  # a bare payload, no envelope
                 cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -8}), {}, payload, b""]))):  # empty signature
        text = "KP1:" + base45.b45encode(zlib.compress(body)).decode()
        with caplog.at_level(logging.WARNING, logger="kiosk.provision"):
            result = _scan(text, kiosk_config)
        _unchanged(kiosk_config, result, before, "unsigned")
    assert "provisioning QR refused (unsigned)" in caplog.text


def test_qr_signed_by_another_key_is_refused(kiosk_config, caplog) -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    before = kiosk_config.read_bytes()
    with caplog.at_level(logging.WARNING, logger="kiosk.provision"):
        result = _scan(provision.make_qr_text(SETTINGS, stranger, now=NOW), kiosk_config)
    _unchanged(kiosk_config, result, before, "bad_signature")
    assert "bad_signature" in caplog.text


def test_tampered_qr_is_refused(key, kiosk_config) -> None:
    text = provision.make_qr_text({"venue.name": "A"}, key, now=NOW)
    raw = bytearray(zlib.decompress(base45.b45decode(text[4:])))
    raw[raw.index(b"A", len(raw) - 80)] = ord("B")  # change the venue name after signing
    tampered = "KP1:" + base45.b45encode(zlib.compress(bytes(raw))).decode()
    before = kiosk_config.read_bytes()
    _unchanged(kiosk_config, _scan(tampered, kiosk_config), before, "bad_signature")


def test_kiosk_without_a_provisioning_key_refuses_every_qr(tmp_path, key) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[device]\nstate_dir = "{tmp_path}"\n')
    before = path.read_bytes()
    _unchanged(path, _scan(provision.make_qr_text(SETTINGS, key, now=NOW), path), before, "no_key")


def test_expired_and_other_device_qrs_are_refused(key, kiosk_config) -> None:
    before = kiosk_config.read_bytes()
    old = provision.make_qr_text(SETTINGS, key, now=NOW - timedelta(days=2))
    _unchanged(kiosk_config, _scan(old, kiosk_config), before, "expired")
    other = provision.make_qr_text(SETTINGS, key, now=NOW, device="someone-else")
    _unchanged(kiosk_config, _scan(other, kiosk_config), before, "other_device")


def test_qr_cannot_set_the_key_that_verifies_it(key) -> None:
    with pytest.raises(provision.ProvisionError, match="not allowed"):
        provision.make_qr_text({"device.provisioning_key": "x"}, key, now=NOW)


def test_signed_qr_with_invalid_values_changes_nothing(key, kiosk_config) -> None:
    before = kiosk_config.read_bytes()
    text = provision.make_qr_text({"pins.green": 27, "pins.red": 27}, key, now=NOW)  # same pin twice
    result = _scan(text, kiosk_config)
    _unchanged(kiosk_config, result, before, "bad_config")
    assert "GPIO27" in result.message
    assert list(kiosk_config.parent.glob(".kiosk-*")) == []  # no temp file left behind


def test_failed_enrolment_leaves_the_old_config(key, kiosk_config) -> None:
    before = kiosk_config.read_bytes()
    text = provision.make_qr_text(SETTINGS, key, now=NOW, enrol_code="USED")
    _unchanged(kiosk_config, _scan(text, kiosk_config, Enrolment(fail=True)), before, "enrol_failed")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(
    lambda b: "KP1:" + base45.b45encode(b).decode()) | st.binary(max_size=300).map(
    lambda b: "KP1:" + base45.b45encode(zlib.compress(b)).decode()))
def test_garbage_never_crashes_and_is_never_accepted(text: str) -> None:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(provision.ProvisionError) as err:
        provision.read_qr_text(text, public, now=NOW)
    assert err.value.reason in {"bad_payload", "unsigned", "bad_signature"}


# --- `kiosk provision` by flags -----------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    from kiosk.cli import provision as provision_cli

    parser = argparse.ArgumentParser(prog="kiosk")
    parser.add_argument("--config")
    sub = parser.add_subparsers(dest="command", required=True)
    provision_cli.register(sub)
    return parser


def _run(*argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return args.func(args)


def test_provision_by_flags_writes_a_valid_config_only_if_valid(tmp_path, key, monkeypatch, capsys) -> None:
    path = tmp_path / "kiosk.toml"
    assert _run("--config", str(path), "provision", "--device-id", "hn-01", "--venue", "Trường THCS Á",
                "--venue-type", "school", "--pins", "mock", "--pin-relay", "6",
                "--provisioning-key", provision.public_key_text(key)) == 0
    cfg = load_config(path)
    assert (cfg.device.id, cfg.venue.name, cfg.venue.type, cfg.pins.relay) == ("hn-01", "Trường THCS Á", "school", 6)
    assert path.stat().st_mode & 0o077 == 0o040  # group kiosk may read; others nothing
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="venue.type"):
        _run("--config", str(path), "provision", "--venue-type", "casino")
    assert path.read_bytes() == before


def test_provision_enrols_through_kiosk_sync(tmp_path, monkeypatch) -> None:
    enrol = Enrolment(token="t-1")
    import kiosk.provision as mod
    monkeypatch.setattr(mod, "_default_enrol", lambda: enrol)
    path = tmp_path / "kiosk.toml"
    assert _run("--config", str(path), "provision", "--collector-url", "http://127.0.0.1:9",
                "--device-id", "d-7", "--enrol-code", "C0DE") == 0
    assert enrol.calls == [("http://127.0.0.1:9", "d-7", "C0DE")]
    assert load_config(path).sync.device_token.reveal() == "t-1"


def test_bad_provisioning_key_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="provisioning_key"):
        _run("--config", str(tmp_path / "k.toml"), "provision",
             "--provisioning-key", base64.b64encode(b"short").decode())
    assert not (tmp_path / "k.toml").exists()


def test_signed_qr_enrols_with_the_real_collector(tmp_path, key, kiosk_config) -> None:
    """End to end over HTTP: the QR's one-time code gets a token the collector accepts."""
    from datetime import datetime, timezone

    from tests.collector_helpers import RunningCollector, open_store

    with RunningCollector(open_store("sqlite", tmp_path)) as collector:
        code = collector.store.create_enrol_code("bv-01", now=datetime.now(timezone.utc))
        text = provision.make_qr_text({"sync.collector_url": collector.url, "venue.code": "BM-01"}, key,
                                      now=datetime.now(timezone.utc), enrol_code=code)
        result = provision.handle_scan(text, load_config(kiosk_config), kiosk_config,
                                       now=datetime.now(timezone.utc))  # kiosk.sync.enrol, for real
        assert result.accepted, result.message
        token = load_config(kiosk_config).sync.device_token.reveal()
        assert collector.store.device_for_token(token) == "bv-01"

        # The same code cannot enrol a second time (a copied QR scanned elsewhere).
        other = kiosk_config.with_name("other.toml")
        other.write_text(kiosk_config.read_text().replace('"bv-01"', '"bv-02"').replace(
            str(tmp_path / "state"), str(tmp_path / "state2")))
        again = provision.handle_scan(text, load_config(other), other, now=datetime.now(timezone.utc))
        assert not again.accepted and again.reason == "enrol_failed"


def test_interactive_provision_asks_and_keeps_answers_left_empty(tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text('[venue]\nname = "Cũ"\ncode = "OLD-1"\n', encoding="utf-8")
    answers = iter(["hcm-07", "Trạm xe buýt Bến Thành", "", "transport", "", "serial", "", "lgpio", ""])
    asked: list[str] = []

    def fake_input(prompt: str) -> str:
        asked.append(prompt)
        return next(answers)

    monkeypatch.setattr("builtins.input", fake_input)
    assert _run("--config", str(path), "provision", "--interactive") == 0
    cfg = load_config(path)
    assert (cfg.device.id, cfg.venue.name, cfg.venue.code, cfg.venue.type) == (
        "hcm-07", "Trạm xe buýt Bến Thành", "OLD-1", "transport")
    assert (cfg.scanner.kind, cfg.pins.backend) == ("serial", "lgpio")
    assert any("[OLD-1]" in q for q in asked)  # shows the current value


def test_kiosk_run_applies_a_provisioning_qr_held_up_to_the_camera(tmp_path, key, kiosk_config) -> None:
    """The whole path: camera frame -> decoder -> run loop -> handle_scan -> config file.
    An unsigned look-alike in the same stream changes nothing."""
    import os
    import subprocess
    import sys

    import segno

    frames = tmp_path / "frames"
    frames.mkdir()
    stranger = ed25519.Ed25519PrivateKey.generate()
    forged = provision.make_qr_text({"venue.name": "Giả mạo"}, stranger, now=datetime.now(timezone.utc))
    good = provision.make_qr_text({"venue.name": "Siêu thị Co.op Hà Đông", "venue.code": "COOP-HD"}, key,
                                  now=datetime.now(timezone.utc))
    segno.make(forged, error="m", micro=False).save(str(frames / "001.png"), scale=5, border=4)
    segno.make(good, error="m", micro=False).save(str(frames / "002.png"), scale=5, border=4)
    with kiosk_config.open("a") as fh:
        fh.write(f'\n[journal]\npath = "{tmp_path / "j.db"}"\n'
                 f'[scanner]\nkind = "replay"\nreplay_path = "{frames}"\nreplay_interval_s = 0.2\n'
                 '[pins]\nbackend = "mock"\n')
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, KIOSK_PINS="mock", SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy",
               PYTHONPATH=str(root))
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(kiosk_config), "run", "--headless"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    cfg = load_config(kiosk_config)
    assert (cfg.venue.name, cfg.venue.code) == ("Siêu thị Co.op Hà Đông", "COOP-HD")
    assert "refused (bad_signature)" in result.stderr
