"""Demo material: a trust list with a self-made DCC signer (DSC) and declaration issuer,
and QR texts covering each verdict, for `kiosk demo` and tests.

Keys are derived from `seed`, so one seed gives the same trust list every time.

    >>> from datetime import datetime, timezone
    >>> m = demo_material(datetime(2021, 10, 1, 8, 0, tzinfo=timezone.utc))
    >>> [label for label, _ in m.payloads][:2]
    ['hd1-green', 'hd1-symptoms']
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from kiosk.checks import dcc, hd1
from kiosk.checks.cose import seal, sign1
from kiosk.checks.trust import KIND_DSC, KIND_HD1, trust_entry

__all__ = ["DemoMaterial", "demo_material", "make_dsc", "make_dcc", "EXPECTED"]

ISSUER = "Sở Y tế Demo"
DSC_VALIDITY = timedelta(days=730)
#: What each demo payload should get under the built-in supermarket rules.
EXPECTED = {
    "hd1-green": ("pass", "ok"),
    "hd1-symptoms": ("fail", "symptoms"),
    "hd1-red": ("fail", "status_red"),
    "hd1-expired": ("fail", "expired"),
    "dcc-vaccinated": ("pass", "ok"),
    "dcc-test-too-old": ("fail", "test_too_old"),
    "cccd": ("review", "identity_only"),
    "app-code": ("review", "unknown_scheme"),
    "garbage": ("fail", "bad_base45"),
}


@dataclass(frozen=True)
class DemoMaterial:
    trust_list_json: bytes
    payloads: list[tuple[str, str]]
    dsc_key: Any
    dsc_kid: bytes
    hd1_key: Any
    hd1_kid: bytes

    @property
    def expected(self) -> dict[str, tuple[str, str]]:
        return dict(EXPECTED)


def _key(seed: int, purpose: str) -> ec.EllipticCurvePrivateKey:
    digest = hashlib.sha256(f"kiosk-demo|{seed}|{purpose}".encode()).digest()
    secret = int.from_bytes(digest, "big") % (2 ** 255) + 1  # below the P-256 order
    return ec.derive_private_key(secret, ec.SECP256R1())


def make_dsc(key: Any, *, now: datetime, usages: tuple[str, ...] = ("1", "2", "3"),
             country: str = "VN", serial: int = 1, csca_key: Any = None) -> x509.Certificate:
    """A document signer certificate with the DCC key usage OIDs (`usages`: "1" test,
    "2" vaccination, "3" recovery; empty: no EKU extension), signed by `csca_key`
    (an Ed25519 key signs deterministically) or self-signed."""
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Kiosk demo DSC")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                        x509.NameAttribute(NameOID.COMMON_NAME, "Kiosk demo CSCA")]) if csca_key else name
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(serial)
               .not_valid_before(now - timedelta(days=30)).not_valid_after(now + DSC_VALIDITY))
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [x509.ObjectIdentifier(f"1.3.6.1.4.1.1847.2021.1.{u}") for u in usages]), critical=False)
    signing_key = csca_key or key
    if isinstance(signing_key, ed25519.Ed25519PrivateKey):
        return builder.sign(signing_key, None)
    return builder.sign(signing_key, hashes.SHA256())


def make_dcc(key: Any, kid: bytes, *, now: datetime, name: tuple[str, str], dob: str,
             kind: str, entry: dict[str, Any], valid_for: timedelta = timedelta(days=365),
             ver: str = "1.3.0") -> str:
    """An `HC1:` text signed by `key` (for the demo and tests)."""
    fn, gn = name
    hcert = {"ver": ver, "dob": dob, kind: [entry],
             "nam": {"fn": fn, "gn": gn, "fnt": _icao(fn), "gnt": _icao(gn)}}
    claims = {dcc.CLAIM_ISS: "VN", dcc.CLAIM_IAT: int((now - timedelta(hours=1)).timestamp()),
              dcc.CLAIM_EXP: int((now + valid_for).timestamp()), dcc.CLAIM_HCERT: {1: hcert}}
    return seal(dcc.PREFIX, sign1(claims, key, kid=kid))


def _icao(text: str) -> str:
    import unicodedata

    plain = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return plain.upper().replace(" ", "<")


def demo_material(now: datetime, seed: int = 0) -> DemoMaterial:
    """Trust list and labelled QR texts for the demo, all relative to `now`."""
    dsc_key = _key(seed, "dsc")
    csca_key = ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"kiosk-demo|{seed}|csca".encode()).digest())
    cert = make_dsc(dsc_key, now=now, serial=1000 + seed, csca_key=csca_key)
    from cryptography.hazmat.primitives.serialization import Encoding

    der = cert.public_bytes(Encoding.DER)
    dsc_kid = hashlib.sha256(der).digest()[:8]
    hd1_key = _key(seed, "hd1")
    hd1_kid = hd1.kid_for(hd1_key.public_key())
    trust = [trust_entry(dsc_kid, KIND_DSC, der), trust_entry(hd1_kid, KIND_HD1, hd1.public_der(hd1_key.public_key()))]

    def decl(name: str, id_number: str, *, at: datetime = now, valid: timedelta = timedelta(hours=24),
             **kw: Any) -> str:
        base = dict(symptoms=(), contact=False, travel=(), status="green")
        base.update(kw)
        return hd1.issue_declaration(hd1_key, hd1_kid, issuer=ISSUER, name=name, dob="1990-04-30",
                                     id_number=id_number, phone="0901234567", now=at,
                                     valid_for=valid, **base)

    vac = {"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
           "dn": 2, "sd": 2, "dt": (now - timedelta(days=40)).date().isoformat(), "co": "VN",
           "is": "Bộ Y tế Việt Nam", "ci": f"URN:UVCI:01:VN:DEMO{seed}VAC1#K"}
    test = {"tg": "840539006", "tt": "LP6464-4", "sc": (now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tr": dcc.TEST_NOT_DETECTED, "tc": "Bệnh viện Demo", "co": "VN",
            "is": "Bộ Y tế Việt Nam", "ci": f"URN:UVCI:01:VN:DEMO{seed}TEST1#J"}
    payloads = [
        ("hd1-green", decl("Trần Thị Mai", "079190000001")),
        ("hd1-symptoms", decl("Lê Văn Hùng", "079190000002", symptoms=("sot", "ho"))),
        ("hd1-red", decl("Phạm Minh Tuấn", "079190000003", status="red")),
        ("hd1-expired", decl("Võ Thị Lan", "079190000004", at=now - timedelta(days=3))),
        ("dcc-vaccinated", make_dcc(dsc_key, dsc_kid, now=now, name=("Nguyễn", "Văn An"),
                                    dob="1985-07-12", kind="v", entry=vac)),
        ("dcc-test-too-old", make_dcc(dsc_key, dsc_kid, now=now, name=("Đặng", "Thu Hà"),
                                      dob="1992-11-03", kind="t", entry=test)),
        ("cccd", "079190000123|025123456|Nguyễn Thị Hoa|15041990|Nữ|"
                 "12 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh|01072021"),
        ("app-code", "PCCOVID:v1:7f3a9c2e51d04b8e9a6f0c1d2e3f4a5b"),
        ("garbage", "HC1:xyz"),
    ]
    return DemoMaterial(json.dumps(trust).encode(), payloads, dsc_key, dsc_kid, hd1_key, hd1_kid)
