"""Issue 23 item 2: a kiosk enrolled for a venue logs for that venue, and a kiosk whose
entries the collector refuses shows as failing, on its own screen and on the report.

Against the real collector (uvicorn on loopback) and the real `kiosk enrol` command."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from collector import report
from collector.report_page import render as render_report
from collector_helpers import DEVICE, fill_journal, sqlite_collector  # noqa: F401 (fixture)
from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.journal import Journal
from kiosk.pipeline import Pipeline
from kiosk.sync import Uploader
from kiosk.sync.state import ENROLLED_VENUE_KEY

ROOT = Path(__file__).resolve().parent.parent


def _kiosk(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("KIOSK_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *argv], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)




def test_enrolment_sets_the_venue_the_collector_bound_the_kiosk_to(tmp_path, collector):
    config = tmp_path / "kiosk.toml"
    journal = tmp_path / "journal.db"
    config.write_text(f'[device]\nid = "{DEVICE}"\n[venue]\ncode = "OLD-VENUE"\n[journal]\npath = "{journal}"\n'
                      f'[sync]\ncollector_url = "{collector.url}"\n', encoding="utf-8")
    code = collector.store.create_enrol_code(DEVICE, venue="BV-CHORAY", now=datetime.now(timezone.utc))
    done = _kiosk(tmp_path, "--config", str(config), "enrol", "--code", code)
    assert done.returncode == 0, done.stderr
    assert "venue.code set to BV-CHORAY" in done.stdout
    cfg = load_config(config)
    assert cfg.venue.code == "BV-CHORAY"
    with Journal(journal) as j:
        assert j.get_state(ENROLLED_VENUE_KEY) == "BV-CHORAY"
        Pipeline(cfg, j)  # starts: the venue is the enrolled one
        # Someone sets the old venue back by hand: the kiosk refuses to start, and says why.
        wrong = load_config(config, overrides={"venue.code": "OLD-VENUE"})
        with pytest.raises(ConfigError, match="enrolled .* for 'BV-CHORAY'.*venue.code"):
            Pipeline(wrong, j)


def test_enrolment_without_a_config_file_to_change_refuses(tmp_path, collector):
    code = collector.store.create_enrol_code(DEVICE, venue="BV-CHORAY", now=datetime.now(timezone.utc))
    done = _kiosk(tmp_path, "--set", f"journal.path={tmp_path / 'j.db'}", "--set", f"device.id={DEVICE}",
                  "--set", f"sync.collector_url={collector.url}", "enrol", "--code", code)
    assert done.returncode == 1 and "kiosk config set venue.code BV-CHORAY" in done.stderr


def test_refused_entries_show_the_kiosk_failing_on_its_screen_and_on_the_report(tmp_path, collector):
    from kiosk.appliance import _status_faults
    from kiosk.checks.trust import TrustStore
    from kiosk.display.layouts import render_state
    from kiosk.display.screen import ScreenState

    now = datetime.now(timezone.utc)
    token = collector.token(DEVICE, venue="V1", since=now - timedelta(days=1))
    with Journal(tmp_path / "journal.db") as j:
        fill_journal(j, 12, venue="V2", start=now - timedelta(minutes=30), step=timedelta(seconds=30))
        with Uploader(j, url=collector.url, device_id=DEVICE, token=token, base_backoff_s=0.01) as up:
            result = up.drain()
        assert result.sent == 0 and j.pending_count() == 12
        cfg = load_config(None, search=False, overrides={"journal.path": str(tmp_path / "journal.db")})
        faults = _status_faults(cfg, j, TrustStore(j), now)
    assert "uploads_refused" in faults
    # The screen says it, in both languages, with the count.
    shot = tmp_path / "refused.png"
    import pygame

    surface = render_state(ScreenState("idle", faults=tuple(faults), pending_uploads=12))
    pygame.image.save(surface, str(shot))
    from kiosk.display.texts import fault_text

    title, detail = fault_text("uploads_refused", pending=12)
    assert "từ\u00a0chối" in title.vi and "12" in detail.en
    # The report: the kiosk is failing, not "uploading normally".
    later = datetime.now(timezone.utc)
    rep = report.collect(collector.store, later.astimezone(timezone(timedelta(hours=7))).date(), now=later)
    [kiosk] = [k for k in rep.kiosks if k.device_id == DEVICE]
    assert kiosk.refused and "V2" in kiosk.refusal
    page = render_report(rep)
    assert "uploads refused" in page and "0 / 1 thiết bị gửi dữ liệu bình thường" in page
