"""Enrolment and the device token.

`enrol()` trades a one-time code (from `collector enrol-code --device ID`) for a device
token. The token the uploader uses is `sync.device_token` from the config if set, else
the one enrolment stored in the journal (state key `sync.token`): config wins.
"""

from __future__ import annotations

from typing import Any

import requests

from kiosk.errors import SyncError
from kiosk.sync.state import TOKEN_KEY

__all__ = ["enrol", "resolve_token", "store_token", "ENROL_TIMEOUT_S", "DEVICES_PATH"]

ENROL_TIMEOUT_S = 10.0
DEVICES_PATH = "/v1/devices"


class EnrolledToken(str):
    """A device token, with the venue the collector bound the device to (`venue`: None
    from a collector that does not say). The kiosk logs for that venue and no other."""

    venue: str | None = None

    def __new__(cls, token: str, venue: str | None = None) -> "EnrolledToken":
        self = super().__new__(cls, token)
        self.venue = venue
        return self


def enrol(url: str, device_id: str, code: str, *, timeout: float = ENROL_TIMEOUT_S,
          session: requests.Session | None = None, verify: str | None = None) -> EnrolledToken:
    """Register `device_id` with the collector at `url` using a one-time `code`; return
    the device token (with `.venue`, the venue it is bound to). Raises SyncError with the
    collector's reason when it refuses.

    Example: token = enrol("http://127.0.0.1:8470", "kiosk-01", "N66MFBNR2U")
    """
    http = session or requests
    endpoint = url.rstrip("/") + DEVICES_PATH
    try:
        resp = http.post(endpoint, json={"device_id": device_id, "code": code.strip()}, timeout=timeout,
                         verify=verify)  # `verify`: the collector's CA file (sync.ca_file)
    except requests.RequestException as exc:
        raise SyncError(f"cannot reach the collector at {url}: {exc}") from exc
    if resp.status_code != 200:
        try:
            detail = resp.json().get("detail")
        except (ValueError, AttributeError):
            detail = resp.text[:200]
        raise SyncError(f"enrolment refused by {url} ({resp.status_code}): {detail}")
    try:
        token = resp.json()["token"]
    except (ValueError, KeyError, TypeError):
        raise SyncError(f"{url} answered enrolment without a token") from None
    if not isinstance(token, str) or not token:
        raise SyncError(f"{url} answered enrolment without a token")
    venue = resp.json().get("venue_code")
    return EnrolledToken(token, venue if isinstance(venue, str) and venue else None)


#: Journal state: SHA-256 of the token a rotated one replaced. A configured
#: `sync.device_token` with this hash has been rotated out: the journal's token wins.
REPLACED_KEY = "sync.token_replaces"


def _digest(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def store_token(journal: Any, token: str, *, replaces: str | None = None) -> None:
    """Keep an enrolled (or rotated) token in the journal (file mode 0600) for `kiosk sync`."""
    from kiosk.sync.state import ENROLLED_VENUE_KEY

    with journal.atomic():
        journal.set_state(TOKEN_KEY, token)
        if replaces:
            journal.set_state(REPLACED_KEY, _digest(replaces))
        venue = getattr(token, "venue", None)
        if venue:
            journal.set_state(ENROLLED_VENUE_KEY, venue)


def resolve_token(cfg: Any, journal: Any) -> str:
    """The device token to use: config `sync.device_token` wins over the enrolled one,
    unless the collector has since rotated it (then the journal holds its successor)."""
    configured = cfg.sync.device_token
    text = configured.reveal() if hasattr(configured, "reveal") else str(configured or "")
    stored = journal.get_state(TOKEN_KEY) or ""
    if text and not (stored and journal.get_state(REPLACED_KEY) == _digest(text)):
        return text
    return stored
