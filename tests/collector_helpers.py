"""Run the real collector for tests: uvicorn in a thread on a free loopback port, over
SQLite (a file in tmp_path) or PostgreSQL ($KIOSK_TEST_PG_URL, started by
.ci/start-postgres). Under CI=true a missing PostgreSQL fails the test instead of skipping."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from collector.local import LocalCollector
from kiosk.checks.signed import generate_private_key, peek, public_key_text, sign_document

#: The tests' health department publishing key; kiosks under test pin its public half.
PUBLISHER = generate_private_key()
PUBLISHER_KEY = public_key_text(PUBLISHER)
PG_ENV = "KIOSK_TEST_PG_URL"
ADMIN_TOKEN = "test-admin-token-at-least-32-characters"
DEVICE = "kiosk-1"
ENGINES = ("sqlite", "postgresql")
#: When test devices are enrolled: before every fixture's scan times.
ENROLLED = datetime(2026, 1, 1, tzinfo=timezone.utc)


def pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        message = f"PostgreSQL not configured: set {PG_ENV} (eval \"$(.ci/start-postgres)\")"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


def db_url_for(engine: str, tmp_path: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'collector.db'}"
    return pg_url()


def open_store(engine: str, tmp_path: Path):
    """A Store on an empty database. On PostgreSQL each test gets its own schema (dropped
    on close), so concurrent test runs on one server cannot see each other's rows."""
    from collector.storage import Store

    if engine == "sqlite":
        return Store(db_url_for(engine, tmp_path))
    import sqlalchemy as sa

    from collector.storage import normalise_url

    base = normalise_url(pg_url())
    schema = "t_" + uuid.uuid4().hex[:16]
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    store = Store(f"{base}{sep}options=-csearch_path%3D{schema}")
    plain_close = store.close

    def close() -> None:
        plain_close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    store.close = close
    return store


class RunningCollector(LocalCollector):
    """The real collector app served by uvicorn in a background thread, with the test
    admin token."""

    def __init__(self, store, *, publisher=PUBLISHER, **config) -> None:
        super().__init__(store, admin_token=ADMIN_TOKEN, publisher=publisher, **config)

    def token(self, device: str = DEVICE, *, venue: str = "V1", since: datetime = ENROLLED) -> str:
        """A token for `device` bound to `venue`, enrolled at `since` (before the fixtures' times)."""
        return super().token(device, venue=venue, since=since)

    def __enter__(self) -> "RunningCollector":
        return self


@pytest.fixture(name="collector")
def sqlite_collector(tmp_path):
    """The real collector over SQLite in tmp_path (`from collector_helpers import
    sqlite_collector` gives a test module the `collector` fixture)."""
    store = open_store("sqlite", tmp_path)
    with RunningCollector(store) as running:
        yield running
    store.close()


def fill_journal(journal, n: int, *, venue: str = "V1", device: str = DEVICE,
                 start: datetime | None = None, step: timedelta = timedelta(seconds=7)) -> list[str]:
    """Record n distinct entries (a mix of verdicts) and return their ids."""
    from kiosk.model import Credential, Outcome, Reason, Scan, Verdict

    start = start or datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
    verdicts = [Verdict(Outcome.PASS, Reason.OK, "dcc", "Nguyễn V*** A"),
                Verdict(Outcome.FAIL, Reason.EXPIRED, "dcc"),
                Verdict(Outcome.REVIEW, Reason.IDENTITY_ONLY, "cccd")]
    ids = []
    with journal.atomic():  # one transaction: fast fixtures, same rows as one by one
        for i in range(n):
            scan = Scan(f"code-{uuid.uuid4()}", source="test", engine="test", at=start + i * step)
            cred = Credential(scheme="cccd", subject_key=f"person-{i}", personal={"name": f"Person {i}"})
            entry = journal.record(scan, verdicts[i % 3], cred, venue=venue, device=device)
            ids.append(entry.id)
    return ids


def publish_raw(store, name: str, body: bytes, *, now: datetime, content_type: str = "application/json",
                key=PUBLISHER, valid_for: timedelta | None = None, version: int | None = None):
    """Sign and store a document WITHOUT the collector's validation (a document the kiosk
    itself must refuse), as the next version unless told."""
    if version is None:
        held = store.document(name)
        version = peek(held.body).version + 1 if held else 1
    signed = sign_document(name, body, key, version=version, now=now, valid_for=valid_for,
                           content_type=content_type)
    return store.publish(name, signed, content_type="application/cose", now=now)
