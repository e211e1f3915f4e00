"""The EU DCC payload against the EU DCC JSON schema, and its codes against the EU value sets.

Two steps, each naming the member that failed so a technician can tell a forged
certificate (signature) from a badly issued one (schema, value sets):

- `validate(hcert)`: the schema of the certificate's own release line (`ver` 1.0.x,
  1.1.x/1.2.x, 1.3.0/1.3.1, 1.3.2 and later; `kiosk/data/dcc-schema.json`), with
  `jsonschema`: types, required members, patterns, lengths, formats (`date`,
  `date-time`), exactly one of v/t/r holding exactly one entry. CBOR-tagged times
  (tag 0 and 1 decode to datetimes) are normalised to the date-time strings the schema
  holds first.
- `ValueSets.check(hcert)`: each coded member (disease agent, vaccine, product,
  manufacturer, test type, result, rapid test device, country) is in its EU value set.
  This is a business rule, not part of the technical verification: the schema only
  names each member's value set by `valueset-uri` (an annotation, no constraint), and
  the EU validation rules check the codes (GR-EU-0001 disease agent, VR-EU-0001
  vaccine, TR-EU-0001/0002 test type and device), so `kiosk.checks.rules.decide` runs
  it and `kiosk check --no-rules` does not. The value sets are the ones the collector
  published (`kiosk sync`, journal state `valuesets.fetched`), else the shipped
  `kiosk/data/valuesets.json`: a new vaccine needs no upgrade.

    >>> hc = {"ver": "1.3.0", "nam": {"fnt": "NGUYEN"}, "dob": "1990",
    ...       "t": [{"tg": "840539006", "tt": "LP6464-4", "sc": "2021-08-18T10:00:00Z",
    ...              "tr": "inconclusive", "co": "VN", "is": "MoH", "ci": "URN:UVCI:01:VN:1"}]}
    >>> validate(hc) is None
    True
    >>> shipped_valuesets().check(hc)
    ('t[0].tr', "'inconclusive' is not in the EU value set test-result")
    >>> validate({**hc, "dob": "1815"})[0], validate({**hc, "nam": {"fnt": "Nguyễn"}})[0]
    ('dob', 'nam.fnt')
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from kiosk.errors import TrustError

__all__ = ["validate", "normalise", "release_line", "member_path", "ValueSets", "shipped_valuesets",
           "parse_valuesets", "valuesets_for", "SCHEMA_PATH", "VALUESETS_PATH", "CODED_MEMBERS",
           "FETCHED_VALUESETS_KEY"]

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent.parent / "data"
SCHEMA_PATH = DATA / "dcc-schema.json"
VALUESETS_PATH = DATA / "valuesets.json"
#: Journal state where `kiosk sync` keeps the value sets fetched from the collector.
FETCHED_VALUESETS_KEY = "valuesets.fetched"

#: Coded members per certificate type and the value set each is drawn from.
CODED_MEMBERS: dict[str, dict[str, str]] = {
    "v": {"tg": "disease-agent-targeted", "vp": "vaccine-prophylaxis", "mp": "vaccine-medicinal-product",
          "ma": "vaccine-mah-manf", "co": "country-2-codes"},
    "t": {"tg": "disease-agent-targeted", "tt": "test-type", "tr": "test-result", "ma": "test-manf",
          "co": "country-2-codes"},
    "r": {"tg": "disease-agent-targeted", "co": "country-2-codes"},
}
#: Members a certificate may leave out, where an empty string means "not given" (CH's
#: NAA tests carry `"ma": ""`; a NAA test has no rapid test device).
_OPTIONAL = {("t", "ma")}

_VER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
# The schema's `date-time`: RFC 3339, fractions of a second of any length. Issued
# certificates also carry the ISO 8601 extended forms RFC 3339 lacks, which are
# accepted: no offset (UTC, as CertLogic reads them), an offset without its colon or
# minutes (+0200, +02), no seconds (T10:30). The day and time must be real (hour < 24,
# minute < 60, second <= 60); a space for the T and the basic format (20210518) stay
# refused: neither is the extended format the schema's ISO 8601 names.
_DATE_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?([Zz]|[+-](\d{2})(?::?(\d{2}))?)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def release_line(ver: Any) -> str | None:
    """The schema release line for a `ver` ('1.0', '1.2', '1.3' or '1.3.2'); None when
    no release of the schema has that version.

    >>> [release_line(v) for v in ("1.0.1", "1.2.1", "1.3.0", "1.3.2", "1.4.0", "2.0.0")]
    ['1.0', '1.2', '1.3', '1.3.2', '1.3.2', None]
    """
    m = _VER.match(ver) if isinstance(ver, str) else None
    if not m or int(m[1]) != 1:
        return None
    minor, patch = int(m[2]), int(m[3])
    if minor == 0:
        return "1.0"
    if minor < 3:
        return "1.2"
    return "1.3" if minor == 3 and patch < 2 else "1.3.2"


def normalise(value: Any) -> Any:
    """The decoded CBOR as the JSON the schema describes: tagged date-times (CBOR tags 0
    and 1 decode to datetimes) become RFC 3339 strings, tagged dates ISO dates; maps and
    arrays are copied. Anything else is left for the schema to judge."""
    if isinstance(value, Mapping):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _is_date(text: object) -> bool:
    if not isinstance(text, str):
        return True  # formats judge strings only; the type is the schema's
    if not _DATE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_entry_date(text: object) -> bool:
    """The schema's `date` for dt/fr/df/du: a full date, or a date-time starting with one.
    Member states issue vaccination dates as `2021-05-18T08:10:00+02:00` in 1.0.0 to
    1.3.0 and flag them schema-valid (PL #12 of each release); the day is what counts."""
    return _is_date(text) or _is_date_time(text)


def _is_entry_time(text: object) -> bool:
    """The schema's `date-time` for sc (and 1.0's dr): a date-time, or a full date alone
    (a sample collected that day, read as its midnight UTC, as `dcc.parse_datetime`
    does): member states issue both and the rules only need the instant."""
    return _is_date(text) or _is_date_time(text)


def _is_dob(text: object) -> bool:
    """`dcc-dob`: the birth date patterns admit `1990-02-30` and `1990-13`; real dates only."""
    if not isinstance(text, str) or len(text) <= 4:
        return True
    if len(text) == 7:
        return "01" <= text[5:] <= "12"
    return _is_date(text)


def _is_date_time(text: object) -> bool:
    if not isinstance(text, str):
        return True
    m = _DATE_TIME.match(text)
    if not m or not _is_date(m[1]):
        return False
    hour, minute, second = int(m[2]), int(m[3]), int(m[4] or 0)
    off_hour, off_minute = int(m[7] or 0), int(m[8] or 0)
    return hour < 24 and minute < 60 and second < 61 and off_hour < 24 and off_minute < 60


def member_path(path: Any) -> str:
    """`['t', 0, 'tr']` -> `t[0].tr` (the name a technician reads)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@lru_cache(maxsize=1)
def _validators() -> dict[str, Any]:
    from jsonschema import Draft202012Validator, FormatChecker

    doc = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    defs = doc["$defs"]

    def inline(node: Any) -> Any:
        # The document's own `#/$defs/...` references resolved once here: jsonschema
        # then validates without a reference lookup per member (40% faster).
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/") and len(node) == 1:
                return inline(defs[ref[len("#/$defs/"):]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    formats = FormatChecker(formats=())
    formats.checks("date")(_is_entry_date)
    formats.checks("date-time")(_is_entry_time)
    formats.checks("dcc-dob")(_is_dob)
    out = {}
    for line in ("1.0", "1.2", "1.3", "1.3.2"):
        schema = {"$schema": doc["$schema"], **inline(defs[f"dcc-{line}"])}
        Draft202012Validator.check_schema(schema)
        out[line] = Draft202012Validator(schema, format_checker=formats)
    return out


#: What a pattern or format failure means, for the members whose patterns read badly.
_MEANING = {
    "dob": "is not a birth date from 1900 to 2099 (YYYY-MM-DD, YYYY-MM or YYYY)",
    "fnt": "is not a transliterated name (A-Z and <, ICAO 9303)",
    "gnt": "is not a transliterated name (A-Z and <, ICAO 9303)",
    "ver": "is not a schema version like 1.3.0",
    "date": "is not a date (YYYY-MM-DD)",
    "date-time": "is not a date-time (YYYY-MM-DDThh:mm:ssZ) or a date (YYYY-MM-DD)",
}


def _error(err: Any, instance: Mapping[str, Any]) -> tuple[str, str]:
    path = list(err.absolute_path)
    if err.validator in ("pattern", "format") and path:
        meaning = _MEANING.get(str(path[-1])) or _MEANING.get(str(err.validator_value))
        if meaning:
            return member_path(path), f"{err.instance!r} {meaning}"
    if err.validator == "required":
        held = err.instance if isinstance(err.instance, Mapping) else {}
        missing = [k for k in err.validator_value if k not in held]
        return member_path(path + missing[:1]), err.message
    if err.validator == "oneOf" and not path:
        found = [k for k in ("v", "t", "r") if k in instance]
        return "v|t|r", f"a DCC holds exactly one of v, t, r; found {', '.join(found) or 'none'}"
    if err.validator == "anyOf" and path == ["nam"]:
        return "nam.fnt", "nam needs fnt or gnt"
    return member_path(path) or "$", err.message


def validate(hcert: Any) -> tuple[str, str] | None:
    """None when the payload (normalised) follows the schema of its release line, else
    (member, message) for the first failing member in document order."""
    if not isinstance(hcert, Mapping):
        return "$", "the DCC payload is not an object"
    line = release_line(hcert.get("ver"))
    if line is None:
        return "ver", f"ver {hcert.get('ver')!r} is no release of the EU DCC schema (1.0.0 to 1.3.x)"
    validator = _validators()[line]
    errors = list(validator.iter_errors(hcert))
    if not errors:
        nam = hcert["nam"]
        # The schema's pattern admits an empty transliteration; a certificate whose
        # transliterated names are all empty names nobody the guard can compare.
        if not (nam.get("fnt") or nam.get("gnt")):
            return "nam.fnt", "the transliterated name (fnt or gnt) is empty"
        return None
    # The error of the shallowest member first, then document order: a missing `nam`
    # is named before what the oneOf over v/t/r says about it.
    errors.sort(key=lambda e: (e.validator == "oneOf", len(e.absolute_path), [str(p) for p in e.absolute_path]))
    return _error(errors[0], hcert)


class ValueSets:
    """Codes of each EU value set by name (`test-result` -> {"260415000", ...})."""

    def __init__(self, codes: Mapping[str, frozenset[str]], version: str = "", where: str = "") -> None:
        self.codes = dict(codes)
        self.version = version
        self.where = where

    def __contains__(self, name: str) -> bool:
        return name in self.codes

    def check(self, hcert: Mapping[str, Any]) -> tuple[str, str] | None:
        """None when every coded member of the (schema-valid) certificate is in its value
        set, else (member, message). A value set the document lacks is not checked."""
        for kind, members in CODED_MEMBERS.items():
            for i, entry in enumerate(hcert.get(kind) or ()):
                if not isinstance(entry, Mapping):
                    continue
                for key, name in members.items():
                    if key not in entry or name not in self.codes:
                        continue
                    value = entry[key]
                    if value == "" and (kind, key) in _OPTIONAL:
                        continue
                    if value not in self.codes[name]:
                        return f"{kind}[{i}].{key}", f"{value!r} is not in the EU value set {name}"
        return None


def parse_valuesets(body: bytes | str, where: str = "value sets") -> ValueSets:
    """A value sets document: `{"version": ..., "valuesets": {name: {"valueSetValues":
    {code: {...}}}}}`, each value set in the EU's own format, every one the kiosk checks
    present (a document without one would silently stop its check). Raises TrustError
    naming what is wrong.

    >>> parse_valuesets('{"valuesets": {"test-result": {"valueSetValues": {"260415000": {}}}}}')
    Traceback (most recent call last):
    kiosk.errors.TrustError: value sets: value set 'country-2-codes' is missing
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrustError(f"{where}: not JSON: {exc}") from None
    sets = doc.get("valuesets") if isinstance(doc, dict) else None
    if not isinstance(sets, dict) or not sets:
        raise TrustError(f"{where}: expected {{\"valuesets\": {{name: {{\"valueSetValues\": {{code: ...}}}}}}}}")
    codes: dict[str, frozenset[str]] = {}
    for name, vs in sets.items():
        values = vs.get("valueSetValues") if isinstance(vs, dict) else None
        if not isinstance(values, dict) or not values or not all(isinstance(c, str) and c for c in values):
            raise TrustError(f"{where}: value set {name!r} needs a non-empty valueSetValues map of codes")
        codes[name] = frozenset(values)
    for needed in sorted({name for members in CODED_MEMBERS.values() for name in members.values()}):
        if needed not in codes:
            raise TrustError(f"{where}: value set {needed!r} is missing")
    version = doc.get("version")
    return ValueSets(codes, version if isinstance(version, str) else "", where)


@lru_cache(maxsize=1)
def shipped_valuesets() -> ValueSets:
    """The value sets shipped with the kiosk (`kiosk/data/valuesets.json`)."""
    return parse_valuesets(VALUESETS_PATH.read_bytes(), str(VALUESETS_PATH))


@lru_cache(maxsize=4)
def _parse_fetched(text: str) -> ValueSets | None:
    try:
        return parse_valuesets(text, "value sets fetched from the collector")
    except TrustError as exc:
        log.warning("%s; using the shipped value sets", exc)
        return None


def valuesets_for(journal: Any = None) -> ValueSets:
    """The value sets a kiosk checks with: those last fetched from the collector (journal
    state `valuesets.fetched`), else the shipped ones. Fetched ones that no longer parse
    (after an upgrade) fall back to the shipped ones rather than stop the kiosk."""
    get_state = getattr(journal, "get_state", None)
    fetched = get_state(FETCHED_VALUESETS_KEY) if get_state is not None else None
    return (_parse_fetched(fetched) if fetched else None) or shipped_valuesets()
