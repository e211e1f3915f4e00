"""Upload the journal to the collector exactly once, and fetch trust data from it.

Runs as its own process (`kiosk sync`), sharing the journal file with the run loop.

- `Uploader(journal, url=..., device_id=..., token=...).drain()`: send the outbox.
- `Fetcher(journal, url=..., token=..., publisher_key=...).fetch_all()`: the signed
  documents (trust list, rules, deny list, revocations ...), only if the pinned
  publisher key signed them.
- `status(journal, now) -> SyncStatus`: what the screen shows (`.offline`).
- `enrol(url, device_id, code, timeout=...) -> token`: one-time code to device token.
"""

from kiosk.sync.client import enrol, resolve_token, store_token
from kiosk.sync.fetcher import Fetcher
from kiosk.sync.state import SyncStatus, status
from kiosk.sync.uploader import DrainResult, Uploader, next_backoff

__all__ = ["Uploader", "Fetcher", "DrainResult", "SyncStatus", "status", "enrol",
           "resolve_token", "store_token", "next_backoff"]
