"""The workload the power-cut test runs under strace: a kiosk's scan path and its sync
side at once, on one state folder, as `kiosk run` and `kiosk sync` do.

- main thread: the real Pipeline checks and commits codes; after each verdict it
  writes `shown <entry id>` to the marker log (that is the moment the light goes on);
- sync thread, its own Journal on the same file: the real Uploader drains to the real
  collector in small batches, the real Fetcher pulls the signed documents (trust
  cursors, deny list, rules), and now and then the config is rewritten
  (`apply_settings`) and a provisioning marker remembered, as a provisioning QR does.

Usage: python powercut_flood.py '<json>' with keys dir, url, token, publisher_key, n, seed, marker.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from kiosk.config import load_config
from kiosk.journal import Journal
from kiosk.pipeline import Pipeline, open_journal
from kiosk.provision import apply_settings, remember_applied
from kiosk.sync import Uploader
from kiosk.sync.client import store_token
from kiosk.sync.fetcher import Fetcher

DEVICE = "kiosk-1"


def _codes(rng: random.Random, n: int) -> list[str]:
    codes: list[str] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.35:
            codes.append(f"0791900{i:05d}||Nguyễn Văn {i}|15041990|Nam|12 Lê Lợi, Quận 1|01072021")
        elif roll < 0.5 and codes:
            codes.append(rng.choice(codes))  # shown again: the earlier entry's light
        else:
            codes.append(f"HC1:NOT-A-REAL-{i}-{rng.getrandbits(48):x}")
    return codes


def main() -> int:
    a = json.loads(sys.argv[1])
    root = Path(a["dir"])
    cfg_path = root / "kiosk.toml"
    base = {"device.id": DEVICE, "venue.code": "V1", "device.state_dir": str(root),
            "sync.collector_url": a["url"], "sync.publisher_key": a["publisher_key"]}
    apply_settings(cfg_path, base)
    cfg = load_config(cfg_path)
    rng = random.Random(a["seed"])
    codes = _codes(rng, a["n"])
    done = threading.Event()
    failures: list[BaseException] = []

    with open_journal(cfg) as journal:
        store_token(journal, a["token"])
        pipeline = Pipeline(cfg, journal)

        def sync_side() -> None:
            try:
                with Journal(cfg.journal_path()) as sj:
                    rounds = 0
                    while True:
                        finished = done.is_set()
                        with Uploader(sj, url=a["url"], device_id=DEVICE, token=a["token"],
                                      batch_size=7, batch_max_age_s=0.0, base_backoff_s=0.01,
                                      max_backoff_s=0.05, max_attempts=50) as up:
                            up.drain()
                        if rounds % 4 == 0:
                            with Fetcher(sj, url=a["url"], token=a["token"],
                                         publisher_key=a["publisher_key"]) as f:
                                f.fetch_all()
                        if rounds % 6 == 0:
                            apply_settings(cfg_path, {"display.verdict_seconds": 2.0 + rounds % 5})
                            remember_applied(root / "provision.last", f"digest-{rounds}",
                                             datetime.now(timezone.utc))
                        rounds += 1
                        if finished and sj.pending_count() == 0:
                            return
                        done.wait(0.005)
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        syncer = threading.Thread(target=sync_side, name="sync")
        syncer.start()
        marks = os.open(a["marker"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for text in codes:
                event = pipeline.handle(text, source="camera", engine="flood")
                if event is not None and event.entry is not None:
                    os.write(marks, f"shown {event.entry.id}\n".encode())
        finally:
            os.close(marks)
            done.set()
            syncer.join()
    if failures:
        raise failures[0]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
