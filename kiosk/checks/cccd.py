"""Vietnamese chip ID card (CCCD) QR: `id12|oldid9|name|ddmmyyyy|Nam/Nữ|address|ddmmyyyy`.

The old 9-digit ID may be empty; some cards add an eighth field, which is tolerated.
Only identity can be read from it (nothing is signed): the venue rules say whether
identity alone admits. Dates must be real ones (no 31 February, no birth in the future).

    >>> from datetime import datetime, timezone
    >>> c = check("079190000123||Nguyễn Thị Hoa|15041990|Nữ|12 Lê Lợi, Quận 1, TP.HCM|01072021",
    ...           now=datetime(2021, 9, 1, tzinfo=timezone.utc))
    >>> c.failed is None, c.credential.name
    (True, 'Nguyễn Thị Hoa')
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from kiosk.checks.cose import CheckFailed
from kiosk.checks.result import Checked
from kiosk.model import Credential, Reason

__all__ = ["check", "looks_like", "SEXES"]

SEXES = ("Nam", "Nữ")
MAX_FIELD = 300
NAME_PUNCTUATION = " .'-"
_ID12 = re.compile(r"^\d{12}$")
_ID9 = re.compile(r"^\d{9}$")
_DATE = re.compile(r"^\d{8}$")


def looks_like(text: str) -> bool:
    """Six or more `|`-fields starting with digits: meant to be a CCCD (a wrong field
    count then fails as bad_schema instead of passing as an app code)."""
    return text.count("|") >= 5 and text.split("|", 1)[0].strip().isdigit()


def _date(text: str, what: str) -> date:
    if not _DATE.match(text):
        raise CheckFailed(Reason.BAD_SCHEMA, f"{what} must be ddmmyyyy")
    try:
        return date(int(text[4:]), int(text[2:4]), int(text[:2]))
    except ValueError:
        raise CheckFailed(Reason.BAD_SCHEMA, f"{what} {text} is not a real date") from None


def check(text: str, *, now: datetime) -> Checked:
    # Scanners may deliver decomposed Unicode (NFD); store and show the composed form.
    fields = [f.strip() for f in unicodedata.normalize("NFC", text).strip().split("|")]
    try:
        if len(fields) not in (7, 8):
            raise CheckFailed(Reason.BAD_SCHEMA, f"{len(fields)} fields; a CCCD code has 7 (or 8)")
        id12, old, name, dob_s, sex, address, issued_s = fields[:7]
        if not _ID12.match(id12):
            raise CheckFailed(Reason.BAD_SCHEMA, "the ID number must have 12 digits")
        if old and not _ID9.match(old):
            raise CheckFailed(Reason.BAD_SCHEMA, "the old ID number must be empty or 9 digits")
        if not name or len(name) > MAX_FIELD or not all(ch.isalpha() or ch in NAME_PUNCTUATION for ch in name):
            raise CheckFailed(Reason.BAD_SCHEMA, "the name is missing or has characters other than letters")
        if sex not in SEXES:
            raise CheckFailed(Reason.BAD_SCHEMA, "sex must be Nam or Nữ")
        if len(address) > MAX_FIELD or any(len(f) > MAX_FIELD for f in fields):
            raise CheckFailed(Reason.BAD_SCHEMA, "a field is too long")
        dob = _date(dob_s, "date of birth")
        issued = _date(issued_s, "issue date")
        today = now.date()
        if dob > today or issued > today or issued < dob:
            raise CheckFailed(Reason.BAD_SCHEMA, "dates out of order (birth, issue, today)")
    except CheckFailed as failed:
        return Checked(None, failed)
    name = " ".join(name.split())
    return Checked(Credential(
        scheme="cccd", name=name, subject_key="cccd:" + id12, issuer="VN",
        personal={"name": name, "id": id12, "dob": dob.isoformat(), "sex": sex, "address": address},
        claims={"issued": issued.isoformat(), "old_id": old or None},
    ))
