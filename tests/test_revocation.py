"""Revocation reaches the kiosks: the collector publishes revocation hashes (EU DCC
revocation design) in chunks under a signed index; a running kiosk fails a revoked
certificate with `revoked` after one sync, takes later revocations as a delta, and
resumes after a cut connection at the chunk it lost."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from collector.publish import publish, revoke
from collector_helpers import ENGINES, PUBLISHER, PUBLISHER_KEY, RunningCollector, open_store
from faultproxy import FaultProxy
from kiosk.checks import revocation
from kiosk.checks.trust import KIND_DSC, TrustStore, trust_entry
from kiosk.config import load_config
from kiosk.errors import SyncError, TrustError
from kiosk.journal import Journal
from kiosk.sync import Fetcher
from kiosk.sync.fetcher import REVOCATION_CURSOR_KEY

NOW = datetime.now(timezone.utc).replace(microsecond=0)
ROOT = Path(__file__).resolve().parent.parent


def _dcc(key, kid, uvci: str) -> str:
    from kiosk.demo.material import make_dcc

    entry = {"tg": "840539006", "vp": "J07BX03", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
             "dn": 2, "sd": 2, "dt": (NOW - timedelta(days=60)).date().isoformat(), "co": "VN",
             "is": "Bộ Y tế", "ci": uvci}
    return make_dcc(key, kid, now=NOW, name=("Trần", "Thị Bình"), dob="1985-05-05", kind="v", entry=entry)


@pytest.fixture(params=ENGINES)
def setup(request, tmp_path):
    from kiosk.demo.material import make_dsc

    dsc_key = ec.generate_private_key(ec.SECP256R1())
    der = make_dsc(dsc_key, now=NOW).public_bytes(Encoding.DER)
    kid = b"V" + der[-7:]
    store = open_store(request.param, tmp_path)
    with RunningCollector(store) as collector:
        publish(store, "trust", json.dumps([trust_entry(kid, KIND_DSC, der)]).encode(), key=PUBLISHER, now=NOW)
        cfg = load_config(None, search=False, overrides={
            "journal.path": str(tmp_path / "journal.db"), "journal.repeat_window_s": 0.0,
            "sync.publisher_key": PUBLISHER_KEY, "sync.collector_url": collector.url, "venue.type": "other"})
        # Repeat scans are logged again: each check here is a new presentation.
        with Journal(cfg.journal_path(), repeat_window_s=0) as journal:
            yield cfg, journal, collector, dsc_key, kid
    store.close()


def _verdict(pipeline, text):
    pipeline._recent.clear()  # presented again later, not a camera's repeated frame
    event = pipeline.handle(text, source="test", engine="test")
    return event.verdict.outcome.value, event.verdict.reason.value


def test_a_certificate_revoked_at_the_collector_fails_on_a_running_kiosk_after_one_sync(setup, tmp_path):
    from kiosk.pipeline import Pipeline

    cfg, journal, collector, dsc_key, kid = setup
    by_uvci = _dcc(dsc_key, kid, "URN:UVCI:01:VN:REVOKED#1")
    by_signature = _dcc(dsc_key, kid, "URN:UVCI:01:VN:OTHER#2")
    token = collector.token()
    # `kiosk sync` is its own process with its own connection to the journal file.
    with Journal(cfg.journal_path()) as sync_journal, Fetcher.from_config(cfg, sync_journal, token=token) as f:
        assert f.fetch_all()["trust"] == "updated"
        pipeline = Pipeline(cfg, journal)  # the running kiosk
        assert _verdict(pipeline, by_uvci) == ("pass", "ok")
        assert _verdict(pipeline, by_signature) == ("pass", "ok")

        # The health department revokes one by its UVCI and one by its signature (r of
        # ECDSA), with the real command.
        from kiosk.checks.cose import unseal

        sig = unseal(by_signature, "HC1:").signature
        lines = tmp_path / "revoked.txt"
        lines.write_text("uvci:URN:UVCI:01:VN:REVOKED#1\n" + revocation.signature_hash(sig, -7) + "\n")
        key_file = tmp_path / "publisher.pem"
        from kiosk.checks.signed import private_key_pem

        key_file.write_bytes(private_key_pem(PUBLISHER))
        proc = subprocess.run([sys.executable, "-m", "collector.cli", "revoke", str(lines), "--key", str(key_file),
                               "--db", collector.store.engine.url.render_as_string(hide_password=False)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        assert "revoked 2 hashes" in proc.stdout

        assert f.fetch_all()["revocations"] == "updated"   # one sync
        assert _verdict(pipeline, by_uvci) == ("fail", "revoked")
        assert _verdict(pipeline, by_signature) == ("fail", "revoked")

        # Withdrawn again: the next sync lets it pass.
        revoke(collector.store, [revocation.uvci_hash("URN:UVCI:01:VN:REVOKED#1")], key=PUBLISHER,
               now=NOW, remove=True)
        assert f.fetch_all()["revocations"] == "updated"
        assert _verdict(pipeline, by_uvci) == ("pass", "ok")
        assert _verdict(pipeline, by_signature) == ("fail", "revoked")


def _hashes(n: int, salt: str) -> list[str]:
    return [revocation.uvci_hash(f"URN:UVCI:01:VN:{salt}{i}") for i in range(n)]


def _count(journal) -> int:
    return journal.db.conn.execute("SELECT count(*) FROM revocations").fetchone()[0]


def _chunk_requests(proxy) -> list[str]:
    return [line.split()[1] for _, line in proxy.log if "/v1/revocations/chunks/" in line]


def test_revocations_update_by_delta_and_resume_after_a_cut_connection(setup):
    cfg, journal, collector, _, _ = setup
    first = _hashes(1000, "A")
    revoke(collector.store, first, key=PUBLISHER, now=NOW, chunk_entries=300)   # chunks 1-4
    token = collector.token()
    with FaultProxy(collector.port) as proxy, \
            Fetcher(journal, url=proxy.url, token=token, publisher_key=PUBLISHER_KEY) as f:
        # The connection is cut while the third chunk comes in.
        proxy.queue("pass", "pass", "pass", "cut")
        # (The cut answer ends inside its headers: whether it reads as a broken connection
        # or an empty body, the chunk is not taken.)
        with pytest.raises((SyncError, TrustError)):
            f.fetch("revocations")
        assert journal.get_state(REVOCATION_CURSOR_KEY) == "2"
        store = TrustStore(journal)
        assert _count(journal) == 600   # chunks 1 and 2 are in; chunk 3 was not half-applied

        # The next sync resumes at the chunk it lost: chunks 1 and 2 are not fetched again.
        proxy.log.clear()
        assert f.fetch("revocations") == "updated"
        assert _chunk_requests(proxy) == ["/v1/revocations/chunks/3", "/v1/revocations/chunks/4"]
        assert all(store.is_revoked([h]) for h in first)

        # Later revocations come as a delta: only the new chunk travels.
        later = _hashes(5, "B")
        revoke(collector.store, later, key=PUBLISHER, now=NOW)
        proxy.log.clear()
        assert f.fetch("revocations") == "updated"
        assert _chunk_requests(proxy) == ["/v1/revocations/chunks/5"]
        assert all(store.is_revoked([h]) for h in later)
        assert _count(journal) == 1005


def test_a_chunk_that_does_not_match_the_signed_index_is_refused(setup):
    import sqlalchemy as sa

    from collector.storage import revocation_chunks

    cfg, journal, collector, _, _ = setup
    revoke(collector.store, _hashes(10, "C"), key=PUBLISHER, now=NOW)
    with collector.store.engine.begin() as conn:   # someone swaps the chunk on the server
        conn.execute(sa.update(revocation_chunks).values(body=bytes.fromhex(_hashes(10, "D")[0]) * 10))
    with Fetcher.from_config(cfg, journal, token=collector.token()) as f:
        result = f.fetch_all()["revocations"]
    assert result.startswith("error:") and "does not match the signed index" in result
    assert not TrustStore(journal).is_revoked(_hashes(10, "D")[:1])
    assert journal.get_state(REVOCATION_CURSOR_KEY) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_a_revocation_file_line_is_hashes_or_a_clear_error(line):
    try:
        out = revocation.parse_line(line)
    except ValueError as exc:
        assert "hash" in str(exc) or "country-uvci" in str(exc)
    else:
        assert all(len(h) == 32 and int(h, 16) >= 0 for h in out)


def test_the_eu_hashes_of_a_certificate():
    # First 16 bytes of SHA-256 (EU DCC revocation design); ECDSA: of r only.
    sig = bytes(range(64))
    assert revocation.signature_hash(sig, -7) == revocation.signature_hash(sig[:32] + b"\xff" * 32, -7)
    assert revocation.signature_hash(sig, -37) != revocation.signature_hash(sig[:32] + b"\xff" * 32, -37)
    assert revocation.country_uvci_hash("VN", "U1") == revocation.uvci_hash("VNU1")
    assert revocation.parse_line("country-uvci:VN:U1") == [revocation.uvci_hash("U1"), revocation.uvci_hash("VNU1")]
    assert revocation.parse_line("AB" * 32) == ["ab" * 16]
