"""`kiosk sync`: the upload and fetch loop, its own process beside the run loop.

`run_forever` uploads every `sync.interval_s` and fetches every `sync.trust_refresh_s`
until `stop` is set (SIGTERM): the request in flight finishes, nothing new starts.
`run_once` uploads everything pending and reports what is left.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Callable

from kiosk.errors import KioskError
from kiosk.sync.fetcher import Fetcher
from kiosk.sync.uploader import DrainResult, Uploader

__all__ = ["run_forever", "run_once", "OnceSummary"]

log = logging.getLogger("kiosk.sync")


@dataclass(frozen=True)
class OnceSummary:
    upload: DrainResult
    fetch: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.upload.complete

    def lines(self) -> list[str]:
        u = self.upload
        out = [f"uploaded {u.sent} entries in {u.batches} batches "
               f"({u.accepted} new at the collector, {u.duplicates} already there), "
               f"{u.attempts} requests; {u.left} left"]
        if u.error:
            out.append(f"error: {u.error}")
        if u.stopped:
            out.append("stopped before the end")
        for name, result in self.fetch.items():
            out.append(f"{name}: {result}")
        return out


#: A heartbeat goes with a sync round, but not more often than this.
HEARTBEAT_EVERY_S = 60.0


def run_once(uploader: Uploader, fetcher: Fetcher | None = None,
             heartbeat: Callable[[], object] | None = None) -> OnceSummary:
    fetched = fetcher.fetch_all() if fetcher is not None else {}
    upload = uploader.drain(force=True)
    _share_token(uploader, fetcher)
    if heartbeat is not None:
        heartbeat()
    return OnceSummary(upload, fetched)


def _share_token(uploader: Uploader, fetcher: Fetcher | None) -> None:
    # A batch answer may carry a rotated token; the fetcher must use it too, since the
    # old one stops working once the new one has been used.
    if fetcher is not None:
        fetcher.token = uploader.token


def run_forever(uploader: Uploader, fetcher: Fetcher | None, *, stop: threading.Event,
                interval_s: float, trust_refresh_s: float,
                monotonic: Callable[[], float] = time.monotonic,
                heartbeat: Callable[[], object] | None = None) -> None:
    """Loop until `stop` is set. A round's failure is logged and retried next round;
    the loop itself never dies on a network or collector error. `heartbeat` is called
    after a round, at most every HEARTBEAT_EVERY_S."""
    next_fetch = monotonic()
    next_beat = monotonic()
    while not stop.is_set():
        try:
            if fetcher is not None and monotonic() >= next_fetch:
                fetcher.fetch_all()
                next_fetch = monotonic() + trust_refresh_s
            if stop.is_set():
                break
            result = uploader.drain(force=False)
            _share_token(uploader, fetcher)
            if heartbeat is not None and monotonic() >= next_beat:
                heartbeat()
                next_beat = monotonic() + HEARTBEAT_EVERY_S
        except (KioskError, sqlite3.Error) as exc:
            # The journal is busy, full or broken: say so and try again next round rather
            # than die; systemd's restart would only land in the same state.
            log.error("sync round failed: %s", exc)
            stop.wait(interval_s)
            continue
        if result.error:
            log.warning("upload round ended early: %s (%d left)", result.error, result.left)
        # A full batch still waiting goes at once; otherwise wait for the next round.
        if result.error is None and result.batches and uploader.due(uploader.clock()):
            continue
        stop.wait(interval_s)
