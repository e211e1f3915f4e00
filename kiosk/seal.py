"""Seal personal fields to the collector's public key, so a stolen SD card reveals nothing.

An anonymous sealed box: an ephemeral X25519 key agrees a secret with the collector's
X25519 public key, HKDF-SHA256 derives a ChaCha20-Poly1305 key, and the box is
`version | ephemeral public key | nonce | ciphertext`, base64. Only the holder of the
collector's private key can open it; the kiosk itself cannot read what it sealed.

    >>> private, public = generate_keypair()
    >>> box = sealer_for(public)(b"Nguyen Van An")
    >>> open_sealed(private, box)
    b'Nguyen Van An'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kiosk.errors import ConfigError, KioskError

__all__ = ["SealError", "generate_keypair", "open_sealed", "seal", "sealer_for", "subject_hash",
           "sealer_from_config", "seal_required", "SUBJECT_FIELD"]

#: The field of the (sealed) personal JSON that carries the person's identifier
#: (`cccd:<id>`, `dcc:<UVCI>`, `hd1:<idh>`): only the collector, which opens the box,
#: derives the cross-kiosk person key from it.
SUBJECT_FIELD = "subject"

VERSION = b"\x01"
INFO = b"kiosk-seal-v1"
NONCE_LEN = 12
KEY_LEN = 32


class SealError(KioskError, ValueError):
    """A sealed box cannot be opened (wrong key or tampered)."""


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key(shared: bytes, eph: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), KEY_LEN, salt=eph + recipient, info=INFO).derive(shared)


def generate_keypair() -> tuple[str, str]:
    """A new (private, public) X25519 key pair, each base64 of the raw 32 bytes."""
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
    return base64.b64encode(raw_private).decode(), base64.b64encode(_raw(private.public_key())).decode()


def _load_public(text: str) -> X25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return X25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise ConfigError("journal.seal_key: expected the collector's X25519 public key, "
                          "base64 of 32 bytes") from None


def seal(public: X25519PublicKey, data: bytes) -> str:
    eph = X25519PrivateKey.generate()
    eph_raw = _raw(eph.public_key())
    key = _key(eph.exchange(public), eph_raw, _raw(public))
    nonce = os.urandom(NONCE_LEN)
    box = VERSION + eph_raw + nonce + ChaCha20Poly1305(key).encrypt(nonce, data, VERSION)
    return base64.b64encode(box).decode()


def sealer_for(public_b64: str) -> Callable[[bytes], str]:
    """A function that seals bytes to the given public key (validated now, not at first use)."""
    public = _load_public(public_b64)
    return lambda data: seal(public, data)


def open_sealed(private_b64: str, box_b64: str) -> bytes:
    try:
        private = X25519PrivateKey.from_private_bytes(base64.b64decode(private_b64, validate=True))
        box = base64.b64decode(box_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SealError(f"not a sealed box or key: {exc}") from None
    if len(box) < 1 + 32 + NONCE_LEN + 16 or box[:1] != VERSION:
        raise SealError("not a sealed box of a known version")
    eph_raw, nonce, ciphertext = box[1:33], box[33:33 + NONCE_LEN], box[33 + NONCE_LEN:]
    eph = X25519PublicKey.from_public_bytes(eph_raw)
    key = _key(private.exchange(eph), eph_raw, _raw(private.public_key()))
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, VERSION)
    except InvalidTag:
        raise SealError("sealed box does not open with this key (wrong key or tampered)") from None


def subject_hash(key_hex: str, subject_key: str) -> str:
    """The cross-kiosk person key: HMAC-SHA256(the collector's tracing key, "subject:" +
    subject key), hex. Only the collector computes it, at ingest, from the identifier it
    opens in the sealed personal fields; kiosks never hold the tracing key.

    >>> subject_hash("00" * 32, "cccd:079201001234")[:16]
    '33075f76aaf7a76f'
    """
    return hmac.new(bytes.fromhex(key_hex), ("subject:" + subject_key).encode("utf-8"),
                    hashlib.sha256).hexdigest()


def seal_required(cfg: object) -> bool:
    """Sealing is required wherever the collector is not on this machine: a journal
    that leaves loopback holds a province's ID numbers."""
    from kiosk.config import _loopback

    return not _loopback(cfg.sync.collector_url)  # type: ignore[attr-defined]


def sealer_from_config(cfg: object) -> Callable[[bytes], str] | None:
    """The sealer for `journal.seal_key`; None (unsealed) only with a loopback collector.
    A kiosk whose collector is elsewhere and that has no seal key refuses to start.

    >>> from kiosk.config import load_config
    >>> sealer_from_config(load_config(search=False)) is None   # demo defaults: loopback
    True
    """
    key = cfg.journal.seal_key  # type: ignore[attr-defined]
    if key:
        return sealer_for(key)
    if seal_required(cfg):
        raise ConfigError(
            f"{cfg.source}: key 'journal.seal_key' is required: the collector "  # type: ignore[attr-defined]
            f"{cfg.sync.collector_url} is not on loopback, and without the collector's "  # type: ignore[attr-defined]
            "public seal key ID numbers and names would be kept readable on the SD card; "
            "set journal.seal_key to the key `collector keygen` printed (or `kiosk provision --seal-key`)")
    return None
