"""Citizens' health declarations made on the collector's form: checked, signed as `HD1:`,
recorded for the health department (sealed), and counted as a check-in at a venue.

The collector's declaration issuer key (EC P-256) is made on first use and kept in the
store's settings; `with_issuer(trust_json, store)` adds its `HD1` entry to a trust list
before `collector publish trust`, so every kiosk verifies the QR offline.

What the server keeps of a declaration: when, where (commune, venue), whether symptoms
or a contact were declared, the person key (HMAC of the ID number under the tracing key,
for the quarantine roster and tracing), the masked name, and the personal fields sealed
to the collector's seal key. Retention clears all but the counts (`purge_personal`).

    >>> from collector.storage import Store
    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
    >>> form = {"name": ["Trần Thị Mai"], "dob": ["1990-04-30"], "sex": ["nu"],
    ...         "id_number": ["079190000123"], "phone": ["0901234567"], "province": ["79"],
    ...         "commune": ["26740"], "contact_case": ["no"], "contact_area": ["no"], "consent": ["yes"]}
    >>> decl, errors = validate(form, now=now)
    >>> errors
    {}
    >>> with Store("sqlite://") as store:
    ...     issue(store, decl, now=now).text[:4]
    'HD1:'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from collector import divisions
from collector.storage import FORM_DEVICE as _FORM_DEVICE, create_once, local_day, settings
from kiosk.checks import hd1
from kiosk.errors import KioskError

__all__ = [
    "SYMPTOMS", "SEXES", "Declaration", "Issued", "FormError", "validate", "issue", "issuer_key",
    "issuer_entry", "with_issuer", "new_token", "ensure_tables", "person_key", "purge_personal",
    "FORM_DEVICE", "TOKEN_TTL", "FORM_PER_ADDRESS", "FORM_WINDOW_S", "ISSUER_NAME", "VALID_FOR",
]

#: Symptoms in the last 14 days (the domestic declaration's list): code, Vietnamese, English.
SYMPTOMS = (
    ("fever", "Sốt", "Fever"),
    ("cough", "Ho", "Cough"),
    ("breath", "Khó thở", "Shortness of breath"),
    ("pneumonia", "Viêm phổi", "Pneumonia"),
    ("throat", "Đau họng", "Sore throat"),
    ("fatigue", "Mệt mỏi", "Fatigue"),
)
SEXES = (("nam", "Nam", "Male"), ("nu", "Nữ", "Female"), ("khac", "Khác", "Other"))
#: The check-ins the form records carry this device id (no kiosk has it); defined in
#: collector.storage, whose report rollup counts them apart.
FORM_DEVICE = _FORM_DEVICE
#: A form is good for this long after it was served, and for one declaration only.
TOKEN_TTL = timedelta(hours=2)
#: Declarations per source address per window. Phones on a mobile network share a few
#: carrier-grade NAT addresses, so this is far above what a family sends and far below a flood.
FORM_PER_ADDRESS = 60
FORM_WINDOW_S = 600
#: The `iss` of the collector's declarations, and how long one is good at the door.
ISSUER_NAME = "Sở Y tế - tờ khai điện tử"
VALID_FOR = timedelta(hours=24)
ISSUER_SETTING = "hd1_issuer_key"
NAME_MAX = 100
STREET_MAX = 200
MAX_TRAVEL = 34  # every province

_CCCD = re.compile(r"^\d{12}$")
_CMND = re.compile(r"^\d{9}$")
_PASSPORT = re.compile(r"^(?=.*[A-Z])[A-Z0-9]{6,9}$")
#: The form's "no symptoms at all" box (not a symptom code).
NO_SYMPTOMS = "none"
#: A second declaration at the same venue this soon adds no second check-in there.
REPEAT_CHECK_IN = timedelta(minutes=30)
#: What people type between a phone number's digits.
_PHONE_SEPARATORS = re.compile(r"[\s.-]")
_PHONE = re.compile(r"^(?:0|\+84|84)(\d{9})$")

metadata = sa.MetaData()
declarations = sa.Table(
    "declarations", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("declared_at", sa.DateTime(), nullable=False),   # naive UTC
    sa.Column("day_local", sa.String(10), nullable=False),
    sa.Column("province", sa.String(2), nullable=False),
    sa.Column("commune", sa.String(5), nullable=False),
    sa.Column("venue_code", sa.String(64)),
    sa.Column("symptoms", sa.Boolean(), nullable=False),
    sa.Column("contact", sa.Boolean(), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("person_key", sa.String(64)),     # HMAC(tracing key, "id:" + ID): roster match
    sa.Column("phone_key", sa.String(64)),      # HMAC(tracing key, "phone:" + phone): the roster's second factor
    sa.Column("name_masked", sa.Text()),
    sa.Column("personal", sa.Text()),            # sealed JSON, or None without a seal key
    sa.Index("declarations_day_person", "day_local", "person_key"),
)
form_tokens = sa.Table(
    "form_tokens", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("used_at", sa.DateTime(), nullable=False),
)


class FormError(KioskError, ValueError):
    """A form submission refused as a whole (`status`: the HTTP answer), in both languages."""

    def __init__(self, status: int, vi: str, en: str) -> None:
        super().__init__(f"{vi} / {en}")
        self.status, self.vi, self.en = status, vi, en


def ensure_tables(engine: sa.Engine) -> None:
    create_once(metadata, engine)
    have = {c["name"] for c in sa.inspect(engine).get_columns("declarations")}
    if "phone_key" not in have:  # a database from before the roster checked the phone
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE declarations ADD COLUMN phone_key VARCHAR(64)"))


def _insert(engine: sa.Engine, table: sa.Table):
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


# --- the issuer key ---------------------------------------------------------------------

def issuer_key(store: Any) -> tuple[Any, bytes]:
    """The collector's HD1 issuer key and kid, made on first use (concurrent first uses agree)."""
    with store.engine.connect() as conn:
        pem = conn.execute(sa.select(settings.c.value).where(settings.c.name == ISSUER_SETTING)).scalar()
    if pem is None:
        key, _ = hd1.generate_key("ec")
        with store.engine.begin() as conn:
            stmt = _insert(store.engine, settings).values(name=ISSUER_SETTING, value=hd1.private_pem(key).decode())
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
            pem = conn.execute(sa.select(settings.c.value).where(settings.c.name == ISSUER_SETTING)).scalar_one()
    key = hd1.load_private_key(pem.encode())
    return key, hd1.kid_for(key.public_key())


def issuer_entry(store: Any) -> dict[str, str]:
    """The trust list entry (type HD1) of the collector's issuer key."""
    from kiosk.checks.trust import KIND_HD1, trust_entry

    key, kid = issuer_key(store)
    return trust_entry(kid, KIND_HD1, hd1.public_der(key.public_key()))


def with_issuer(trust_json: bytes | str, store: Any) -> bytes:
    """A trust list (a JSON list, or `{"certificates": [...]}`) with the collector's HD1
    entry added once (an entry with its kid is replaced)."""
    data = json.loads(trust_json) if trust_json else []
    items = data.get("certificates") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("a trust list is a JSON list of entries (or {\"certificates\": [...]})")
    entry = issuer_entry(store)
    items[:] = [e for e in items if not (isinstance(e, dict) and e.get("kid") == entry["kid"])] + [entry]
    return json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")


# --- one-use form tokens ----------------------------------------------------------------

def _token_key(store: Any) -> bytes:
    return hashlib.sha256(b"collector-form-token-v1|" + bytes.fromhex(store.tracing_key())).digest()


def new_token(store: Any, *, now: datetime) -> str:
    """A fresh token for one served form: random, its time, and a MAC (no row until used)."""
    body = f"{secrets.token_urlsafe(12)}.{int(now.timestamp())}"
    mac = hmac.new(_token_key(store), body.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{body}.{mac}"


def use_token(store: Any, token: str, *, now: datetime) -> None:
    """Spend a form token; FormError when it is forged, stale or already spent (a resent
    or replayed submission)."""
    ensure_tables(store.engine)
    parts = (token or "").split(".")
    if len(parts) != 3 or len(token) > 120 or not parts[1].isdigit():
        raise FormError(400, "Biểu mẫu không hợp lệ, hãy tải lại trang.",
                        "This form is not valid; reload the page.")
    body = f"{parts[0]}.{parts[1]}"
    mac = hmac.new(_token_key(store), body.encode(), hashlib.sha256).hexdigest()[:32]
    if not hmac.compare_digest(mac, parts[2]):
        raise FormError(400, "Biểu mẫu không hợp lệ, hãy tải lại trang.",
                        "This form is not valid; reload the page.")
    served = datetime.fromtimestamp(int(parts[1]), timezone.utc)
    if not timedelta(minutes=-5) <= now - served <= TOKEN_TTL:
        raise FormError(400, "Biểu mẫu đã hết hạn, hãy tải lại trang và khai lại.",
                        "This form has expired; reload the page and declare again.")
    with store.engine.begin() as conn:
        # RETURNING, not rowcount: psycopg answers -1 for an INSERT ... ON CONFLICT.
        spent = conn.execute(_insert(store.engine, form_tokens).values(
            token_hash=hashlib.sha256(token.encode()).hexdigest(), used_at=_naive(now))
            .on_conflict_do_nothing(index_elements=["token_hash"]).returning(form_tokens.c.token_hash)).first()
        if spent is None:
            raise FormError(409, "Tờ khai này đã được gửi. Hãy mở lại biểu mẫu để khai lần mới.",
                            "This declaration was already sent. Open the form again to declare anew.")
        conn.execute(form_tokens.delete().where(form_tokens.c.used_at < _naive(now - 2 * TOKEN_TTL)))


# --- validation ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Declaration:
    name: str
    dob: str
    sex: str
    id_number: str
    phone: str
    province: str
    commune: str
    street: str = ""
    travel: tuple[str, ...] = ()
    symptoms: tuple[str, ...] = ()
    contact_case: bool = False
    contact_area: bool = False
    venue: str | None = None

    @property
    def status(self) -> str:
        """red: symptoms or a contact with a case (the fever clinic); yellow: contact with
        someone from an outbreak area; green otherwise."""
        if self.symptoms or self.contact_case:
            return "red"
        return "yellow" if self.contact_area else "green"


#: Field -> (Vietnamese, English) error messages.
Errors = dict[str, tuple[str, str]]


def _one(form: Mapping[str, Sequence[str]], name: str) -> str:
    values = form.get(name) or [""]
    return unicodedata.normalize("NFC", str(values[0])).strip()


def _venue_ok(code: str) -> bool:
    from collector.validation import check_venue_code

    try:
        check_venue_code(code)
    except ValueError:
        return False
    return True


def validate(form: Mapping[str, Sequence[str]], *, now: datetime) -> tuple[Declaration | None, Errors]:
    """Check a submitted form (field -> values, as `urllib.parse.parse_qs` gives). Returns
    the declaration, or None and an error per field in both languages. Never raises."""
    err: Errors = {}
    name = " ".join(_one(form, "name").split())
    if not name:
        err["name"] = ("Hãy nhập họ và tên.", "Enter your full name.")
    elif len(name) > NAME_MAX or not all(c.isalpha() or c in " '-." for c in name) or len(name) < 2:
        err["name"] = ("Họ và tên chỉ gồm chữ cái và dấu cách.", "A name has letters and spaces only.")
    dob_text = _one(form, "dob")
    try:
        born = date.fromisoformat(dob_text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", dob_text) else None
    except ValueError:
        born = None
    today = now.astimezone(timezone(timedelta(hours=7))).date()
    if born is None:
        err["dob"] = ("Hãy nhập ngày sinh (ngày/tháng/năm).", "Enter your date of birth.")
    elif born > today or born.year < today.year - 120:
        err["dob"] = ("Ngày sinh không hợp lệ.", "This date of birth is not possible.")
    sex = _one(form, "sex")
    if sex not in {s[0] for s in SEXES}:
        err["sex"] = ("Hãy chọn giới tính.", "Choose your sex.")
    id_number = _one(form, "id_number").replace(" ", "").upper()
    if not id_number:
        err["id_number"] = ("Hãy nhập số CCCD hoặc hộ chiếu.", "Enter your ID card (CCCD) or passport number.")
    elif clean_id_number(id_number) is None:
        err["id_number"] = ("Số CCCD gồm 12 chữ số; số hộ chiếu gồm 6–9 chữ và số.",
                            "A CCCD number has 12 digits; a passport number 6-9 letters and digits.")
    phone_raw = _one(form, "phone")
    phone = normal_phone(phone_raw) or ""
    if not _PHONE_SEPARATORS.sub("", phone_raw):
        err["phone"] = ("Hãy nhập số điện thoại.", "Enter your phone number.")
    elif not phone:
        err["phone"] = ("Số điện thoại gồm 10 chữ số, bắt đầu bằng 0.",
                        "A phone number has 10 digits and starts with 0.")
    province, commune = _one(form, "province"), _one(form, "commune")
    if divisions.province_name(province) is None:
        err["province"] = ("Hãy chọn tỉnh/thành phố.", "Choose your province or city.")
    elif divisions.commune_name(province, commune) is None:
        err["commune"] = ("Hãy chọn phường/xã thuộc tỉnh/thành phố đã chọn.",
                          "Choose a commune or ward of the chosen province.")
    street = " ".join(_one(form, "street").split())
    if len(street) > STREET_MAX:
        err["street"] = (f"Địa chỉ dài quá {STREET_MAX} ký tự.", f"The address is longer than {STREET_MAX} characters.")
    known = dict(divisions.provinces())
    travel = tuple(dict.fromkeys(str(v).strip() for v in form.get("travel", ()) if str(v).strip()))
    if len(travel) > MAX_TRAVEL or any(t not in known for t in travel):
        err["travel"] = ("Hãy chọn tỉnh/thành phố trong danh sách.", "Choose provinces from the list.")
    codes = {s[0] for s in SYMPTOMS}
    symptoms = tuple(dict.fromkeys(str(v).strip() for v in form.get("sym", ()) if str(v).strip()))
    no_symptoms = NO_SYMPTOMS in symptoms   # the form's explicit "no symptoms at all"
    symptoms = tuple(s for s in symptoms if s != NO_SYMPTOMS)
    if any(s not in codes for s in symptoms):
        err["sym"] = ("Hãy chọn triệu chứng trong danh sách.", "Choose symptoms from the list.")
    elif no_symptoms and symptoms:
        err["sym"] = ("Đã chọn “Không có triệu chứng nào” cùng với triệu chứng: hãy chọn một trong hai.",
                      "“No symptoms at all” is ticked together with symptoms: choose one or the other.")
    answers = {}
    for key in ("contact_case", "contact_area"):
        value = _one(form, key)
        if value not in ("yes", "no"):
            err[key] = ("Hãy trả lời Có hoặc Không.", "Answer Yes or No.")
        answers[key] = value == "yes"
    if _one(form, "consent") != "yes":
        err["consent"] = ("Hãy đánh dấu để cam kết khai báo trung thực.",
                          "Tick to confirm that what you declared is true.")
    venue = _one(form, "venue") or None
    if venue is not None and (len(venue) > 64 or not _venue_ok(venue)):
        err["venue"] = ("Mã địa điểm không hợp lệ.", "This venue code is not valid.")
    if err:
        return None, err
    return Declaration(name=name, dob=born.isoformat(), sex=sex, id_number=id_number, phone=phone,
                       province=province, commune=commune, street=street, travel=travel,
                       symptoms=symptoms, contact_case=answers["contact_case"],
                       contact_area=answers["contact_area"], venue=venue), {}


# --- issuing and recording --------------------------------------------------------------

@dataclass(frozen=True)
class Issued:
    text: str                 # the QR text, HD1:...
    name_masked: str
    declared_at: datetime
    status: str
    venue: str | None = None
    #: when this person last checked in at this venue, if within REPEAT_CHECK_IN: this
    #: declaration added no second check-in (a resubmitted form, the back button)
    repeat_of: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def clean_id_number(text: str) -> str | None:
    """An ID number as the form keeps it (spaces gone, upper case), or None when it is
    none of a CCCD (12 digits), an old CMND (9 digits) or a passport number.

        >>> clean_id_number(" 0791 9000 0123 "), clean_id_number("b1234567"), clean_id_number("12345")
        ('079190000123', 'B1234567', None)
    """
    value = text.replace(" ", "").upper()
    return value if _CCCD.match(value) or _CMND.match(value) or _PASSPORT.match(value) else None


def subject_keys(store: Any, id_number: str) -> list[str]:
    """Every subject key an ID number (cleaned) can be logged under: the web form's
    `hd1:<idh>` (its declarations and check-ins; the HD1 QR a kiosk scans), and for 12
    digits the chip ID card a kiosk reads, `cccd:<id>`."""
    key, _ = issuer_key(store)
    keys = ["hd1:" + hd1.hash_id(id_number, hd1.idh_key(key))]
    if _CCCD.match(id_number):
        keys.insert(0, f"cccd:{id_number}")
    return keys


def normal_phone(text: str) -> str | None:
    """A Vietnamese mobile number as 0 and nine digits, or None.

        >>> normal_phone("+84 90 123 4567"), normal_phone("090-123-4567"), normal_phone("12")
        ('0901234567', '0901234567', None)
    """
    m = _PHONE.match(_PHONE_SEPARATORS.sub("", text))
    return "0" + m.group(1) if m else None


def phone_key(store: Any, phone: str) -> str | None:
    """The keyed hash of a phone number: a roster person is cleared only by a declaration
    made with the roster's phone, not by anyone who knows their ID number (item 4)."""
    from kiosk.seal import subject_hash

    phone = normal_phone(phone)
    return subject_hash(store.tracing_key(), "phone:" + phone) if phone else None


def person_key(store: Any, id_number: str) -> str:
    """The person key the roster and the declarations share: HMAC of the ID number under
    the collector's tracing key (the ID itself is not stored in the clear)."""
    from kiosk.seal import subject_hash

    return subject_hash(store.tracing_key(), "id:" + id_number.strip().upper())


def _seal_public(private_b64: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private = X25519PrivateKey.from_private_bytes(base64.b64decode(private_b64, validate=True))
    return base64.b64encode(private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def issue(store: Any, decl: Declaration, *, now: datetime, seal_private_key: str = "") -> Issued:
    """Sign the declaration as HD1 with the collector's issuer key, record it (sealed) and,
    from a venue's QR, record a check-in at that venue that tracing sees."""
    from collector.tracing import person_key as entry_person_key
    from kiosk.model import mask_name
    from kiosk.seal import sealer_for

    ensure_tables(store.engine)
    key, kid = issuer_key(store)
    text = hd1.issue_declaration(
        key, kid, issuer=ISSUER_NAME, name=decl.name, dob=decl.dob, id_number=decl.id_number,
        phone=decl.phone, symptoms=decl.symptoms, contact=decl.contact_case, travel=decl.travel,
        status=decl.status, now=now, valid_for=VALID_FOR)
    idh = hd1.hash_id(decl.id_number, hd1.idh_key(key))
    masked = mask_name(decl.name) or ""
    personal = {"subject": "hd1:" + idh, "name": decl.name, "dob": decl.dob, "sex": decl.sex,
                "id_number": decl.id_number, "phone": decl.phone, "province": decl.province,
                "commune": decl.commune, "street": decl.street, "travel": list(decl.travel),
                "symptoms": list(decl.symptoms), "contact_case": decl.contact_case,
                "contact_area": decl.contact_area}
    sealed = None
    if seal_private_key:
        sealed = sealer_for(_seal_public(seal_private_key))(json.dumps(personal, ensure_ascii=False).encode())
    day, _ = local_day(now)
    pkey = person_key(store, decl.id_number)
    earlier = None
    if decl.venue:
        c = declarations.c
        with store.engine.connect() as conn:
            earlier = conn.execute(sa.select(sa.func.max(c.declared_at)).where(
                c.person_key == pkey, c.venue_code == decl.venue,
                c.declared_at >= _naive(now - REPEAT_CHECK_IN))).scalar()
    with store.engine.begin() as conn:
        conn.execute(declarations.insert().values(
            id=str(uuid.uuid4()), declared_at=_naive(now), day_local=day, province=decl.province,
            commune=decl.commune, venue_code=decl.venue, symptoms=bool(decl.symptoms),
            contact=decl.contact_case, status=decl.status, person_key=pkey,
            phone_key=phone_key(store, decl.phone), name_masked=masked, personal=sealed))
    if decl.venue and earlier is None:
        # The check-in as a kiosk would upload it: the identifier only inside the sealed
        # fields (without a seal key, the subject alone), the person key derived from it.
        row = {"id": str(uuid.uuid4()), "scanned_at": now, "device_id": FORM_DEVICE, "venue_code": decl.venue,
               "outcome": "pass" if decl.status == "green" else "review",
               "reason": "ok" if decl.status == "green" else ("symptoms" if decl.symptoms else "exposure"),
               "scheme": "hd1", "name_masked": masked, "override_of": None,
               "personal": sealed or json.dumps({"subject": "hd1:" + idh}), "sealed": sealed is not None}
        row["subject_hash"] = entry_person_key(row, seal_private_key=seal_private_key,
                                               tracing_key=store.tracing_key())
        store.insert_batch([row], batch_id=f"form-{row['id']}", now=now)
    return Issued(text=text, name_masked=masked, declared_at=now, status=decl.status, venue=decl.venue,
                  repeat_of=earlier.replace(tzinfo=timezone.utc) if earlier is not None else None)


def purge_personal(store: Any, *, before: datetime) -> int:
    """Retention: forget who declared before `before` (person key, masked name, sealed
    fields); the day's counts per commune stay. Returns how many were cleared."""
    ensure_tables(store.engine)
    c = declarations.c
    with store.engine.begin() as conn:
        return conn.execute(declarations.update().where(
            c.declared_at < _naive(before),
            c.person_key.is_not(None) | c.personal.is_not(None) | c.name_masked.is_not(None),
        ).values(person_key=None, personal=None, name_masked=None)).rowcount
