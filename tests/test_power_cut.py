"""1,000 power cuts during a flood of scans and uploads (issue 21).

The real kiosk code (Pipeline + Journal on the scan side; Uploader, Fetcher, config
writes and the provisioning marker on the sync side) runs under strace; `powercut`
rebuilds the SD card as it would be after a cut at 1,000 random write points, dropping
every write not yet fsynced. After each cut:

- every entry whose light was shown before the cut is in the journal;
- `PRAGMA integrity_check` is ok;
- the kiosk restarts on that card and uploads what it still holds to the real collector,
  which already has every entry of the flood: nothing it sends is new (no entry is
  uploaded twice under another identity, none the collector holds was lost and
  recreated), and the outbox empties;
- the config, the provisioning marker and every other state file are whole: never torn,
  never empty, never gone once they were there.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from collector_helpers import DEVICE, PUBLISHER_KEY, RunningCollector, open_store, publish_raw
from kiosk.config import load_config
from kiosk.journal import Journal
from kiosk.sync import Uploader
from powercut import CutModel, record

HERE = Path(__file__).parent
SCANS = 260
CUTS = 1000

pytestmark = pytest.mark.skipif(shutil.which("strace") is None and os.environ.get("CI") != "true",
                                reason="strace not installed (scripts/setup.sh --dev installs it)")


def _publish_documents(store) -> None:
    from datetime import datetime, timedelta, timezone

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from kiosk.checks.denylist import MIN_N, make_denylist
    from kiosk.checks.trust import trust_entry

    now = datetime.now(timezone.utc) - timedelta(minutes=1)
    der = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    publish_raw(store, "trust", json.dumps([trust_entry(b"\x01" * 8, "HD1", der)]).encode(), now=now)
    publish_raw(store, "rules", b'venue_type = "hospital"\n', content_type="application/toml", now=now)
    publish_raw(store, "denylist", make_denylist(["cccd:079190000001"], n=MIN_N), now=now)


@pytest.fixture(scope="module")
def flood(tmp_path_factory):
    base = tmp_path_factory.mktemp("powercut")
    root, marker = base / "state", base / "shown.log"
    root.mkdir()
    store = open_store("sqlite", base)
    _publish_documents(store)
    with RunningCollector(store) as collector:
        token = collector.token(DEVICE, venue="V1")
        args = {"dir": str(root), "url": collector.url, "token": token, "publisher_key": PUBLISHER_KEY,
                "n": SCANS, "seed": 21, "marker": str(marker)}
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
        ops = record([sys.executable, str(HERE / "powercut_flood.py"), json.dumps(args)], root,
                     marker=marker, log=base / "strace.log", env=env)
        (base / "strace.log").unlink()
        yield CutModel(ops, root), collector, token, base
    store.close()


def _ids_in(journal_file: Path) -> set[str]:
    with sqlite3.connect(journal_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name='entries'").fetchone():
            return set()  # cut while the first open was still creating the tables
        return {r[0] for r in conn.execute("SELECT id FROM entries")}


def test_a_thousand_power_cuts_lose_nothing_shown_and_tear_nothing(flood):
    model, collector, token, base = flood
    total = collector.store.count_entries()
    shown_all = {m.split()[1].decode() for m in model.marks_before(10**12)}
    assert len(shown_all) > SCANS // 2 and total >= len(shown_all)
    rng = random.Random(7)
    points = model.write_points()
    assert len(points) > CUTS, f"only {len(points)} write points: a bigger flood is needed"
    cuts = sorted(rng.sample(points, CUTS))
    card = base / "card"
    problems: list[str] = []
    seen_files: set[str] = set()
    resumed = sent = 0
    for n, cut in enumerate(cuts):
        # Half the cuts keep only what was fsynced; the others also keep a few later
        # names (renames, creations), as a journalling filesystem may.
        kept = model.image(cut, card, extra_names=0 if n % 2 == 0 else rng.randint(1, 4))
        where = f"cut {n} (trace line {cut})"
        for rel in seen_files - set(kept):
            problems.append(f"{where}: {rel} was on the card before and is gone")
        seen_files |= {rel for rel in kept if not rel.endswith(".tmp") and not rel.startswith("journal.db")}
        for rel in kept:
            path = card / rel
            if rel.endswith(".tmp") or rel.startswith("journal.db"):
                continue
            if path.stat().st_size == 0:
                problems.append(f"{where}: {rel} is empty")
            elif rel == "kiosk.toml":
                try:
                    load_config(path)
                except Exception as exc:  # noqa: BLE001 - any failure is the finding
                    problems.append(f"{where}: kiosk.toml torn: {exc}")
            elif rel == "provision.last":
                try:
                    assert json.loads(path.read_text())["digest"]
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{where}: provision.last torn: {exc!r}")
        shown = {m.split()[1].decode() for m in model.marks_before(cut)}
        if "journal.db" not in kept:
            if shown:
                problems.append(f"{where}: no journal on the card after {len(shown)} lights")
            continue
        try:
            ids = _ids_in(card / "journal.db")
        except (AssertionError, sqlite3.DatabaseError) as exc:
            problems.append(f"{where}: journal unreadable or not intact: {exc!r}")
            continue
        lost = shown - ids
        if lost:
            problems.append(f"{where}: {len(lost)} shown entries missing, e.g. {sorted(lost)[0]}")
        # The kiosk comes back on this card and uploads what it still has.
        with Journal(card / "journal.db") as journal:
            with Uploader(journal, url=collector.url, device_id=DEVICE, token=token, batch_size=500,
                          base_backoff_s=0.01, max_backoff_s=0.05) as up:
                result = up.drain()
            resumed += 1
            sent += result.sent
            if result.accepted:
                problems.append(f"{where}: {result.accepted} entries were new to the collector after the cut")
            if not result.complete or journal.pending_count():
                problems.append(f"{where}: outbox did not empty after the restart: {result.error}")
        if collector.store.count_entries() != total:
            problems.append(f"{where}: the collector now holds {collector.store.count_entries()} entries, not {total}")
            total = collector.store.count_entries()
        if len(problems) > 20:
            break
    assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:20])
    assert resumed > CUTS * 0.9 and sent > 0  # the restarts really had entries to resend
