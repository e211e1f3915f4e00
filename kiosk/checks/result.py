"""What a scheme's `check()` returns, and the time checks shared by the signed schemes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kiosk.checks.cose import CheckFailed
from kiosk.model import Credential, Reason

__all__ = ["Checked", "StepFailed", "failure_detail", "check_times", "signer_keys", "CLOCK_SKEW", "STEPS"]

#: A code issued seconds ago on a device whose clock runs a little ahead must not be
#: "not yet valid" here: tolerate this much difference on `iat`.
CLOCK_SKEW = timedelta(minutes=5)


#: The step each reason code fails in, for a failure that does not name its own.
STEPS = {
    Reason.BAD_PREFIX: "prefix", Reason.BAD_BASE45: "base45", Reason.BAD_COMPRESSION: "zlib",
    Reason.BAD_COSE: "cose", Reason.BAD_CBOR: "cbor", Reason.BAD_SCHEMA: "schema",
    Reason.UNKNOWN_KEY: "signer", Reason.BAD_SIGNATURE: "signature", Reason.KEY_USAGE: "key_usage",
    Reason.EXPIRED: "validity", Reason.NOT_YET_VALID: "validity",
}


class StepFailed(CheckFailed):
    """A failed step that names itself and, where there is one, the payload member that
    failed (`t[0].tr`): what `kiosk check --json` shows as `detail`."""

    def __init__(self, reason: Reason, detail: str = "", *, step: str, member: str | None = None) -> None:
        super().__init__(reason, f"{member}: {detail}" if member else detail)
        self.step = step
        self.member = member
        self.message = detail


def failure_detail(failed: CheckFailed) -> dict[str, str]:
    """{"step", "member" (when known), "message"} for a failed check.

    >>> failure_detail(StepFailed(Reason.BAD_SCHEMA, "not in the value set", step="valuesets", member="t[0].tr"))
    {'step': 'valuesets', 'member': 't[0].tr', 'message': 'not in the value set'}
    >>> failure_detail(CheckFailed(Reason.BAD_SIGNATURE, "signature does not verify"))
    {'step': 'signature', 'message': 'signature does not verify'}
    """
    step = getattr(failed, "step", None) or STEPS.get(failed.reason, failed.reason.value)
    member = getattr(failed, "member", None)
    message = getattr(failed, "message", failed.detail)
    return {"step": step, **({"member": member} if member else {}), "message": message}


@dataclass(frozen=True)
class Checked:
    """A parsed credential (None if decoding failed) and the first failed step, if any
    (`detail()` says which step and which member)."""

    credential: Credential | None
    failed: CheckFailed | None = None
    revocation_hashes: list[str] = field(default_factory=list)

    def detail(self) -> dict[str, str] | None:
        return failure_detail(self.failed) if self.failed is not None else None


def check_times(iat: datetime | None, exp: datetime | None, now: datetime) -> None:
    """CWT issued-at and expiry against `now`: raise not_yet_valid / expired."""
    if iat is not None and now + CLOCK_SKEW < iat:
        raise CheckFailed(Reason.NOT_YET_VALID, f"issued at {iat.isoformat()}")
    if exp is not None and now > exp:  # valid through the exp second itself (DK, ES cases)
        raise CheckFailed(Reason.EXPIRED, f"expired at {exp.isoformat()}")


def signer_keys(kid: bytes | None, trust: Any, kind: str, other: str) -> list[Any]:
    """The trusted keys of `kind` for a COSE kid, or the failed step: unknown_key when
    the kid is missing or not in the trust list, key_usage when it belongs to `other`
    (a DCC signer's kid on a declaration, or the reverse)."""
    if kid is None:
        raise CheckFailed(Reason.UNKNOWN_KEY, "no kid in the COSE headers")
    keys = trust.keys_for(kid) if trust is not None else []
    if not keys:
        raise CheckFailed(Reason.UNKNOWN_KEY, f"kid {kid.hex()} not in the trust list")
    chosen = [k for k in keys if k.kind == kind]
    if not chosen:
        raise CheckFailed(Reason.KEY_USAGE, f"kid belongs to {other}")
    return chosen
