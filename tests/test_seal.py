"""Sealed personal fields: only the collector's private key opens them."""

import json

import pytest
from hypothesis import given, strategies as st

from kiosk.config import ConfigError
from kiosk.journal import Journal
from kiosk.model import Credential, Outcome, Reason, Scan, Verdict
from kiosk.seal import SealError, generate_keypair, open_sealed, sealer_for


@given(st.binary(max_size=2000))
def test_round_trip(data):
    private, public = generate_keypair()
    assert open_sealed(private, sealer_for(public)(data)) == data


def test_wrong_key_and_tampering_are_refused():
    private, public = generate_keypair()
    other, _ = generate_keypair()
    box = sealer_for(public)(b"Nguy\xe1\xbb\x85n")
    with pytest.raises(SealError):
        open_sealed(other, box)
    raw = bytearray(__import__("base64").b64decode(box))
    raw[-1] ^= 1
    with pytest.raises(SealError):
        open_sealed(private, __import__("base64").b64encode(bytes(raw)).decode())
    with pytest.raises(SealError):
        open_sealed(private, "not base64!")


def test_bad_public_key_is_a_config_error():
    with pytest.raises(ConfigError, match="journal.seal_key"):
        sealer_for("abc")


def test_journal_file_does_not_reveal_the_name(journal_path):
    private, public = generate_keypair()
    name = "Nguyễn Thị Hoa"
    with Journal(journal_path, sealer=sealer_for(public)) as j:
        e = j.record(Scan("x"), Verdict(Outcome.PASS, Reason.OK, "cccd"),
                     Credential("cccd", name=name, subject_key="079201001234", personal={"name": name}),
                     venue="V", device="D")
    raw = b"".join(p.read_bytes() for p in journal_path.parent.iterdir())
    assert name.encode() not in raw and b"079201001234" not in raw
    assert json.loads(open_sealed(private, e.personal))["name"] == name
