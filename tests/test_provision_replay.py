"""Provisioning QRs cannot be replayed (issue 10): a QR names its device or "any" (and
then lives minutes), one older than the last applied is refused, validity is capped when
read, a new collector URL drops the device token, the seal and publisher keys cannot be
blanked. Each refusal is shown, logged and changes nothing."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from collector_helpers import PUBLISHER_KEY
from kiosk import provision
from kiosk.checks import cose
from kiosk.config import load_config
from kiosk.journal import Journal
from kiosk.sync.state import TOKEN_KEY

NOW = datetime.now(timezone.utc).replace(microsecond=0)
SEAL = "q" * 43 + "="   # base64 of 32 bytes


@pytest.fixture(scope="module")
def key():
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def kiosk(tmp_path, key) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[device]\nid = "bv-01"\nstate_dir = "{tmp_path / "state"}"\n'
                    f'provisioning_key = "{provision.public_key_text(key)}"\n'
                    f'[journal]\npath = "{tmp_path / "journal.db"}"\nseal_key = "{SEAL}"\n'
                    f'[sync]\ncollector_url = "https://collector.example.vn"\ndevice_token = "old-token"\n'
                    f'publisher_key = "{PUBLISHER_KEY}"\n')
    return path


def _scan(text, path, now=NOW):
    return provision.handle_scan(text, load_config(path), path, now=now, enrol=lambda *a, **k: "new-token")


def _refused(path, text, reason, caplog, now=NOW):
    before = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="kiosk.provision"):
        result = _scan(text, path, now)
    assert (result.accepted, result.reason) == (False, reason), result
    assert path.read_bytes() == before
    assert any(reason in r.getMessage() for r in caplog.records)
    return result


def _signed(key, claims) -> str:
    """A QR signed with the real key but made by hand (make_qr_text refuses these)."""
    kid = provision._kid(key.public_key())
    return cose.seal(provision.PREFIX, cose.sign1(claims, key, kid=kid, alg=provision.ALG_EDDSA))


def test_an_older_qr_than_the_last_applied_is_refused_and_shown(kiosk, key, caplog):
    from kiosk.pipeline import Pipeline

    old = provision.make_qr_text({"venue.name": "Cũ"}, key, now=NOW - timedelta(hours=2), device="bv-01")
    new = provision.make_qr_text({"venue.name": "Mới"}, key, now=NOW - timedelta(hours=1), device="bv-01")
    assert _scan(new, kiosk).reason == "applied"
    result = _refused(kiosk, old, "older", caplog)
    assert "cannot undo a newer one" in result.message
    assert load_config(kiosk).venue.name == "Mới"
    # Shown on the screen: the kiosk's own scan path turns the refusal into a fail with why.
    cfg = load_config(kiosk)
    with Journal(cfg.journal_path()) as journal:
        event = Pipeline(cfg, journal).handle(old, source="test", engine="test")
    assert event.verdict.outcome.value == "fail" and "newer one" in event.verdict.detail


def test_a_qr_for_another_device_changes_nothing(kiosk, key, caplog):
    other = provision.make_qr_text({"venue.name": "Khác"}, key, now=NOW, device="bv-02")
    _refused(kiosk, other, "other_device", caplog)


def test_a_qr_for_any_device_lives_minutes(kiosk, key, caplog):
    with pytest.raises(provision.ProvisionError):
        provision.make_qr_text({"venue.name": "A"}, key, now=NOW, validity=timedelta(hours=24))
    text = provision.make_qr_text({"venue.name": "A"}, key, now=NOW)   # "any", 15 minutes
    _refused(kiosk, text, "expired", caplog, now=NOW + timedelta(minutes=16))
    assert _scan(text, kiosk, now=NOW + timedelta(minutes=5)).accepted


@pytest.mark.parametrize("dev, life", [("any", timedelta(hours=24)), ("", timedelta(hours=2)),
                                       ("bv-01", timedelta(days=365))])
def test_validity_is_capped_when_read(kiosk, key, caplog, dev, life):
    text = _signed(key, {"v": 1, "iat": int(NOW.timestamp()), "exp": int((NOW + life).timestamp()),
                         "dev": dev, "set": {"venue.name": "Lâu dài"}, "enrol": ""})
    _refused(kiosk, text, "too_long", caplog)


@pytest.mark.parametrize("setting", ["journal.seal_key", "sync.publisher_key"])
def test_a_qr_cannot_blank_the_seal_or_publisher_key(kiosk, key, caplog, setting):
    text = _signed(key, {"v": 1, "iat": int(NOW.timestamp()), "exp": int((NOW + timedelta(minutes=5)).timestamp()),
                         "dev": "bv-01", "set": {setting: ""}, "enrol": ""})
    _refused(kiosk, text, "cannot_blank", caplog)
    with pytest.raises(provision.ProvisionError, match="cannot be set empty"):
        provision.provision(kiosk, {setting: " "})


def test_a_new_collector_url_drops_the_device_token(kiosk, key):
    cfg = load_config(kiosk)
    with Journal(cfg.journal_path()) as journal:
        journal.set_state(TOKEN_KEY, "enrolled-token")
    text = provision.make_qr_text({"sync.collector_url": "https://other.example.vn"}, key, now=NOW, device="bv-01")
    result = _scan(text, kiosk)
    assert result.accepted and "sync.device_token" in result.changed
    after = load_config(kiosk)
    assert after.sync.collector_url == "https://other.example.vn"
    assert after.sync.device_token.reveal() == ""
    with Journal(after.journal_path()) as journal:
        assert not journal.get_state(TOKEN_KEY)
    # The same URL again keeps a token (nothing to drop), and an enrolment sets the new one.
    again = provision.make_qr_text({"sync.collector_url": "https://other.example.vn"}, key, now=NOW + timedelta(seconds=1),
                                   device="bv-01", enrol_code="CODE")
    assert _scan(again, kiosk).accepted
    assert load_config(kiosk).sync.device_token.reveal() == "new-token"


def test_the_publisher_key_and_ca_reach_a_new_kiosk_by_qr(tmp_path, key):
    from test_tls import _pem, make_ca

    _, ca = make_ca("Sở Y tế CA")
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[device]\nid = "bv-09"\nstate_dir = "{tmp_path / "state"}"\n'
                    f'provisioning_key = "{provision.public_key_text(key)}"\n')
    text = provision.make_qr_text({"sync.publisher_key": PUBLISHER_KEY, "sync.ca_pem": _pem(ca).decode(),
                                   "sync.collector_url": "https://collector.example.vn"}, key, now=NOW,
                                  device="bv-09")
    assert _scan(text, path).accepted
    cfg = load_config(path)
    assert cfg.sync.publisher_key == PUBLISHER_KEY
    assert Path(cfg.sync.ca_file).read_bytes() == _pem(ca)
