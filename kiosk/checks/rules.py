"""Venue rules (TOML, one built-in file per venue type in `kiosk/rules/`) and the pure
policy `decide()` that applies them to a verified credential.

A rules file has the sections below; every key is optional and falls back to the
built-in default shown. A bad file stops startup with a ConfigError naming the file, the
key and what is allowed.

    [dcc]                        # EU DCC / Vietnam's vaccine passport
    accept = ["vaccination", "test", "recovery"]
    complete_series = true       # dn >= sd (two doses, or one of a one-dose vaccine)
    min_days_after_dose = 14
    max_days_after_dose = 0      # 0: no limit
    test_max_hours = 72
    recovery_max_days = 180
    [hd1]                        # signed health declaration
    max_age_hours = 24
    reject_symptoms = true
    reject_contact = true
    reject_travel_from = []      # province codes; ["*"]: any travel in the last 14 days
    accept_status = ["green"]
    [cccd]
    identity = "review"          # pass | review | fail: does identity alone admit?
    [opaque]
    outcome = "review"           # pass | review | fail for codes that cannot be verified
    [repeat]
    window_minutes = 0           # 0: off; else a second scan of one person within it ...
    outcome = "review"           # ... gets this verdict with reason repeat_scan

    >>> from datetime import datetime, timezone
    >>> rules = builtin_rules("supermarket")
    >>> rules.dcc.test_max_hours
    72.0
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Mapping

from kiosk.checks.dcc import TEST_DETECTED, TEST_NOT_DETECTED, parse_date, parse_datetime
from kiosk.checks.dcc_schema import FETCHED_VALUESETS_KEY, ValueSets, shipped_valuesets
from kiosk.config import VENUE_TYPES
from kiosk.errors import ConfigError
from kiosk.schema import option as _opt
from kiosk.schema import parse_table, read_toml
from kiosk.model import Credential, Outcome, Reason, Verdict, mask_name

__all__ = ["Rules", "DccRules", "Hd1Rules", "load_rules", "load_rules_file", "builtin_rules",
           "decide", "RULES_DIR", "FETCHED_VALUESETS_KEY"]

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
OUTCOMES = ("pass", "review", "fail")
DCC_TYPES = {"vaccination": "v", "test": "t", "recovery": "r"}
STATUSES = ("green", "yellow", "red")


@dataclass(frozen=True)
class DccRules:
    accept: tuple[str, ...] = _opt(("vaccination", "test", "recovery"), choices=tuple(DCC_TYPES),
                                   doc="which DCC types admit")
    complete_series: bool = _opt(True, doc="vaccination must complete its series (dose n of n)")
    min_days_after_dose: int = _opt(14, lo=0, hi=365, doc="days after the last dose before it counts")
    max_days_after_dose: int = _opt(0, lo=0, hi=3650, doc="days a vaccination counts; 0: no limit")
    test_max_hours: float = _opt(72.0, lo=1, hi=720, doc="hours a negative test counts")
    recovery_max_days: int = _opt(180, lo=1, hi=3650, doc="days after the first positive test a recovery counts")


@dataclass(frozen=True)
class Hd1Rules:
    max_age_hours: float = _opt(24.0, lo=0.5, hi=720, doc="hours a declaration counts after it was made")
    reject_symptoms: bool = _opt(True, doc="declared symptoms fail")
    reject_contact: bool = _opt(True, doc="declared contact with a case fails")
    reject_travel_from: tuple[str, ...] = _opt((), doc="province codes whose travel fails; [\"*\"]: any")
    accept_status: tuple[str, ...] = _opt(("green",), choices=STATUSES, doc="statuses that admit")


@dataclass(frozen=True)
class CccdRules:
    identity: str = _opt("review", choices=OUTCOMES, doc="verdict for an ID card alone")


@dataclass(frozen=True)
class OpaqueRules:
    outcome: str = _opt("review", choices=OUTCOMES, doc="verdict for an app code that cannot be verified")


@dataclass(frozen=True)
class RepeatRules:
    window_minutes: float = _opt(0.0, lo=0, hi=24 * 60, doc="a second scan within this; 0: off")
    outcome: str = _opt("review", choices=("review", "fail"), doc="verdict for a repeat scan")


@dataclass(frozen=True)
class Rules:
    venue_type: str = "other"
    description: str = ""
    dcc: DccRules = field(default_factory=DccRules)
    hd1: Hd1Rules = field(default_factory=Hd1Rules)
    cccd: CccdRules = field(default_factory=CccdRules)
    opaque: OpaqueRules = field(default_factory=OpaqueRules)
    repeat: RepeatRules = field(default_factory=RepeatRules)
    source: str = "<defaults>"

    @property
    def history_window(self) -> timedelta:
        """How far back `history(subject_key)` must reach for the repeat rule."""
        return timedelta(minutes=self.repeat.window_minutes)


_SECTIONS = {"dcc": DccRules, "hd1": Hd1Rules, "cccd": CccdRules, "opaque": OpaqueRules,
             "repeat": RepeatRules}
_TOP_KEYS = ("venue_type", "description")


def parse_rules(data: Mapping[str, Any], where: str) -> Rules:
    sections: dict[str, Any] = {}
    top: dict[str, Any] = {}
    for name, table in data.items():
        if name in _TOP_KEYS:
            if not isinstance(table, str):
                raise ConfigError(f"{where}: key '{name}' = {table!r} is not allowed; expected a string")
            top[name] = table
            continue
        if name not in _SECTIONS:
            raise ConfigError(f"{where}: unknown key or section '{name}'; allowed: "
                              + ", ".join([*_TOP_KEYS, *(f"[{s}]" for s in _SECTIONS)]))
        sections[name] = parse_table(where, name, _SECTIONS[name], table)
    return Rules(**top, **sections, source=where)


def load_rules_file(path: str | Path) -> Rules:
    """Read and validate one rules file."""
    data = read_toml(path, "rules")
    where = str(path)
    return parse_rules(data, where)


def builtin_rules(venue_type: str) -> Rules:
    """The shipped rules for a venue type (`kiosk/rules/<type>.toml`)."""
    path = RULES_DIR / f"{venue_type}.toml"
    if not path.exists():
        available = sorted(p.stem for p in RULES_DIR.glob("*.toml"))
        raise ConfigError(f"venue.type = {venue_type!r} has no built-in rules; expected one of "
                          + ", ".join(repr(a) for a in available))
    return load_rules_file(path)


#: Where `kiosk sync` keeps the rules fetched from the collector (journal state).
FETCHED_RULES_KEY = "rules.fetched"
FETCHED_WHERE = "rules fetched from the collector"


def parse_rules_text(text: str, where: str, venue_type: str | None) -> Rules:
    """Rules from a TOML or JSON document. A document whose top-level tables are venue
    types (`[hospital.hd1]`, `[school.repeat]`, ...) holds rules for several kinds of
    venue: the one for `venue_type` is used (with `venue_type=None` each is validated and
    the first returned). Bad documents raise ConfigError naming `where`."""
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{where}: neither valid TOML nor JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table of rules")
    per_type = {k: v for k, v in data.items() if k in VENUE_TYPES}
    if not per_type:
        return parse_rules(data, where)
    if set(data) - set(per_type):
        extra = sorted(set(data) - set(per_type))[0]
        raise ConfigError(f"{where}: '{extra}' beside per-venue-type tables; allowed: " + ", ".join(VENUE_TYPES))
    parsed = {k: parse_rules(v, f"{where} [{k}]") for k, v in per_type.items()}
    if venue_type is None:
        return next(iter(parsed.values()))
    if venue_type not in parsed:
        raise ConfigError(f"{where}: no rules for venue type {venue_type!r}; it has " + ", ".join(parsed))
    return parsed[venue_type]


def load_rules(cfg: Any, journal: Any = None) -> Rules:
    """The rules a kiosk runs with: `rules.path` if set, else the rules last fetched from
    the collector (when a journal is given and holds them), else the built-in file for
    `venue.type`."""
    if cfg.rules.path:
        return load_rules_file(cfg.rules.path)
    fetched = journal.get_state(FETCHED_RULES_KEY) if journal is not None else None
    if fetched:
        return parse_rules_text(fetched, FETCHED_WHERE, cfg.venue.type)
    return builtin_rules(cfg.venue.type)


# --- the policy ---------------------------------------------------------------------

def _verdict(outcome: Outcome, reason: Reason, credential: Credential, detail: str = "",
             failure: Mapping[str, str] | None = None) -> Verdict:
    if failure is None and outcome is Outcome.FAIL:
        failure = {"step": "rules", "message": detail or reason.value}
    return Verdict(outcome, reason, credential.scheme, mask_name(credential.name), detail, failure)


def _codes(credential: Credential, valuesets: ValueSets | None) -> tuple[str, str] | None:
    """(member, message) for the first code of a DCC that is not in its EU value set: the
    EU validation rules GR-EU-0001 (disease agent), VR-EU-0001 (vaccine), TR-EU-0001/0002
    (test type, rapid test device); the schema itself leaves codes unconstrained."""
    kind, entry = credential.claims.get("type"), credential.claims.get("entry") or {}
    return (valuesets or shipped_valuesets()).check({kind: [entry]}) if kind in ("v", "t", "r") else None


def _dcc(credential: Credential, rules: DccRules, now: datetime) -> tuple[Reason, str]:
    claims = credential.claims
    kind, entry = claims.get("type"), claims.get("entry") or {}
    accepted = {DCC_TYPES[a] for a in rules.accept}
    if kind not in accepted:
        return Reason.NOT_VACCINATED, f"{kind} certificates do not admit here"
    today = now.date()
    if kind == "v":
        if rules.complete_series and entry.get("dn", 0) < entry.get("sd", 1):
            return Reason.NOT_VACCINATED, f"dose {entry.get('dn')} of {entry.get('sd')}"
        dt = parse_date(entry.get("dt"))
        if dt is None:
            return Reason.BAD_SCHEMA, "no vaccination date"
        days = (today - dt).days
        if days < rules.min_days_after_dose:
            return Reason.VACCINATION_TOO_RECENT, f"{days} days after the last dose"
        if rules.max_days_after_dose and days > rules.max_days_after_dose:
            return Reason.VACCINATION_TOO_OLD, f"{days} days after the last dose"
        return Reason.OK, ""
    if kind == "t":
        # Only "not detected" admits; "detected" is a positive test; anything else
        # (never in the value set, so normally caught before) is not a test result.
        if entry.get("tr") == TEST_DETECTED:
            return Reason.TEST_POSITIVE, "positive test"
        if entry.get("tr") != TEST_NOT_DETECTED:
            return Reason.BAD_SCHEMA, f"test result {entry.get('tr')!r} is neither detected nor not detected"
        sc = parse_datetime(entry.get("sc"))
        if sc is None:
            return Reason.BAD_SCHEMA, "no sample time"
        if sc > now + timedelta(minutes=5):
            return Reason.NOT_YET_VALID, "sample taken in the future"
        hours = (now - sc).total_seconds() / 3600
        if hours > rules.test_max_hours:
            return Reason.TEST_TOO_OLD, f"sample {hours:.0f} hours old"
        return Reason.OK, ""
    fr, df, du = (parse_date(entry.get(k)) for k in ("fr", "df", "du"))
    if fr is None:
        return Reason.BAD_SCHEMA, "no first positive test date"
    if df is not None and today < df:
        return Reason.NOT_YET_VALID, "recovery not yet valid"
    if (today - fr).days > rules.recovery_max_days or (du is not None and today > du):
        return Reason.RECOVERY_TOO_OLD, f"first positive {(today - fr).days} days ago"
    return Reason.OK, ""


def _hd1(credential: Credential, rules: Hd1Rules, now: datetime) -> tuple[Reason, str]:
    c = credential.claims
    at = c.get("at")
    if not isinstance(at, datetime):
        return Reason.BAD_SCHEMA, "no declaration time"
    if at > now + timedelta(minutes=5):
        return Reason.NOT_YET_VALID, "declared in the future"
    if (now - at) > timedelta(hours=rules.max_age_hours):
        return Reason.DECLARATION_TOO_OLD, f"declared {(now - at).total_seconds() / 3600:.0f} hours ago"
    if rules.reject_symptoms and c.get("sym"):
        return Reason.SYMPTOMS, ", ".join(c["sym"])
    if rules.reject_contact and c.get("ctc"):
        return Reason.EXPOSURE, "contact with a case"
    travel = set(c.get("trv") or ())
    if travel and ("*" in rules.reject_travel_from or travel & set(rules.reject_travel_from)):
        return Reason.TRAVEL, ", ".join(sorted(travel))
    if c.get("st") not in rules.accept_status:
        # status_red is the code for any status the venue does not accept (yellow at a
        # school, red anywhere): the screen says "health status does not allow entry".
        return Reason.STATUS_RED, f"status {c.get('st')}"
    return Reason.OK, ""


def decide(credential: Credential, rules: Rules, *, now: datetime,
           history: Callable[[str], list[datetime]] | None = None,
           valuesets: ValueSets | None = None) -> Verdict:
    """The venue's verdict on a credential that has passed decoding, signature and
    validity checks. Pure: time comes in as `now`, earlier scans through `history`, the
    EU value sets a DCC's codes must be in as `valuesets` (default: the shipped ones).

    `review` means a guard must look: identity only (ID card), unverifiable app code, a
    repeat scan where the venue asks for it.
    """
    scheme = credential.scheme
    if scheme == "dcc":
        problem = _codes(credential, valuesets)
        if problem is not None:
            member, message = problem
            return _verdict(Outcome.FAIL, Reason.BAD_SCHEMA, credential, f"{member}: {message}",
                            {"step": "valuesets", "member": member, "message": message})
        reason, detail = _dcc(credential, rules.dcc, now)
    elif scheme == "hd1":
        reason, detail = _hd1(credential, rules.hd1, now)
    elif scheme == "cccd":
        outcome = Outcome(rules.cccd.identity)
        return _verdict(outcome, Reason.OK if outcome is Outcome.PASS else Reason.IDENTITY_ONLY, credential)
    elif scheme == "opaque":
        outcome = Outcome(rules.opaque.outcome)
        return _verdict(outcome, Reason.OK if outcome is Outcome.PASS else Reason.UNKNOWN_SCHEME, credential)
    else:
        return _verdict(Outcome.FAIL, Reason.UNKNOWN_SCHEME, credential)
    if reason is not Reason.OK:
        return _verdict(Outcome.FAIL, reason, credential, detail)
    if rules.repeat.window_minutes and history is not None and credential.subject_key:
        since = now - timedelta(minutes=rules.repeat.window_minutes)
        if any(since <= t < now for t in history(credential.subject_key)):
            return _verdict(Outcome(rules.repeat.outcome), Reason.REPEAT_SCAN, credential,
                            f"scanned within {rules.repeat.window_minutes:g} minutes")
    return _verdict(Outcome.PASS, Reason.OK, credential)
