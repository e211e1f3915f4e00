"""Retention keeps the journal bounded without ever losing an unsent entry, and a full
disk is a clear fault that does not corrupt the journal and clears when space returns."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk import health, retention
from kiosk.config import load_config
from kiosk.errors import JournalError
from kiosk.journal import Journal
from kiosk.model import Outcome, Reason, Scan, Verdict

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
_SERIAL = itertools.count()
PASS = Verdict(Outcome.PASS, Reason.OK, "dcc", "Nguyễn V*** A")


def _record(journal: Journal, at: datetime, n: int = 1, *, pad: int = 0) -> list[str]:
    ids = []
    for _ in range(n):
        scan = Scan(text=f"code-{next(_SERIAL)}-" + "x" * pad, source="camera", engine="zxing", at=at)
        ids.append(journal.record(scan, PASS, venue="V1", device="D1").id)
    return ids


def _cfg(path: Path, days: int = 21):
    return load_config(None, search=False, overrides={"journal.path": str(path), "journal.retention_days": days})


def test_purges_only_uploaded_entries_older_than_the_window(journal_path: Path) -> None:
    with Journal(journal_path) as j:
        old_sent = _record(j, NOW - timedelta(days=30), 3)
        old_unsent = _record(j, NOW - timedelta(days=30), 2)
        new_sent = _record(j, NOW - timedelta(days=2), 2)
        j.mark_sent(old_sent + new_sent, now=NOW)
    report = retention.run_retention(_cfg(journal_path), now=NOW)
    assert report.purged == 3
    with Journal(journal_path) as j:
        left = {e.id for e in j.entries()}
        assert left == set(old_unsent + new_sent)
        assert j.integrity() == "ok"


def test_retention_window_comes_from_the_config(journal_path: Path) -> None:
    with Journal(journal_path) as j:
        ids = _record(j, NOW - timedelta(days=10), 2)
        j.mark_sent(ids, now=NOW)
    assert retention.run_retention(_cfg(journal_path, days=21), now=NOW).purged == 0
    assert retention.run_retention(_cfg(journal_path, days=7), now=NOW).purged == 2


def test_compaction_gives_the_space_back(journal_path: Path) -> None:
    with Journal(journal_path) as j:
        ids = _record(j, NOW - timedelta(days=40), 3000, pad=200)
        j.mark_sent(ids, now=NOW)
    # A test-sized journal: compact once 64 kB are free (production waits for 4 MB).
    report = retention.run_retention(_cfg(journal_path), now=NOW, min_free_bytes=64 * 1024)
    assert report.purged == 3000 and report.vacuumed
    assert report.size_after < report.size_before / 4
    # Nothing left to compact the second time.
    again = retention.run_retention(_cfg(journal_path), now=NOW, min_free_bytes=64 * 1024)
    assert again.purged == 0 and not again.vacuumed


def test_no_journal_yet_is_not_an_error(tmp_path: Path) -> None:
    report = retention.run_retention(_cfg(tmp_path / "none.db"), now=NOW)
    assert report.note == "no journal yet"
    assert not (tmp_path / "none.db").exists()


def test_retention_command_prints_a_report(journal_path: Path, capsys) -> None:
    from kiosk.cli import retention as retention_cli

    with Journal(journal_path) as j:
        j.mark_sent(_record(j, NOW - timedelta(days=400), 4), now=NOW)
    parser = argparse.ArgumentParser(prog="kiosk")
    parser.add_argument("--config")
    parser.add_argument("--set", dest="overrides", type=lambda s: tuple(s.split("=", 1)), action="append")
    sub = parser.add_subparsers(dest="command", required=True)
    retention_cli.register(sub)
    args = parser.parse_args(["retention", "--json"])
    args.overrides = {"journal.path": str(journal_path)}
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["purged"] == 4


# --- disk full, on a real (tiny) filesystem ---------------------------------------

TINY_FS = "768k"


@contextlib.contextmanager
def tiny_filesystem():
    """A real 768 kB tmpfs (needs root and mount); skips where the machine forbids it."""
    folder = tempfile.mkdtemp(prefix="kiosk-tinyfs-")
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TINY_FS},mode=0700", "tmpfs", folder],
                                capture_output=True, text=True)
    except FileNotFoundError:
        result = None
    if result is None or result.returncode != 0:
        os.rmdir(folder)
        pytest.skip("cannot mount a tmpfs here (needs root): " + (result.stderr.strip() if result else "no mount"))
    try:
        yield Path(folder)
    finally:
        subprocess.run(["umount", "--lazy", folder], check=False)
        os.rmdir(folder)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass  # ENOSPC: the filesystem is full now
    return filler


def test_disk_full_is_a_fault_without_corruption_and_recovers() -> None:
    with tiny_filesystem() as fs:
        path = fs / "journal.db"
        limit = 64 * 1024
        with Journal(path) as j:  # the run loop keeps its journal open
            kept = _record(j, NOW, 5)
            assert health.disk_fault(path, min_free_bytes=limit) is None

            filler = _fill(fs)
            assert health.disk_fault(path, min_free_bytes=limit) == health.DISK_FULL
            refused = None
            for i in range(200):  # keep writing until SQLite itself hits the wall
                try:
                    _record(j, NOW + timedelta(seconds=i), 1, pad=2000)
                except JournalError as exc:
                    refused = exc
                    break
            assert refused is not None, "the disk never filled"
            assert health.is_disk_full_error(refused), refused
            committed = len(j.entries())
            assert j.integrity() == "ok"

            filler.unlink()  # space returns: the same open journal writes again
            assert health.disk_fault(path, min_free_bytes=limit) is None
            _record(j, NOW + timedelta(hours=1), 3)
        with Journal(path) as j:
            assert j.integrity() == "ok"
            ids = {e.id for e in j.entries()}
            assert len(ids) == committed + 3
            assert set(kept) <= ids
