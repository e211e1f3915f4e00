"""What a scheme's `check()` returns, and the time checks shared by the signed schemes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kiosk.checks.cose import CheckFailed
from kiosk.model import Credential, Reason

__all__ = ["Checked", "check_times", "CLOCK_SKEW"]

#: A code issued seconds ago on a device whose clock runs a little ahead must not be
#: "not yet valid" here: tolerate this much difference on `iat`.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Checked:
    """A parsed credential (None if decoding failed) and the first failed step, if any."""

    credential: Credential | None
    failed: CheckFailed | None = None
    revocation_hashes: list[str] = field(default_factory=list)


def check_times(iat: datetime | None, exp: datetime | None, now: datetime) -> None:
    """CWT issued-at and expiry against `now`: raise not_yet_valid / expired."""
    if iat is not None and now + CLOCK_SKEW < iat:
        raise CheckFailed(Reason.NOT_YET_VALID, f"issued at {iat.isoformat()}")
    if exp is not None and now > exp:  # valid through the exp second itself (DK, ES cases)
        raise CheckFailed(Reason.EXPIRED, f"expired at {exp.isoformat()}")
