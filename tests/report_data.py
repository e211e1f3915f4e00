"""A province's day for the report tests (2026-03-02, Vietnam time): three registered
venues with Vietnamese names and one unregistered, four kiosks (one silent all day, one
whose clock runs 10 minutes ahead), a case (CCCD 079201001234) and the people near them.

    >>> EXPECTED["BV-CHORAY"]["entries"]
    8
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

from collector import venues

DAY = date(2026, 3, 2)
#: 16:30 Vietnam time on DAY: the default cut-off, and just after it.
CUTOFF = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
AFTER_CUTOFF = CUTOFF + timedelta(minutes=1)
ENROLLED = datetime(2026, 1, 1, tzinfo=timezone.utc)
CASE_ID = "079201001234"
VENUES = [
    {"venue_code": "BV-CHORAY", "name": "Bệnh viện Chợ Rẫy", "type": "hospital", "province": "TP. Hồ Chí Minh",
     "district": "Quận 5", "commune": "Phường 12"},
    {"venue_code": "CHO-BT", "name": "Chợ Bến Thành", "type": "market", "province": "TP. Hồ Chí Minh",
     "district": "Quận 1", "commune": "Phường Bến Thành"},
    {"venue_code": "THPT-LQD", "name": "Trường THPT Lê Quý Đôn", "type": "school", "province": "TP. Hồ Chí Minh",
     "district": "Quận 3", "commune": "Phường Võ Thị Sáu"},
]
KIOSKS = {"kiosk-choray-1": "BV-CHORAY", "kiosk-bt-1": "CHO-BT", "kiosk-lqd-1": "THPT-LQD", "kiosk-new-1": "V-NEW"}
SILENT = "kiosk-lqd-1"
CLOCK_AHEAD = "kiosk-bt-1"
#: What the collector must report for DAY (entries scanned before the cut-off).
EXPECTED = {
    "BV-CHORAY": {"entries": 8, "passes": 5, "fails": 2, "reviews": 1, "overrides": 1,
                  "fail_expired": 1, "fail_unknown_key": 1, "review_identity_only": 1},
    "CHO-BT": {"entries": 5, "passes": 4, "fails": 0, "reviews": 1, "overrides": 0, "review_identity_only": 1},
    "V-NEW": {"entries": 1, "passes": 1, "fails": 0, "reviews": 0, "overrides": 0},
}
TOTAL = {"entries": 14, "passes": 10, "fails": 2, "reviews": 2, "overrides": 1}


def _local(hour: int, minute: int) -> datetime:
    """DAY at hour:minute Vietnam time, as UTC."""
    return datetime(2026, 3, 2, hour, minute, tzinfo=timezone(timedelta(hours=7))).astimezone(timezone.utc)


def _entry(device: str, at: datetime, outcome: str, reason: str, *, subject: str | None = None,
           name: str | None = None, override_of: str | None = None) -> dict:
    return {"id": str(uuid.uuid4()), "device_id": device, "venue_code": KIOSKS[device], "scanned_at": at,
            "outcome": outcome, "reason": reason, "scheme": "cccd" if subject else "dcc",
            "subject_hash": subject, "name_masked": name, "personal": None, "sealed": False,
            "override_of": override_of}


def fill(store) -> None:
    """Registry, enrolments and the day's uploads (each batch received a minute after its
    last scan, except the kiosk whose clock runs ahead)."""
    from kiosk.seal import subject_hash

    venues.import_csv(store, "venue_code,name,type,province,district,commune\n" + "".join(
        ",".join(v[k] for k in venues.FIELDS) + "\n" for v in VENUES), now=ENROLLED)
    for device, venue in KIOSKS.items():
        store.enrol(device, store.create_enrol_code(device, now=ENROLLED, venue=venue), now=ENROLLED)
    key = store.tracing_key()
    case = subject_hash(key, f"cccd:{CASE_ID}")
    near = [subject_hash(key, f"cccd:0792010099{i:02d}") for i in range(3)]
    c = "kiosk-choray-1"
    morning = [
        _entry(c, _local(8, 10), "pass", "ok", subject=case, name="Nguyễn V*** A"),
        _entry(c, _local(8, 15), "pass", "ok", subject=near[0], name="Trần T*** B"),
        _entry(c, _local(8, 20), "pass", "ok", subject=near[1], name="Lê V*** C"),
        _entry(c, _local(8, 25), "fail", "expired"),
        _entry(c, _local(8, 30), "review", "identity_only", subject=near[2], name="Phạm T*** D"),
    ]
    later = [
        _entry(c, _local(9, 5), "pass", "ok"), _entry(c, _local(9, 10), "pass", "ok"),
        _entry(c, _local(9, 20), "fail", "unknown_key"),
    ]
    later.append(_entry(c, _local(9, 21), "pass", "override", override_of=later[-1]["id"]))
    for batch in (morning, later):
        store.insert_batch(batch, batch_id=str(uuid.uuid4()), now=batch[-1]["scanned_at"] + timedelta(minutes=1))
    bt = [_entry(CLOCK_AHEAD, _local(10, m), "pass", "ok") for m in (0, 5, 10, 15)]
    bt.append(_entry(CLOCK_AHEAD, _local(10, 20), "review", "identity_only"))
    store.insert_batch(bt, batch_id="bt", now=bt[-1]["scanned_at"] - timedelta(minutes=10))
    new = [_entry("kiosk-new-1", _local(11, 0), "pass", "ok")]
    store.insert_batch(new, batch_id="new", now=new[0]["scanned_at"] + timedelta(seconds=30))
    # The silent kiosk uploaded the day before, not on DAY.
    old = [_entry(SILENT, _local(8, 0) - timedelta(days=1), "pass", "ok")]
    store.insert_batch(old, batch_id="old", now=old[0]["scanned_at"] + timedelta(minutes=1))


def fill_after_cutoff(store) -> None:
    """Two passes at BV-CHORAY scanned at 17:00 and 18:00: after the 16:30 cut-off."""
    late = [_entry("kiosk-choray-1", _local(17, 0), "pass", "ok"), _entry("kiosk-choray-1", _local(18, 0), "pass", "ok")]
    store.insert_batch(late, batch_id="late", now=late[-1]["scanned_at"] + timedelta(minutes=1))
