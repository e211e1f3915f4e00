"""Issue 10's attack: a kiosk pointed at a rogue server on loopback that serves its own
trust list, rules, deny list and revocation index, signed with its own key, unsigned, or
replaying an older genuine document. Nothing it serves is taken in, a certificate
signed by the rogue's key fails, and the screen says why sync is failing."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kiosk.checks.denylist import MIN_N, make_denylist
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from collector.publish import publish
from collector_helpers import PUBLISHER, PUBLISHER_KEY, RunningCollector, open_store
from kiosk.checks.signed import generate_private_key, sign_document
from kiosk.checks.trust import KIND_DSC, TrustStore, trust_entry
from kiosk.config import load_config
from kiosk.journal import Journal
from kiosk.sync import Fetcher
from kiosk.sync.state import RULES_KEY

NOW = datetime.now(timezone.utc).replace(microsecond=0)
PERMISSIVE_RULES = b'{"dcc": {"min_days_after_dose": 0}}'


def _dsc(key):
    from kiosk.demo.material import make_dsc

    der = make_dsc(key, now=NOW).public_bytes(Encoding.DER)
    kid = b"R" + der[-7:]
    return kid, json.dumps([trust_entry(kid, KIND_DSC, der)]).encode()


def _vaccination(key, kid) -> str:
    from kiosk.demo.material import make_dcc

    entry = {"tg": "840539006", "vp": "J07BX03", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
             "dn": 2, "sd": 2, "dt": (NOW - timedelta(days=60)).date().isoformat(), "co": "VN",
             "is": "Bộ Y tế", "ci": "URN:UVCI:01:VN:ROGUE#1"}
    return make_dcc(key, kid, now=NOW, name=("Nguyễn", "Văn Giả"), dob="1990-01-01", kind="v", entry=entry)


class UnsignedServer:
    """A plain HTTP server on loopback answering every document path with bare JSON, as
    the collector did before issue 10 (and as a rogue on the network can)."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.server.seen_tokens.append(self.headers.get("Authorization", ""))
                body = documents.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.seen_tokens = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self) -> "UnsignedServer":
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def kiosk(tmp_path):
    """A kiosk pinned to the health department's key, holding its genuine trust list."""
    honest_key = ec.generate_private_key(ec.SECP256R1())
    honest_kid, honest_list = _dsc(honest_key)
    store = open_store("sqlite", tmp_path)
    with RunningCollector(store) as honest:
        cfg = load_config(None, search=False, overrides={
            "journal.path": str(tmp_path / "journal.db"), "journal.repeat_window_s": 0.0,
            "sync.publisher_key": PUBLISHER_KEY, "sync.collector_url": honest.url, "venue.type": "other"})
        journal = Journal(cfg.journal_path())
        first = publish(store, "trust", honest_list, key=PUBLISHER, now=NOW - timedelta(hours=2))
        publish(store, "trust", honest_list, key=PUBLISHER, now=NOW - timedelta(hours=1))
        publish(store, "rules", b'{"dcc": {"min_days_after_dose": 14}}', key=PUBLISHER, now=NOW)
        publish(store, "denylist", make_denylist(["cccd:079190000123"], n=MIN_N), key=PUBLISHER, now=NOW)
        with Fetcher.from_config(cfg, journal, token=honest.token()) as f:
            assert f.fetch_all()["trust"] == "updated"
    yield cfg, journal, honest_kid, first.body
    journal.close()
    store.close()


def _rogue_documents(rogue_key, rogue_list):
    return {"trust": rogue_list, "rules": PERMISSIVE_RULES, "denylist": b"[]",
            "revocations": json.dumps({"hash_bytes": 16, "chunks": []}).encode()}


def _state(journal):
    trust = TrustStore(journal)
    return (sorted(k.kid for keys in trust._cache.values() for k in keys) if len(trust) else [],
            journal.get_state(RULES_KEY), trust.is_denied("ab" * 32))


def test_a_rogue_collector_with_its_own_key_changes_nothing(kiosk, tmp_path):
    from kiosk.pipeline import Pipeline

    cfg, journal, honest_kid, _ = kiosk
    before = _state(journal)
    pipeline = Pipeline(cfg, journal)  # the running kiosk
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue_kid, rogue_list = _dsc(rogue_key)
    rogue_publisher = generate_private_key()
    (tmp_path / "rogue").mkdir()
    rogue_store = open_store("sqlite", tmp_path / "rogue")
    with RunningCollector(rogue_store, publisher=rogue_publisher) as rogue:
        for name, body in _rogue_documents(rogue_key, rogue_list).items():
            rogue_store.publish(name, sign_document(name, body, rogue_publisher, version=99, now=NOW),
                                content_type="application/cose", now=NOW)
        with Fetcher(journal, url=rogue.url, token=rogue.token(), publisher_key=cfg.sync.publisher_key) as f:
            results = f.fetch_all()
    rogue_store.close()
    for name in ("trust", "rules", "denylist", "revocations"):
        assert results[name].startswith("refused: other_key"), (name, results[name])
    assert _state(journal) == before
    event = pipeline.handle(_vaccination(rogue_key, rogue_kid), source="test", engine="test")
    assert (event.verdict.outcome.value, event.verdict.reason.value) == ("fail", "unknown_key")


def test_an_unsigned_rogue_collector_changes_nothing_and_the_screen_says_why(kiosk, tmp_path):
    from kiosk.appliance import Kiosk
    from kiosk.display import ScreenState, render_state

    cfg, journal, honest_kid, _ = kiosk
    before = _state(journal)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue_kid, rogue_list = _dsc(rogue_key)
    idle_before = Kiosk(cfg, journal=journal)._idle_state(ScreenState)
    docs = {f"/v1/{name}": body for name, body in _rogue_documents(rogue_key, rogue_list).items()}
    with UnsignedServer(docs) as rogue:
        with Fetcher(journal, url=rogue.url, token="tok", publisher_key=cfg.sync.publisher_key) as f:
            results = f.fetch_all()
    for name in ("trust", "rules", "denylist", "revocations"):
        assert results[name].startswith("refused: unsigned"), (name, results[name])
    assert _state(journal) == before
    event = Kiosk(cfg, journal=journal).pipeline.handle(_vaccination(rogue_key, rogue_kid),
                                                         source="test", engine="test")
    assert event.verdict.reason.value == "unknown_key"

    idle = Kiosk(cfg, journal=journal)._idle_state(ScreenState)
    assert "collector_untrusted" in idle.faults and "collector_untrusted" not in idle_before.faults
    import pygame

    shown, plain = render_state(idle, (800, 480)), render_state(idle_before, (800, 480))
    pygame.image.save(shown, str(tmp_path / "collector_untrusted.png"))  # look at it: the banner
    assert pygame.image.tobytes(shown, "RGB") != pygame.image.tobytes(plain, "RGB")


def test_a_replayed_older_genuine_trust_list_is_refused(kiosk):
    cfg, journal, honest_kid, first_signed = kiosk   # version 1, superseded by version 2
    before = _state(journal)
    with UnsignedServer({"/v1/trust": first_signed}) as rogue:
        with Fetcher(journal, url=rogue.url, token="tok", publisher_key=cfg.sync.publisher_key) as f:
            result = f.fetch_all()["trust"]
    assert result.startswith("refused: older"), result
    assert _state(journal) == before


def test_without_a_pinned_key_nothing_is_taken_in(tmp_path):
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    _, rogue_list = _dsc(rogue_key)
    with Journal(tmp_path / "j.db") as journal, UnsignedServer({"/v1/trust": rogue_list}) as rogue:
        with Fetcher(journal, url=rogue.url, token="tok") as f:
            result = f.fetch_all()["trust"]
        assert result.startswith("refused: no_publisher_key"), result
        assert len(TrustStore(journal)) == 0
