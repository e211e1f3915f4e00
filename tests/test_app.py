"""The run loop as a user sees it: the demo logs and signals, a kill loses nothing committed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kiosk import pipeline as pipeline_module
from kiosk.pipeline import Pipeline
from kiosk.config import load_config
from kiosk.journal import Journal

ROOT = Path(__file__).resolve().parent.parent
CCCD = "079201001234|025123456|Nguyễn Thị Hoa|15081990|Nữ|12 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh|01022022"


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "KIOSK_CONFIG")}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    return env


def demo_journal(tmp_path: Path) -> Path:
    from kiosk.demo.runner import checkout_key  # the demo's state is per checkout (issue 17)

    return tmp_path / "state" / "kiosk" / "demo" / checkout_key() / "journal.db"


@pytest.fixture
def pipeline(journal_path):
    cfg = load_config(None, search=False, overrides={"journal.path": str(journal_path)})
    with Journal(journal_path, repeat_window_s=300) as journal:
        yield Pipeline(cfg, journal)


def test_a_code_is_committed_before_the_event_exists(pipeline):
    event = pipeline.handle(CCCD, source="serial", engine="serial")
    assert event.entry.logged
    stored = pipeline.journal.get(event.entry.id)
    assert stored is not None and stored.outcome == event.verdict.outcome.value
    assert event.verdict.name == "Nguyễn T*** H"


def test_a_code_held_up_is_debounced_then_shown_as_a_repeat(pipeline, monkeypatch):
    first = pipeline.handle(CCCD, source="camera", engine="zxing")
    assert pipeline.handle(CCCD, source="camera", engine="zxing") is None  # same phone, next frame
    monkeypatch.setattr(pipeline_module, "DEBOUNCE_S", 0.0)
    again = pipeline.handle(CCCD, source="camera", engine="zxing")
    assert again.repeat and again.entry.id == first.entry.id
    assert again.verdict.outcome == first.verdict.outcome
    assert pipeline.journal.counts()["entries"] == 1


def test_a_wrong_clock_sends_everyone_to_review(pipeline):
    pipeline.clock = lambda: datetime(1970, 1, 1, 0, 5, tzinfo=timezone.utc)
    event = pipeline.handle("HD1:anything", source="camera", engine="zxing")
    assert event.verdict.outcome.value == "review"
    assert event.verdict.reason.value == "clock_unsynced"


def test_garbage_is_a_fail_verdict_not_a_crash(pipeline):
    event = pipeline.handle("HC1:not base45 at all!!", source="camera", engine="zxing")
    assert event.verdict.outcome.value == "fail"
    assert event.verdict.reason.value == "bad_base45"


def run_demo(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "demo", "--headless", "--json", *args],
                          capture_output=True, text=True, cwd=ROOT, env=demo_env(tmp_path), timeout=timeout)


def test_demo_headless_logs_every_kind_of_verdict(tmp_path):
    result = run_demo(tmp_path, "--fresh")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {e["verdict"] for e in events} == {"pass", "fail", "review"}
    # every demo code was read off its rendered frame and got the verdict it was made for
    from kiosk.demo.material import EXPECTED

    assert {e["label"]: (e["verdict"], e["reason"]) for e in events} == EXPECTED
    with Journal(demo_journal(tmp_path)) as journal:
        stored = {e.id for e in journal.entries()}
    assert {e["id"] for e in events if e["logged"]} <= stored
    assert len(stored) >= 6
    # ... and everything reached the local collector.
    assert "0 pending upload" in result.stdout
    from collector.storage import Store

    with Store(f"sqlite:///{demo_journal(tmp_path).parent / 'local-collector.db'}") as store:
        assert set(store.entry_ids()) == stored


def test_sigkill_mid_demo_loses_no_entry_anyone_saw(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "demo", "--headless", "--json", "--fresh",
                             "--interval", "0.4"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=ROOT, env=demo_env(tmp_path))
    seen: list[dict] = []
    deadline = time.monotonic() + 120
    while len(seen) < 3 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            seen.append(json.loads(line))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(seen) >= 3, "the demo printed too few verdicts before the kill"
    # Restart: the demo carries on with the same journal.
    result = run_demo(tmp_path)
    assert result.returncode == 0, result.stderr
    with Journal(demo_journal(tmp_path)) as journal:
        assert journal.integrity() == "ok"
        stored = {e.id for e in journal.entries()}
    assert [e["id"] for e in seen if e["id"] not in stored] == []
    from collector.storage import Store

    with Store(f"sqlite:///{demo_journal(tmp_path).parent / 'local-collector.db'}") as store:
        assert set(store.entry_ids()) == stored  # uploaded exactly once, nothing lost


def test_venue_repeat_rule_sees_scans_older_than_the_journal_window(journal_path, monkeypatch):
    """Transport venues fail a second ride within 30 minutes; the journal's own repeat
    window is only 5, so the pipeline must look back as far as the rule does."""
    from datetime import timedelta

    from kiosk.demo.material import demo_material
    from kiosk.checks.trust import TrustStore

    t = [datetime(2026, 11, 25, 7, 0, tzinfo=timezone.utc)]
    material = demo_material(t[0])
    passing = [text for label, text in material.payloads
               if material.expected[label][0] == "pass" and text.startswith("HD1:")][0]
    cfg = load_config(None, search=False, overrides={"journal.path": str(journal_path),
                                                     "venue.type": "transport"})
    monkeypatch.setattr(pipeline_module, "DEBOUNCE_S", 0.0)
    with Journal(journal_path, repeat_window_s=300) as journal:
        TrustStore(journal).import_list(material.trust_list_json, now=t[0])
        pipe = Pipeline(cfg, journal, clock=lambda: t[0])
        first = pipe.handle(passing, source="serial", engine="serial")
        t[0] += timedelta(minutes=12)
        second = pipe.handle(passing, source="serial", engine="serial")
        t[0] += timedelta(minutes=31)
        third = pipe.handle(passing, source="serial", engine="serial")
    assert (first.verdict.outcome.value, first.verdict.reason.value) == ("pass", "ok")
    assert second.entry.logged
    assert (second.verdict.outcome.value, second.verdict.reason.value) == ("fail", "repeat_scan")
    assert third.verdict.reason.value == "ok"


def test_rules_fetched_from_the_collector_replace_the_builtin_ones(pipeline):
    """A supermarket admits an ID card alone only once the province says so."""
    from kiosk.checks.rules import FETCHED_RULES_KEY

    before = pipeline.handle(CCCD, source="serial", engine="serial")
    assert before.verdict.outcome.value == "review"
    pipeline.journal.set_state(FETCHED_RULES_KEY, 'venue_type = "supermarket"\n[cccd]\nidentity = "pass"\n')
    pipeline.refresh_rules()
    other_card = CCCD.replace("079201001234", "079201009999")
    after = pipeline.handle(other_card, source="serial", engine="serial")
    assert (after.verdict.outcome.value, after.verdict.reason.value) == ("pass", "ok")
    # A broken document later keeps the rules that work.
    pipeline.journal.set_state(FETCHED_RULES_KEY, "[cccd]\nidentity = 'maybe'\n")
    pipeline.refresh_rules()
    assert pipeline.rules.cccd.identity == "pass"


def test_fetched_rules_that_no_longer_parse_fall_back_to_the_builtin_ones(journal_path):
    """An upgrade may tighten the rules schema: the kiosk must still start."""
    from kiosk.checks.rules import FETCHED_RULES_KEY

    cfg = load_config(None, search=False, overrides={"journal.path": str(journal_path)})
    with Journal(journal_path) as journal:
        journal.set_state(FETCHED_RULES_KEY, "[cccd]\nidentity = 'wave-through'\n")
        pipe = Pipeline(cfg, journal)
        assert pipe.rules.venue_type == "supermarket"
        assert pipe.handle(CCCD, source="serial", engine="serial").verdict.outcome.value == "review"


def test_a_broken_rules_file_in_the_config_stops_startup(journal_path, tmp_path):
    from kiosk.errors import ConfigError

    bad = tmp_path / "rules.toml"
    bad.write_text("[cccd]\nidentity = 'wave-through'\n", encoding="utf-8")
    cfg = load_config(None, search=False, overrides={"journal.path": str(journal_path), "rules.path": str(bad)})
    with Journal(journal_path) as journal, pytest.raises(ConfigError, match="cccd.identity"):
        Pipeline(cfg, journal)
