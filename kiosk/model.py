"""Plain data passed along the pipeline: Scan -> Credential -> Verdict.

Everything here is immutable and free of I/O so that checks and policy stay pure.
"""

from __future__ import annotations

import enum
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

__all__ = ["Outcome", "Reason", "Scan", "Credential", "Verdict", "iso_utc", "mask_name", "utcnow",
           "NAME_MAX", "check_venue_code", "char_at"]

#: Longest venue code or device id (the collector's database column is 64 characters).
NAME_MAX = 64
_NAME_PUNCT = "-_"


def char_at(ch: str, i: int) -> str:
    """How an error names a character: its code point and where it is."""
    return f"U+{ord(ch):04X} at {i}"


def check_venue_code(value: str) -> str:
    """`value` when it is a venue code the collector takes: letters (any script, NFC),
    digits, '-' and '_', starting with a letter or digit, at most NAME_MAX characters;
    else ValueError saying what is wrong. The kiosk checks its own at startup, the
    collector every one it is sent.

    >>> check_venue_code("BV-Bạch-Mai")
    'BV-Bạch-Mai'
    >>> check_venue_code("HOSPITAL\u200b-B")
    Traceback (most recent call last):
    ...
    ValueError: venue code may hold only letters, digits, '-' and '_' (found U+200B at 8)
    """
    if not value:
        raise ValueError("venue code is empty")
    if len(value) > NAME_MAX:
        raise ValueError(f"venue code is longer than {NAME_MAX} characters")
    if unicodedata.normalize("NFC", value) != value:
        raise ValueError("venue code must be in Unicode NFC form (composed letters)")
    for i, ch in enumerate(value):
        cat = unicodedata.category(ch)
        if not (cat.startswith("L") or cat == "Nd" or ch in _NAME_PUNCT):
            raise ValueError(f"venue code may hold only letters, digits, '-' and '_' (found {char_at(ch, i)})")
    if value[0] in _NAME_PUNCT:
        raise ValueError("venue code must start with a letter or a digit")
    return value


def utcnow() -> datetime:
    """The one place that reads the wall clock; everything else takes `now` as an argument."""
    return datetime.now(timezone.utc)


def iso_utc(ts: datetime, *, timespec: str = "milliseconds") -> str:
    """A time as the journal, sync state and trust data store it: UTC with a `Z`. The
    journal's fixed width (milliseconds) keeps its text comparisons in time order.

    >>> from datetime import timedelta
    >>> iso_utc(datetime(2026, 3, 1, 15, 30, tzinfo=timezone(timedelta(hours=7))))
    '2026-03-01T08:30:00.000Z'
    >>> iso_utc(datetime(2026, 3, 1, 8, 30, tzinfo=timezone.utc), timespec="seconds")
    '2026-03-01T08:30:00Z'
    """
    return ts.astimezone(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


class Outcome(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    REVIEW = "review"


class Reason(str, enum.Enum):
    """Stable reason codes (DESIGN.md). The screen maps each to a Vietnamese and English line."""

    # decode
    BAD_PREFIX = "bad_prefix"
    BAD_BASE45 = "bad_base45"
    BAD_COMPRESSION = "bad_compression"
    BAD_COSE = "bad_cose"
    BAD_CBOR = "bad_cbor"
    BAD_SCHEMA = "bad_schema"
    UNKNOWN_SCHEME = "unknown_scheme"
    # trust
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    KEY_USAGE = "key_usage"
    REVOKED = "revoked"
    # time
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    CLOCK_UNSYNCED = "clock_unsynced"
    #: a signed document the pass relies on (trust list, revocations, deny list) is past
    #: its valid-until and the grace period: the guard decides (kiosk.checks.freshness)
    DATA_EXPIRED = "data_expired"
    # policy
    NOT_VACCINATED = "not_vaccinated"
    VACCINATION_TOO_RECENT = "vaccination_too_recent"
    VACCINATION_TOO_OLD = "vaccination_too_old"
    TEST_TOO_OLD = "test_too_old"
    TEST_POSITIVE = "test_positive"
    RECOVERY_TOO_OLD = "recovery_too_old"
    DECLARATION_TOO_OLD = "declaration_too_old"
    SYMPTOMS = "symptoms"
    EXPOSURE = "exposure"
    TRAVEL = "travel"
    STATUS_RED = "status_red"
    IDENTITY_ONLY = "identity_only"
    DENIED = "denied"
    REPEAT_SCAN = "repeat_scan"
    # pass / guard
    OK = "ok"
    OVERRIDE = "override"
    # a technician's provisioning QR (never journalled)
    PROVISION_PENDING = "provision_pending"
    PROVISIONED = "provisioned"
    ENROL_FAILED = "enrol_failed"


#: Reasons that mean the credential was not verified (structure, signature, key, revoked):
#: such an entry carries no identity, on the kiosk and at the collector, so a forged
#: certificate cannot place the person it claims anywhere.
UNVERIFIED_REASONS = frozenset(r.value for r in (
    Reason.BAD_PREFIX, Reason.BAD_BASE45, Reason.BAD_COMPRESSION, Reason.BAD_COSE, Reason.BAD_CBOR,
    Reason.BAD_SCHEMA, Reason.UNKNOWN_SCHEME, Reason.UNKNOWN_KEY, Reason.BAD_SIGNATURE,
    Reason.KEY_USAGE, Reason.REVOKED))


def time_ordered_id(at: datetime) -> str:
    """A UUIDv7 (RFC 9562 section 5.7): 48 bits of Unix milliseconds, then 74 random bits.

    Entry ids in scan order land at the right edge of the journal's id index, so a
    commit rewrites one index page instead of a random one (SD wear, issue 21).

        >>> t = datetime(2026, 3, 2, tzinfo=timezone.utc)
        >>> a, b = time_ordered_id(t), time_ordered_id(t)
        >>> a[:13] == b[:13] == "019cabd8-3800", uuid.UUID(a).version, a != b
        (True, 7, True)
    """
    ms = max(0, int(at.timestamp() * 1000)) & ((1 << 48) - 1)
    rand = int.from_bytes(secrets.token_bytes(10), "big") >> 6  # 74 bits
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def time_of_id(entry_id: str) -> datetime | None:
    """The Unix-millisecond time a `time_ordered_id` carries, or None for any other string.

        >>> time_of_id(time_ordered_id(datetime(2026, 3, 2, tzinfo=timezone.utc)))
        datetime.datetime(2026, 3, 2, 0, 0, tzinfo=datetime.timezone.utc)
        >>> time_of_id(str(uuid.uuid4())) is None
        True
    """
    try:
        u = uuid.UUID(entry_id)
    except (ValueError, TypeError, AttributeError):
        return None
    if u.version != 7:
        return None
    try:
        return datetime.fromtimestamp((u.int >> 80) / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class Scan:
    """One code read by a source. The UUID is made here, at scan time, before anything is
    committed: the collector dedupes on it, so uploads are idempotent. It is time-ordered
    (`time_ordered_id`): unique on its own, and in scan order in the journal's index."""

    text: str
    source: str = "unknown"
    engine: str = "unknown"
    at: datetime = field(default_factory=utcnow)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", time_ordered_id(self.at))


@dataclass(frozen=True)
class Credential:
    """What a QR code claims, after parsing (and, where possible, verification).

    `subject_key` identifies the person for repeat-scan detection (hashed before it is
    stored); `personal` holds the fields needed for contact tracing.
    """

    scheme: str
    name: str | None = None
    subject_key: str | None = None
    issuer: str | None = None
    personal: Mapping[str, Any] = field(default_factory=dict)
    claims: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: Reason
    scheme: str = "unknown"
    name: str | None = None  # masked, for display
    detail: str = ""
    #: Which step (and payload member) failed: {"step", "member"?, "message"}; None on a pass.
    failure: Mapping[str, str] | None = None

    @property
    def admits(self) -> bool:
        """A person may walk in: the door relay opens for this verdict only. An accepted
        provisioning QR is green for the technician but opens nothing."""
        return self.outcome is Outcome.PASS and self.reason in (Reason.OK, Reason.OVERRIDE)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.outcome.value,
            "reason": self.reason.value,
            "scheme": self.scheme,
            "name": self.name,
            **({"detail": dict(self.failure)} if self.failure else
               # A fail decided outside the checks' steps (revoked, denied): named by its reason.
               {"detail": {"step": self.reason.value, "message": self.detail or self.reason.value}}
               if self.outcome is Outcome.FAIL else {}),
        }


def mask_name(name: str | None) -> str | None:
    """Mask a full name for the screen: family name whole, the rest by initial.

    >>> mask_name("Nguyễn Văn An")
    'Nguyễn V*** A'
    >>> mask_name("Nguyễn Bảo Duy")
    'Nguyễn B*** D'
    >>> mask_name("Trần Mai")
    'Trần M***'
    """
    if not name:
        return None
    parts = name.split()
    if len(parts) == 1:
        word = parts[0]
        return word[0] + "***" if len(word) > 1 else word
    if len(parts) == 2:
        # A one-word given name: its initial alone ("Trần M") would not look masked.
        return f"{parts[0]} {parts[1][0]}***"
    middle = [p[0] + "***" for p in parts[1:-1]]
    return " ".join([parts[0], *middle, parts[-1][0]])
