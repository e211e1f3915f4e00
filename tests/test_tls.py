"""Transport: `collector serve --tls-cert/--tls-key` speaks HTTPS on loopback with a
certificate from a CA made here; a kiosk that pins that CA (`sync.ca_file`, reaching a
new kiosk by provisioning) syncs and enrols, one that does not refuses the server, and
a plain http:// collector URL is refused unless it is on loopback."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.publish import publish
from collector.storage import Store
from collector_helpers import PUBLISHER, PUBLISHER_KEY
from collector_process import free_port
from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.journal import Journal
from kiosk.sync import Fetcher

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc)
START_TIMEOUT_S = 30.0


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server_cert(ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("collector.test")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pki(folder: Path, ca_name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 made in the test, written as PEM
    files in `folder`: (ca.pem, cert.pem, key.pem)."""
    ca_key, ca_cert = make_ca(ca_name)
    key, cert = make_server_cert(ca_key, ca_cert)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(_pem(ca_cert))
    paths[1].write_bytes(_pem(cert))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="module")
def tls_collector(tmp_path_factory):
    """`collector serve` with HTTPS, as a real process; a trust list published in its database."""
    folder = tmp_path_factory.mktemp("tls")
    write_pki(folder, "Test health department CA")
    db = f"sqlite:///{folder / 'collector.db'}"
    with Store(db) as store:
        publish(store, "trust", b"[]", key=PUBLISHER, now=NOW)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLLECTOR_ADMIN_TOKEN": "a" * 40}
    proc = subprocess.Popen([sys.executable, "-m", "collector.cli", "serve", "--db", db, "--port", str(port),
                             "--tls-cert", str(folder / "cert.pem"), "--tls-key", str(folder / "key.pem"),
                             "--log-level", "warning"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            requests.get(url + "/healthz", verify=str(folder / "ca.pem"), timeout=2)
            break
        except requests.RequestException:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"collector serve --tls-cert did not come up: {proc.stdout.read()}")
            time.sleep(0.2)
    yield {"url": url, "ca": folder / "ca.pem", "db": db, "folder": folder}
    proc.terminate()
    proc.wait(timeout=20)


def _token(db: str, device: str = "kiosk-tls") -> str:
    with Store(db) as store:
        return store.enrol(device, store.create_enrol_code(device, now=NOW), now=NOW)


def test_a_kiosk_pinning_the_collectors_ca_syncs_over_https(tls_collector, tmp_path):
    cfg = load_config(None, search=False, overrides={
        "journal.path": str(tmp_path / "j.db"), "sync.collector_url": tls_collector["url"],
        "sync.publisher_key": PUBLISHER_KEY, "sync.ca_file": str(tls_collector["ca"])})
    with Journal(cfg.journal_path()) as journal, \
            Fetcher.from_config(cfg, journal, token=_token(tls_collector["db"])) as f:
        assert f.fetch_all()["trust"] == "updated"


def test_without_the_ca_or_with_another_the_server_is_refused(tls_collector, tmp_path):
    _, other_ca = make_ca("Someone else's CA")
    (tmp_path / "other.pem").write_bytes(_pem(other_ca))
    token = _token(tls_collector["db"])
    with Journal(tmp_path / "j.db") as journal:
        for ca_file in ("", str(tmp_path / "other.pem")):
            with Fetcher(journal, url=tls_collector["url"], token=token, publisher_key=PUBLISHER_KEY,
                         ca_file=ca_file) as f:
                result = f.fetch_all()["trust"]
            assert result.startswith("error: cannot fetch") and "CERTIFICATE_VERIFY_FAILED" in result, result
        assert journal.get_json("sync.documents") is None


def test_provisioning_brings_the_ca_and_enrols_over_https(tls_collector, tmp_path):
    from kiosk import provision

    config = tmp_path / "kiosk.toml"
    config.write_text(f'[device]\nid = "kiosk-new"\nstate_dir = "{tmp_path}"\n')
    with Store(tls_collector["db"]) as store:
        code = store.create_enrol_code("kiosk-new", now=NOW)
    cfg = provision.provision(config, {"sync.collector_url": tls_collector["url"],
                                       "sync.publisher_key": PUBLISHER_KEY,
                                       "sync.ca_pem": tls_collector["ca"].read_text()}, enrol_code=code)
    assert Path(cfg.sync.ca_file).read_bytes() == tls_collector["ca"].read_bytes()
    assert Path(cfg.sync.ca_file).parent == tmp_path
    with Store(tls_collector["db"]) as store:
        assert store.device_for_token(cfg.sync.device_token.reveal()) == "kiosk-new"


@pytest.mark.parametrize("url, allowed", [
    ("http://127.0.0.1:8470", True), ("http://localhost:8470", True), ("http://[::1]:8470", True),
    ("https://collector.example.vn", True), ("http://collector.example.vn", False),
    ("http://10.0.0.5:8470", False), ("http://127.0.0.1.example.vn", False),
])
def test_plain_http_is_refused_except_on_loopback(url, allowed, tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[sync]\ncollector_url = "{url}"\n')
    if allowed:
        assert load_config(path).sync.collector_url == url
    else:
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert str(path) in str(err.value) and "sync.collector_url" in str(err.value) \
            and "https://" in str(err.value)


def test_a_missing_ca_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[sync]\nca_file = "{tmp_path / "nope.pem"}"\n')
    with pytest.raises(ConfigError, match="sync.ca_file") as err:
        load_config(path)
    assert str(path) in str(err.value)
