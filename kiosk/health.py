"""Disk health for the run loop, `kiosk doctor` and retention.

The journal must never be corrupted by a full disk: SQLite rolls a failed write back
and `Journal.record` raises JournalError, so nothing is signalled for an entry that was
not committed. This module tells the run loop, before that happens, that space is low,
so the screen and lights show the `disk_full` fault state; the fault clears by itself
when space returns (retention ran, a log was deleted).

    >>> disk_fault("/", min_free_bytes=0) is None
    True
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DISK_FULL", "MIN_FREE_BYTES", "WARN_FREE_BYTES", "DiskSpace", "disk_space",
           "disk_fault", "is_disk_full_error", "clock_synchronised_flag", "TIMESYNC_DIR"]

DISK_FULL = "disk_full"
#: Below this the kiosk shows `disk_full`: a day of entries at a busy gate is ~5 MB, and
#: SQLite needs room for its WAL and checkpoints.
MIN_FREE_BYTES = 32 * 1024 * 1024
#: Below this `kiosk doctor` warns.
WARN_FREE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class DiskSpace:
    path: str
    free: int
    total: int

    @property
    def free_fraction(self) -> float:
        return self.free / self.total if self.total else 0.0

    def describe(self) -> str:
        return f"{_human(self.free)} free of {_human(self.total)} on {self.path}"


def _existing(path: str | os.PathLike) -> Path:
    """The nearest existing folder at or above `path` (the journal may not exist yet)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def disk_space(path: str | os.PathLike) -> DiskSpace:
    """Free space (for an unprivileged writer) on the filesystem holding `path`."""
    where = _existing(path)
    usage = shutil.disk_usage(where)
    return DiskSpace(str(where), usage.free, usage.total)


def disk_fault(path: str | os.PathLike, *, min_free_bytes: int = MIN_FREE_BYTES) -> str | None:
    """`"disk_full"` when the filesystem holding `path` (the journal) has less than
    `min_free_bytes` free, else None. Cheap (one statvfs): call it every status period."""
    try:
        space = disk_space(path)
    except OSError:
        return None  # the journal's own error path reports a missing or broken disk
    return DISK_FULL if space.free < min_free_bytes else None


def is_disk_full_error(exc: BaseException) -> bool:
    """True when `exc` (or its cause) is SQLite's or the OS's "disk is full"."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        if isinstance(exc, sqlite3.OperationalError) and (
                getattr(exc, "sqlite_errorcode", None) == 13 or "full" in str(exc)):
            return True
        if "disk is full" in str(exc) or "database or disk is full" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


#: systemd-timesyncd's run-time folder; it holds `synchronized` once NTP has set the clock.
TIMESYNC_DIR = Path("/run/systemd/timesync")


def clock_synchronised_flag(folder: Path = TIMESYNC_DIR) -> bool | None:
    """True once systemd-timesyncd has synchronised the clock since boot, False while it
    has not, None where timesyncd does not run (unknown). One stat: cheap enough for the
    run loop's status refresh (timedatectl would need D-Bus)."""
    if not folder.is_dir():
        return None
    return (folder / "synchronized").exists()
