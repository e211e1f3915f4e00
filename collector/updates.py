"""Software updates for the fleet (issue 24): publish a kiosk wheel as a signed offer.

`collector update WHEEL --percent 10 --venue BV-01` keeps the wheel (by its SHA-256) and
publishes the `update` document, signed like every other document kiosks take in (same
key, version + 1, valid-until; kiosk.update describes the offer). Kiosks fetch it with
their sync, judge it (rollout, newer than theirs, not failed before) and download the
wheel from `GET /v1/update/files/<sha256>` with their device token; the kiosk checks
the SHA-256 against the signed offer, so the file route needs no signature of its own.

Raising the percentage later publishes the same wheel again with a wider rollout: kiosks
already in keep their place (kiosk.update.bucket).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable, Sequence

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Response

from kiosk.update import MAX_WHEEL_BYTES, WHEEL_RE, Offer, parse_offer, version_key, wheel_version

__all__ = ["publish_update", "install", "current_offer"]


def current_offer(store: Any) -> Offer | None:
    from kiosk.checks.signed import SignedDocError, peek

    held = store.document("update")
    if held is None:
        return None
    try:
        return parse_offer(peek(held.body).body)
    except (SignedDocError, ValueError):
        return None


def publish_update(store: Any, wheel: str | Path, *, key: Any, now: datetime, percent: int = 100,
                   venues: Sequence[str] = (), devices: Sequence[str] = (), allow_downgrade: bool = False):
    """Keep the wheel and publish the signed offer for it. ValueError when the file is
    not a kiosk wheel or is older than the version on offer (kiosks refuse downgrades
    anyway; --allow-downgrade publishes it so the fleet shows them refusing)."""
    from collector.publish import publish

    path = Path(wheel)
    match = WHEEL_RE.fullmatch(path.name)
    if not match:
        raise ValueError(f"{path.name}: expected kiosk-<version>-py3-none-any.whl (python -m pip wheel .)")
    data = path.read_bytes()
    if len(data) > MAX_WHEEL_BYTES:
        raise ValueError(f"{path.name}: larger than {MAX_WHEEL_BYTES} bytes")
    version = match.group(1)
    inside = wheel_version(data)
    if inside != version:
        raise ValueError(f"{path.name}: its METADATA says version {inside}")
    if not 0 <= percent <= 100:
        raise ValueError("--percent must be 0..100")
    held = current_offer(store)
    if held is not None and version_key(version) < version_key(held.version) and not allow_downgrade:
        raise ValueError(f"{version} is older than {held.version} on offer; kiosks refuse downgrades")
    digest = store.add_update_file(path.name, data, now=now)
    offer = Offer(version, path.name, digest, len(data), percent, tuple(venues), tuple(devices))
    body = json.dumps(offer.as_dict(), sort_keys=True).encode()
    return publish(store, "update", body, key=key, now=now), offer


def install(app: FastAPI, *, store: Any, device: Callable[..., str]) -> None:
    @app.get("/v1/update/files/{sha256}", tags=["devices"],
             responses={404: {"description": "no such update file"}})
    def get_update_file(sha256: Annotated[str, PathParam(pattern="^[0-9a-f]{64}$")],
                        device_id: str = Depends(device)) -> Response:
        """A published kiosk wheel by its SHA-256 (the signed `update` offer names it)."""
        body = store.update_file(sha256)
        if body is None:
            raise HTTPException(404, f"no update file {sha256[:12]}...")
        return Response(body, media_type="application/octet-stream",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})
