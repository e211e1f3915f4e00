"""The collector forgets too: personal fields past the tracing window are purged by
`collector retention` (collector-retention.timer); the report's counts stay (issue 11)."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from collector import cli
from collector_helpers import ENGINES, open_store
from kiosk.seal import subject_hash

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _row(at: datetime, subject: str) -> dict:
    return {"id": str(uuid.uuid4()), "scanned_at": at, "device_id": "kiosk-1", "venue_code": "V1",
            "outcome": "pass", "reason": "ok", "scheme": "cccd", "name_masked": "Nguyễn V*** A",
            "personal": json.dumps({"subject": subject, "name": "Nguyễn Văn An"}), "sealed": False,
            "subject_hash": subject_hash("00" * 32, subject)}


@pytest.mark.parametrize("engine", ENGINES)
def test_personal_fields_older_than_the_window_are_purged_and_counts_stay(engine, tmp_path, capsys):
    store = open_store(engine, tmp_path)
    try:
        old_day = NOW - timedelta(days=30)
        store.insert_batch([_row(old_day, "cccd:079201000001"), _row(NOW - timedelta(days=2), "cccd:079201000002")],
                           batch_id="b", now=NOW)
        before = store.day_counts(date.fromisoformat(store.visits(venue="V1", start=old_day - timedelta(hours=1),
                                                                  end=old_day + timedelta(hours=1))[0]["day_local"]))
        assert cli.main(["retention", "--db", store.url]) == 0  # default: 21 days
        assert "cleared the personal fields of 1 entries older than 21 days" in capsys.readouterr().out
        rows = {r["scanned_at"].date(): r for r in store.visits(venue="V1", start=NOW - timedelta(days=40), end=NOW)}
        old, recent = rows[old_day.date()], rows[(NOW - timedelta(days=2)).date()]
        assert (old["personal"], old["subject_hash"], old["name_masked"]) == (None, None, None)
        assert json.loads(recent["personal"])["name"] == "Nguyễn Văn An" and recent["subject_hash"]
        after = store.day_counts(date.fromisoformat(old["day_local"]))
        assert after == before and after  # the report still counts the forgotten entry
        assert cli.main(["retention", "--days", "1", "--db", store.url]) == 0
        assert "of 1 entries older than 1 days" in capsys.readouterr().out
    finally:
        store.close()
