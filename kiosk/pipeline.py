"""The pipeline: text -> verdict -> journal. No threads, no hardware, no screen.

`Pipeline.handle()` takes one decoded text, runs the checks against the trust list and
the venue's rules, commits the entry to the journal and returns the committed `Event`.
The appliance (kiosk.appliance) feeds it from its scanner thread and signals what it
returns; tests and benchmarks drive it directly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from kiosk.config import Config
from kiosk.errors import ConfigError
from kiosk.journal import Entry, Journal
from kiosk.model import Outcome, Reason, Scan, Verdict, utcnow

__all__ = ["Event", "Pipeline", "clock_plausible", "open_journal", "provisioning_event", "DEBOUNCE_S",
           "PROVISION_PREFIX"]

log = logging.getLogger("kiosk")

#: The same text seen again within this many seconds is the same person still holding
#: the phone up to the camera: ignored without a new verdict.
DEBOUNCE_S = 4.0
#: A clock before this is a Pi that booted without network or RTC: every expiry check
#: would be wrong, so verdicts go to review with `clock_unsynced`.
EARLIEST_PLAUSIBLE = datetime(2025, 1, 1, tzinfo=timezone.utc)
PROVISION_PREFIX = "KP1:"
#: The scheme a provisioning QR's verdict shows.
PROVISION_SCHEME = "provision"


def clock_plausible(now: datetime) -> bool:
    return now >= EARLIEST_PLAUSIBLE


@dataclass(frozen=True)
class Event:
    """A committed verdict, ready to be signalled. `entry` is None only for a
    technician's provisioning code, which is not a person's entry."""

    scan: Scan
    verdict: Verdict
    entry: Entry | None
    #: A provisioning QR that verified and still has to be applied (with its enrolment,
    #: over the network): `Pipeline.apply_provisioning(scan)` does that, beside the gate.
    provisioning: bool = False

    @property
    def repeat(self) -> bool:
        return self.entry is not None and not self.entry.logged


def check_enrolled_venue(cfg: Config, journal: Journal) -> None:
    """Refuse to start logging for another venue than the one the collector enrolled this
    kiosk for: every such entry would be refused there and stay on the card (issue 23
    item 2). ConfigError names the setting and the way out."""
    from kiosk.sync.state import ENROLLED_VENUE_KEY

    enrolled = journal.get_state(ENROLLED_VENUE_KEY)
    if enrolled and enrolled != cfg.venue.code:
        raise ConfigError(f"{cfg.source}: venue.code = {cfg.venue.code!r}, but the collector enrolled "
                          f"{cfg.device.id} for {enrolled!r}: every entry would be refused there. Set "
                          f"venue.code (kiosk config set venue.code {enrolled}) or enrol again for this venue")


class Pipeline:
    """Text in, committed Event out. No threads, no hardware: the part tests drive directly."""

    def __init__(self, cfg: Config, journal: Journal, *, clock: Callable[[], datetime] = utcnow,
                 rules: Any = None, trust: Any = None) -> None:
        from kiosk import checks

        self.cfg = cfg
        self.journal = journal
        self.clock = clock
        check_enrolled_venue(cfg, journal)
        self._checks = checks
        self.trust = trust if trust is not None else _open_trust(journal)
        from kiosk.checks.freshness import Freshness

        # Signed documents past valid-until + grace send the passes that rely on them to review.
        self.freshness = Freshness(journal, grace=timedelta(hours=cfg.trust.grace_hours),
                                   trust_max_age=timedelta(hours=cfg.trust.max_age_hours))
        self._rules_fixed = rules is not None
        self._rules_text: str | None = None
        self.rules = rules
        self.refresh_rules()
        self._recent: dict[str, float] = {}
        self.provisioned: Any = None  # the last provisioning result, for the run loop

    def refresh_rules(self) -> None:
        """Pick up rules that `kiosk sync` fetched from the collector since the last call.
        Cheap when nothing changed; a document that does not parse keeps the old rules."""
        if self._rules_fixed:
            return
        from kiosk.checks.rules import FETCHED_RULES_KEY, load_rules

        text = None if self.cfg.rules.path else self.journal.get_state(FETCHED_RULES_KEY)
        if self.rules is not None and text == self._rules_text:
            return
        try:
            self.rules = load_rules(self.cfg, self.journal)
        except ConfigError as exc:
            if text is None:
                raise  # the config's own rules file is wrong: stop startup and say so
            log.error("ignoring the rules fetched from the collector: %s", exc)
            if self.rules is None:
                self.rules = load_rules(self.cfg)  # the built-in rules of the venue type
        self._rules_text = text

    def handle(self, text: str, *, source: str, engine: str) -> Event | None:
        """Check and commit one code. Returns None for a debounced duplicate."""
        mono = time.monotonic()
        seen = self._recent.get(text)
        self._recent[text] = mono
        if seen is not None and mono - seen < DEBOUNCE_S:
            return None
        if len(self._recent) > 256:
            self._recent = {t: m for t, m in self._recent.items() if mono - m < DEBOUNCE_S}
        now = self.clock()
        scan = Scan(text=text, source=source, engine=engine, at=now)
        provisioned = self._provision(scan)
        if provisioned is not None:
            return provisioned
        verdict, credential = self._checks.evaluate(
            text, now=now, trust=self.trust, rules=self.rules,
            history=self._history, clock_synced=clock_plausible(now), lapsed=self.freshness.lapsed(now))
        entry = self.journal.record(scan, verdict, credential,
                                    venue=self.cfg.venue.code, device=self.cfg.device.id)
        if not entry.logged:
            # Shown again as it was first decided: the person already checked in.
            verdict = Verdict(Outcome(entry.outcome), Reason(entry.reason), entry.scheme,
                              entry.name_masked)
        return Event(scan, verdict, entry)

    def _history(self, subject_key: str) -> list[datetime]:
        # Reach as far back as the venue's repeat rule looks, and at least the journal's window.
        window = timedelta(seconds=self.cfg.journal.repeat_window_s)
        if self.rules is not None:
            window = max(window, self.rules.history_window)
        return self.journal.seen_subject(subject_key, self.clock() - window)

    def _provision(self, scan: Scan) -> Event | None:
        """A technician's `KP1:` code configures the device (only when signed with the
        provisioning key); it is never judged or journalled as a person's entry. Here
        only its signature, expiry and device are checked (no network, nothing written):
        a verified code comes back as a pending Event for `apply_provisioning`."""
        if not scan.text.startswith(PROVISION_PREFIX):
            return None
        from kiosk import provision

        checked = provision.check_scan(scan.text, self.cfg, self.cfg.file(), now=scan.at)
        if isinstance(checked, provision.ProvisionResult):
            self.provisioned = checked
            return provisioning_event(scan, checked)
        verdict = Verdict(Outcome.REVIEW, Reason.PROVISION_PENDING, PROVISION_SCHEME,
                          detail="provisioning QR accepted; " + (
                              "enrolling with the collector" if checked.enrol_code else "applying it"))
        return Event(scan, verdict, None, provisioning=True)

    def apply_provisioning(self, scan: Scan) -> Event:
        """Apply a provisioning QR that `handle` returned as pending: write the config
        and, with an enrolment code, get the device token from the collector (up to
        kiosk.provision.ENROL_TIMEOUT_S). Slow: call it beside the gate, never in the
        scan path. The QR is judged as of the time it was scanned."""
        from kiosk import provision

        result = provision.handle_scan(scan.text, self.cfg, self.cfg.file(), now=scan.at)
        self.provisioned = result
        return provisioning_event(scan, result)


def provisioning_event(scan: Scan, result: Any) -> Event:
    """The Event that shows a provisioning result (a kiosk.provision.ProvisionResult)."""
    if result.accepted:
        outcome, reason = Outcome.PASS, Reason.PROVISIONED
    else:
        outcome, reason = Outcome.FAIL, Reason.ENROL_FAILED if result.reason == "enrol_failed" else Reason.UNKNOWN_KEY
    return Event(scan, Verdict(outcome, reason, PROVISION_SCHEME, detail=result.message), None)


def _open_trust(journal: Journal) -> Any:
    from kiosk.checks.trust import TrustStore

    return TrustStore(journal)


def _sealer(cfg: Config) -> Callable[[bytes], str] | None:
    # Refuses (ConfigError naming journal.seal_key) a kiosk whose collector is not on
    # loopback and that has no seal key: its journal would hold ID numbers readable.
    from kiosk.seal import sealer_from_config

    return sealer_from_config(cfg)


def open_journal(cfg: Config) -> Journal:
    """The configured journal, with its repeat window and, if a collector key is set,
    personal fields sealed to it."""
    return Journal(cfg.journal_path(), repeat_window_s=cfg.journal.repeat_window_s, sealer=_sealer(cfg))
