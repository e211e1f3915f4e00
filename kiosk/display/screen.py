"""What one screen shows: `ScreenState`, the kinds of screen, and the sizes supported.

This is the contract between the run loop and the screen: `kiosk.display.layouts` draws a
state, `kiosk.display.backends` shows it (a pygame window, or a headless recorder).
Nothing here imports pygame.

    >>> state = ScreenState("fail", venue_name="Siêu thị A", name="Nguyễn V*** A",
    ...                     reason=Reason.EXPIRED)
    >>> state.kind, state.reason.value
    ('fail', 'expired')
    >>> ScreenState("idle", faults=("offline", "disk_full")).faults   # most severe first
    ('disk_full', 'offline')
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from kiosk.errors import ConfigError, KioskError
from kiosk.model import Reason, Verdict

__all__ = [
    "BLOCKING_FAULTS",
    "BadScreenState",
    "DEFAULT_SIZE",
    "FAULT_KINDS",
    "KINDS",
    "PreviewShape",
    "SIZES",
    "ScreenState",
    "VERDICT_KINDS",
    "parse_size",
    "safe_name",
    "shown_kind",
]

VERDICT_KINDS = ("pass", "fail", "review")
#: Most severe first: the banner lists them in this order.
FAULT_KINDS = ("disk_full", "journal_fault", "camera_fault", "scanner_fault", "clock_unsynced",
               "collector_untrusted", "uploads_refused", "trust_stale", "offline")
KINDS = ("idle", "scanning", *VERDICT_KINDS, *FAULT_KINDS)
#: Faults that stop checking: an idle screen shows the fault instead of "scan here".
BLOCKING_FAULTS = frozenset({"disk_full", "journal_fault", "camera_fault", "scanner_fault"})
SIZES = ((800, 480), (1024, 600), (1920, 1080))
DEFAULT_SIZE = (800, 480)
#: An ID number is never shown: digit runs this long are masked out of names.
ID_DIGITS = 4


class BadScreenState(KioskError, ValueError):
    """A ScreenState with an unknown kind or fault."""


@dataclass(frozen=True)
class PreviewShape:
    """What a recorded state keeps of a camera frame: its shape and pixel type, never
    the pixels (a headless kiosk records every state it shows)."""

    shape: tuple[int, ...]
    dtype: str

    @classmethod
    def of(cls, frame: Any) -> "PreviewShape":
        """`PreviewShape.of(np.zeros((720, 1280), np.uint8))` -> `PreviewShape((720, 1280), 'uint8')`."""
        if isinstance(frame, PreviewShape):
            return frame
        return cls(tuple(int(n) for n in getattr(frame, "shape", ())), str(getattr(frame, "dtype", type(frame).__name__)))


@dataclass(frozen=True)
class ScreenState:
    """Everything one screen shows. Build a new one for each change; it is immutable.

    `faults` are shown as a banner on any screen; `preview` (a greyscale numpy frame)
    is drawn under a target box on the scanning screen. `name` must already be masked
    (`kiosk.model.mask_name`); digit runs are masked again here, so an ID number never
    reaches the screen.
    """

    kind: str
    venue_name: str = ""
    checkin_url: str = ""
    today_count: int = 0
    name: str | None = None
    reason: Reason | None = None
    pending_uploads: int = 0
    faults: tuple[str, ...] = ()
    preview: Any = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BadScreenState(f"unknown screen kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        faults = tuple(self.faults)
        unknown = [f for f in faults if f not in FAULT_KINDS]
        if unknown:
            raise BadScreenState(f"unknown fault {unknown[0]!r}; expected one of {', '.join(FAULT_KINDS)}")
        # Sorted by severity and unique, so equal situations compare equal.
        object.__setattr__(self, "faults", tuple(k for k in FAULT_KINDS if k in faults))
        if self.reason is not None and not isinstance(self.reason, Reason):
            object.__setattr__(self, "reason", Reason(self.reason))

    @classmethod
    def from_verdict(cls, verdict: Verdict, **common: Any) -> "ScreenState":
        """The pass/fail/review screen for a verdict: `ScreenState.from_verdict(v, venue_name=...)`."""
        return cls(kind=verdict.outcome.value, name=verdict.name, reason=verdict.reason, **common)


    @property
    def frame(self) -> Any:
        """The preview frame to draw, or None (none given, or only its shape was kept)."""
        return None if isinstance(self.preview, PreviewShape) else self.preview

    def without_frame(self) -> "ScreenState":
        """This state with its preview frame replaced by the frame's `PreviewShape`."""
        if self.preview is None or isinstance(self.preview, PreviewShape):
            return self
        return dataclasses.replace(self, preview=PreviewShape.of(self.preview))


def parse_size(text: str) -> tuple[int, int]:
    """`"800x480"` -> `(800, 480)`."""
    m = re.fullmatch(r"\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*", text or "")
    if not m:
        raise ConfigError(f"screen size {text!r}: expected WIDTHxHEIGHT, e.g. 800x480")
    return int(m.group(1)), int(m.group(2))


def safe_name(name: str | None) -> str | None:
    """The masked name as shown: NFC letters, and any run of digits masked.

    >>> safe_name("Nguyễn V*** A 012345678901")
    'Nguyễn V*** A ***'
    """
    if not name:
        return None
    text = unicodedata.normalize("NFC", name)
    return re.sub(r"\d{%d,}" % ID_DIGITS, "***", text).strip() or None


def shown_kind(state: ScreenState) -> str:
    """What the screen really shows: an idle screen with a fault that stops checking
    shows that fault instead of inviting people to scan."""
    if state.kind == "idle":
        for kind in state.faults:  # already most severe first
            if kind in BLOCKING_FAULTS:
                return kind
    return state.kind


