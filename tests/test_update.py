"""Signed A/B software updates (issue 24), the fast part: the offer, the rollout, the
kiosk user's half against a real collector over HTTP, and the root half's decisions
and trial with a simulated systemd (a twin of the two things it asks: restart, show).
tests/test_update_nspawn.py runs the whole flow under a real systemd."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings, strategies as st

from collector.updates import publish_update
from collector_helpers import ADMIN_TOKEN, PUBLISHER, PUBLISHER_KEY, RunningCollector, open_store, publish_raw
from kiosk import __version__
from kiosk.checks.signed import generate_private_key, public_key_text, sign_document
from kiosk.config import load_config
from kiosk.errors import TrustError
from kiosk.journal import Journal
from kiosk.sync import Fetcher
from kiosk.update import (OFFER_KEY, Layout, Offer, Updater, bucket, parse_offer, read_state, selected,
                          version_key)
from update_helpers import build_wheel

NOW = datetime.now(timezone.utc).replace(microsecond=0)
NEXT = "0.1.1" if version_key(__version__) < version_key("0.1.1") else __version__ + ".1"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    return {"next": build_wheel(out, NEXT), "old": build_wheel(out, "0.0.9"),
            "next_forged": build_wheel(out / "forged", NEXT, broken=True)}


def _cfg(tmp_path: Path, *, device: str = "kiosk-1", venue: str = "V1"):
    return load_config(None, search=False, overrides={"device.id": device, "venue.code": venue,
                                                      "device.state_dir": str(tmp_path / "state")})


@pytest.fixture
def env_state(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "root-state" / "state.json"
    monkeypatch.setenv("KIOSK_UPDATE_STATE", str(path))
    return path


# --- the offer and the rollout ---------------------------------------------------------

def _offer_body(**changes) -> bytes:
    body = {"package": "kiosk", "version": "1.2.0", "file": "kiosk-1.2.0-py3-none-any.whl",
            "sha256": "ab" * 32, "size": 1000, "rollout": {"percent": 10, "venues": [], "devices": []}}
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize("changes", [
    {"version": "1.2.0rc1"}, {"version": "1.2.0", "file": "kiosk-1.3.0-py3-none-any.whl"},
    {"file": "../../etc/passwd"}, {"sha256": "AB" * 32}, {"size": 0}, {"size": True},
    {"rollout": {"percent": 101}}, {"rollout": {"venues": "BV-01"}}, {"package": "other"},
])
def test_a_malformed_offer_is_refused(changes):
    with pytest.raises(TrustError, match="malformed"):
        parse_offer(_offer_body(**changes))


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=5),
                    max_leaves=20))
def test_the_offer_parser_answers_anything_with_an_offer_or_a_refusal(value):
    try:
        offer = parse_offer(json.dumps(value).encode())
    except TrustError:
        return
    assert isinstance(offer, Offer)


def test_staged_rollout_widens_without_dropping_anyone():
    devices = [f"hn-{i:04d}" for i in range(2000)]
    ten = {d for d in devices if bucket("1.2.0", d) < 10}
    fifty = {d for d in devices if bucket("1.2.0", d) < 50}
    assert 140 < len(ten) < 260 and 850 < len(fifty) < 1150
    assert ten <= fifty
    # Each release starts with other kiosks (a kiosk is not always the guinea pig).
    assert ten != {d for d in devices if bucket("1.3.0", d) < 10}
    offer = parse_offer(_offer_body(rollout={"percent": 0, "venues": ["BV-01"], "devices": ["hn-0007"]}))
    assert selected(offer, "hn-0001", "BV-01") and selected(offer, "hn-0007", "TH-02")
    assert not selected(offer, "hn-0001", "TH-02")


# --- the kiosk user's half, against a real collector ------------------------------------

def _fetch(collector, journal, cfg) -> dict[str, str]:
    with Fetcher.from_config(cfg, journal, token=collector.token()) as f:
        return {"update": _one(f)}


def _one(f) -> str:
    try:
        return f.fetch("update")
    except Exception as exc:  # the result fetch_all would record
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture
def served(tmp_path):
    store = open_store("sqlite", tmp_path)
    with RunningCollector(store) as collector:
        yield store, collector
    store.close()


def _sync_cfg(tmp_path, collector, **kw):
    cfg = _cfg(tmp_path, **kw)
    import dataclasses

    return dataclasses.replace(cfg, sync=dataclasses.replace(cfg.sync, collector_url=collector.url,
                                                             publisher_key=PUBLISHER_KEY))


def test_kiosk_downloads_checks_and_stages_an_offer_it_is_in(served, wheels, tmp_path, env_state):
    store, collector = served
    publish_update(store, wheels["next"], key=PUBLISHER, now=NOW, percent=100)
    cfg = _sync_cfg(tmp_path, collector)
    with Journal(tmp_path / "j.db") as journal:
        assert _fetch(collector, journal, cfg)["update"] == "updated"
        offer = journal.get_json(OFFER_KEY)
    folder = tmp_path / "state" / "update"
    assert offer["decision"] == "staged" and offer["version"] == NEXT
    staged = json.loads((folder / "staged.json").read_text())
    wheel = folder / staged["file"]
    assert wheel.read_bytes() == wheels["next"].read_bytes()
    assert (folder / "offer.cose").stat().st_size > 0


def test_an_offer_outside_the_rollout_waits_and_stages_nothing(served, wheels, tmp_path, env_state):
    store, collector = served
    device = next(f"d-{i}" for i in range(1000) if bucket(NEXT, f"d-{i}") >= 50)
    publish_update(store, wheels["next"], key=PUBLISHER, now=NOW, percent=50, venues=["OTHER"])
    cfg = _sync_cfg(tmp_path, collector, device=device)
    with Journal(tmp_path / "j.db") as journal:
        _fetch(collector, journal, cfg)
        assert journal.get_json(OFFER_KEY)["decision"] == "waiting"
    assert not (tmp_path / "state" / "update" / "staged.json").exists()


def test_a_downgrade_is_refused_by_the_kiosk(served, wheels, tmp_path, env_state):
    store, collector = served
    publish_update(store, wheels["old"], key=PUBLISHER, now=NOW)  # older than the kiosk runs
    cfg = _sync_cfg(tmp_path, collector)
    with Journal(tmp_path / "j.db") as journal:
        _fetch(collector, journal, cfg)
        offer = journal.get_json(OFFER_KEY)
    assert offer["decision"] == "refused" and "not newer" in offer["detail"]
    assert not (tmp_path / "state" / "update").exists()


def test_the_collector_refuses_to_offer_an_older_version_than_it_offers(served, wheels):
    store, _ = served
    publish_update(store, wheels["next"], key=PUBLISHER, now=NOW)
    with pytest.raises(ValueError, match="older than"):
        publish_update(store, wheels["old"], key=PUBLISHER, now=NOW)


def test_an_offer_signed_by_another_key_is_refused(served, wheels, tmp_path, env_state):
    store, collector = served
    data = wheels["next"].read_bytes()
    digest = store.add_update_file(wheels["next"].name, data, now=NOW)
    body = Offer(NEXT, wheels["next"].name, digest, len(data)).as_dict()
    publish_raw(store, "update", json.dumps(body).encode(), now=NOW, key=generate_private_key())
    cfg = _sync_cfg(tmp_path, collector)
    with Journal(tmp_path / "j.db") as journal, Fetcher.from_config(cfg, journal, token=collector.token()) as f:
        assert f.fetch_all()["update"].startswith("refused: other_key")
    assert not (tmp_path / "state" / "update").exists()


def test_a_wheel_that_does_not_match_the_signed_sha256_is_refused(served, wheels, tmp_path, env_state):
    store, collector = served
    _, offer = publish_update(store, wheels["next"], key=PUBLISHER, now=NOW)
    from collector.storage import update_files

    data = bytearray(wheels["next"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    with store.engine.begin() as conn:  # a collector (or a proxy) serving other bytes
        conn.execute(update_files.update().values(body=bytes(data)))
    cfg = _sync_cfg(tmp_path, collector)
    with Journal(tmp_path / "j.db") as journal, Fetcher.from_config(cfg, journal, token=collector.token()) as f:
        result = f.fetch_all()["update"]
    assert result.startswith("error:") and "does not match" in result
    assert not (tmp_path / "state" / "update" / "staged.json").exists()


def test_update_files_need_a_device_token_and_a_sha256(served, wheels):
    store, collector = served
    _, offer = publish_update(store, wheels["next"], key=PUBLISHER, now=NOW)
    url = f"{collector.url}/v1/update/files/{offer.sha256}"
    assert requests.get(url, timeout=10).status_code in (401, 403)
    ok = requests.get(url, headers={"Authorization": f"Bearer {collector.token()}"}, timeout=10)
    assert ok.status_code == 200 and hashlib.sha256(ok.content).hexdigest() == offer.sha256
    bad = requests.get(f"{collector.url}/v1/update/files/..%2f..%2fetc", timeout=10,
                       headers={"Authorization": f"Bearer {collector.token()}"})
    assert bad.status_code in (404, 422)


# --- the root half, with a simulated systemd ---------------------------------------------

class SimulatedSystemd:
    """kiosk.service as systemd would report it, per slot: 'good' reaches READY=1 after
    two polls; 'crash' exits at start and is restarted forever; 'watchdog' comes up, then
    trips its watchdog."""

    def __init__(self, layout: Layout, behaviour: dict[str, str]) -> None:
        self.layout, self.behaviour = layout, behaviour
        self.restarts: list[tuple[str, ...]] = []
        self.polls = 0

    def restart(self, *units: str) -> None:
        self.restarts.append(units)
        self.polls = 0

    def show(self, unit: str) -> dict[str, str]:
        self.polls += 1
        kind = self.behaviour[self.layout.current()]
        if kind == "crash":
            return {"ActiveState": "activating", "SubState": "auto-restart", "NRestarts": str(self.polls),
                    "Result": "exit-code", "ExecMainStatus": "3"}
        if self.polls < 3:
            return {"ActiveState": "activating", "SubState": "start", "NRestarts": "0"}
        if kind == "watchdog" and self.polls > 6:
            return {"ActiveState": "activating", "SubState": "auto-restart", "NRestarts": "1",
                    "Result": "watchdog", "ExecMainStatus": "0"}
        return {"ActiveState": "active", "SubState": "running", "NRestarts": "0"}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def sleep(self, s: float) -> None:
        self.t += s

    def monotonic(self) -> float:
        return self.t


def _slot(layout: Layout, name: str, version: str) -> None:
    meta = layout.slot(name) / "lib/python3.11/site-packages" / f"kiosk-{version}.dist-info"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: kiosk\nVersion: {version}\n")


class BuildsInPlace(Updater):
    """The real Updater, except the slot is built by writing its METADATA (the real pip
    install into a real slot is tests/test_update_nspawn.py's)."""

    def _build(self, name, file, wheel, version):
        _slot(self.layout, name, version)


def _root(tmp_path: Path, behaviour: dict[str, str], *, key=PUBLISHER_KEY, running: str = __version__):
    layout = Layout(prefix=tmp_path / "opt", staged=tmp_path / "staged", state_dir=tmp_path / "root-state")
    _slot(layout, "a", running)
    os.symlink("slots/a", layout.link)
    clock = Clock()
    services = SimulatedSystemd(layout, behaviour)
    updater = BuildsInPlace(layout, publisher_key=key, services=services, ready_timeout_s=30, confirm_s=20,
                            sleep=clock.sleep, monotonic=clock.monotonic)
    return layout, updater, services


def _stage(layout: Layout, wheel: Path, *, key=PUBLISHER, version: int = 1, offer: Offer | None = None) -> None:
    data = wheel.read_bytes()
    offer = offer or Offer(wheel.name.split("-")[1], wheel.name, hashlib.sha256(data).hexdigest(), len(data))
    envelope = sign_document("update", json.dumps(offer.as_dict()).encode(), key, version=version, now=NOW)
    layout.staged.mkdir(parents=True, exist_ok=True)
    (layout.staged / offer.file).write_bytes(data)
    (layout.staged / "offer.cose").write_bytes(envelope)
    (layout.staged / "staged.json").write_text(json.dumps({"version": offer.version, "file": offer.file}))


def test_a_version_that_comes_up_is_kept(tmp_path, wheels):
    layout, updater, services = _root(tmp_path, {"a": "good", "b": "good"})
    _stage(layout, wheels["next"])
    state = updater.run()
    assert state["state"] == "installed" and state["version"] == NEXT and state["from"] == __version__
    assert layout.current() == "b" and state["trusted_slot"] == "b"
    assert services.restarts == [("kiosk.service", "kiosk-sync.service")]
    assert not (layout.staged / "staged.json").exists()
    assert read_state(layout.state_dir / "state.json")["state"] == "installed"


@pytest.mark.parametrize("failure, said", [("crash", "did not reach READY=1"), ("watchdog", "restarted during")])
def test_a_version_that_fails_is_rolled_back_and_never_tried_again(tmp_path, wheels, failure, said):
    layout, updater, services = _root(tmp_path, {"a": "good", "b": failure})
    _stage(layout, wheels["next"])
    state = updater.run()
    assert state["state"] == "rolled_back" and said in state["detail"], state
    assert layout.current() == "a" and state["bad"] == [NEXT]
    assert len(services.restarts) == 2  # onto the new slot, and back
    _stage(layout, wheels["next"], version=2)  # offered again (a re-signed document)
    again = updater.run()
    assert again["state"] == "refused" and "failed its trial" in again["detail"]
    assert layout.current() == "a"


def test_a_power_cut_during_the_trial_is_finished_at_boot(tmp_path, wheels):
    layout, updater, services = _root(tmp_path, {"a": "good", "b": "crash"})
    _stage(layout, wheels["next"])
    updater._watch = lambda *a, **k: {"cut": True}  # the power goes right after the switch
    updater.run()
    assert read_state(updater.state_path)["state"] == "trial" and layout.current() == "b"
    # Boot: kiosk-update.service runs from the trusted slot and watches the trial again.
    clock = Clock()
    booted = BuildsInPlace(layout, publisher_key=PUBLISHER_KEY, services=services, ready_timeout_s=30,
                           confirm_s=20, sleep=clock.sleep, monotonic=clock.monotonic)
    state = booted.run()
    assert state["state"] == "rolled_back" and layout.current() == "a"


def test_root_refuses_what_the_kiosk_user_could_have_forged(tmp_path, wheels):
    layout, updater, _ = _root(tmp_path, {"a": "good", "b": "good"})
    # Signed by another key.
    _stage(layout, wheels["next"], key=generate_private_key())
    assert "other_key" in updater.run()["detail"]
    # A wheel swapped after staging: the signed SHA-256 no longer matches.
    _stage(layout, wheels["next"])
    (layout.staged / wheels["next"].name).write_bytes(wheels["next_forged"].read_bytes())
    assert updater.run()["detail"] == "the wheel does not match the signed offer"
    # A downgrade, properly signed.
    _stage(layout, wheels["old"])
    assert "downgrade" in updater.run()["detail"]
    # A planted link instead of the wheel.
    _stage(layout, wheels["next"])
    (layout.staged / wheels["next"].name).unlink()
    (layout.staged / wheels["next"].name).symlink_to(wheels["next"])
    assert "unreadable" in updater.run()["detail"]
    assert layout.current() == "a"
    # The key in kiosk.toml changed (the kiosk user can write it): root keeps its pin.
    other = generate_private_key()
    swapped = BuildsInPlace(layout, publisher_key=public_key_text(other), services=updater.services)
    _stage(layout, wheels["next"], key=other)
    assert "pinned" in swapped.run()["detail"] and layout.current() == "a"


def test_the_outcome_reaches_the_fleet_page(served, tmp_path, env_state):
    store, collector = served
    env_state.parent.mkdir(parents=True)
    env_state.write_text(json.dumps({"state": "rolled_back", "version": "0.3.0", "from": "0.2.0",
                                     "at": "2026-12-07T09:00:00Z", "trusted_slot": "a",
                                     "detail": "did not reach READY=1 within 120 s"}))
    from kiosk.sync import heartbeat

    cfg = _sync_cfg(tmp_path, collector)
    with Journal(tmp_path / "j.db") as journal:
        beat = heartbeat.collect(cfg, journal, datetime.now(timezone.utc))
    assert beat["update"]["state"] == "rolled_back"
    assert heartbeat.send(collector.url, collector.token(), beat)
    page = requests.get(f"{collector.url}/v1/fleet", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert "update rolled back" in page.text and "rolled_back 0.3.0 (from 0.2.0)" in page.text
