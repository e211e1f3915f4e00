"""Revocation hashes as the EU DCC revocation design defines them: the first 16 bytes of
SHA-256 of the UVCI, of the issuing country's code followed by the UVCI, and of the
signature (for ECDSA only its r half, so a re-encoded signature hashes the same).

Shared by the kiosk (what to look up for a scanned certificate) and the collector (what
to publish for a revoked one). Hashes travel as 32 lower-case hex characters, and in the
published chunks as 16 raw bytes each.

    >>> uvci_hash("URN:UVCI:01:VN:ABC")
    '2e32c48ffd7aa4b3eccd00c8cf29c97a'
"""

from __future__ import annotations

import hashlib

__all__ = ["HASH_BYTES", "uvci_hash", "country_uvci_hash", "signature_hash", "hashes_for",
           "normalise", "parse_line"]

#: Bytes of each published hash (the EU design's 128-bit prefix of SHA-256).
HASH_BYTES = 16
#: COSE algorithms whose signature is r || s (ES256, ES384, ES512).
ECDSA_ALGS = (-7, -35, -36)


def _h(data: bytes) -> str:
    return hashlib.sha256(data).digest()[:HASH_BYTES].hex()


def uvci_hash(uvci: str) -> str:
    return _h(uvci.encode("utf-8"))


def country_uvci_hash(country: str, uvci: str) -> str:
    return _h((country + uvci).encode("utf-8"))


def signature_hash(signature: bytes, alg: object = None) -> str:
    """For ECDSA the hash covers r (the first half of r || s); otherwise the whole signature."""
    if alg in ECDSA_ALGS and len(signature) % 2 == 0:
        signature = signature[:len(signature) // 2]
    return _h(signature)


def hashes_for(country: str | None, uvci: str, signature: bytes, alg: object = None) -> list[str]:
    """The three hashes under which one certificate may be revoked."""
    out = [signature_hash(signature, alg)]
    if uvci:
        out += [uvci_hash(uvci), country_uvci_hash(country or "", uvci)]
    return out


def normalise(text: str) -> str:
    """A hash as published: 32 hex characters. A full SHA-256 (64) is cut to its prefix.
    ValueError for anything else."""
    h = text.strip().lower()
    if len(h) not in (2 * HASH_BYTES, 64) or any(c not in "0123456789abcdef" for c in h):
        raise ValueError(f"{text[:70]!r} is not a 32 or 64 character hex hash")
    return h[:2 * HASH_BYTES]


def parse_line(line: str) -> list[str]:
    """One line of a revocation file for `collector revoke`: a hex hash, `uvci:<UVCI>` or
    `country-uvci:<CC>:<UVCI>` (both hashes of that certificate). Blank and # lines: []."""
    line = line.strip()
    if not line or line.startswith("#"):
        return []
    if line.startswith("uvci:"):
        return [uvci_hash(line[5:])]
    if line.startswith("country-uvci:"):
        country, _, uvci = line[len("country-uvci:"):].partition(":")
        if not uvci:
            raise ValueError(f"{line[:70]!r}: expected country-uvci:<CC>:<UVCI>")
        return [uvci_hash(uvci), country_uvci_hash(country, uvci)]
    return [normalise(line)]
