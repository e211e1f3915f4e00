"""State files that survive a pulled plug: never torn, never empty.

A file the kiosk keeps (its config, the CA it pins, the provisioning marker) is written
to a temporary file in the same folder, flushed and fsynced, renamed over the old one,
and then the folder itself is fsynced so the rename is on the card too. A power cut at
any point leaves either the old file or the new one, whole (`tests/test_power_cut.py`
cuts at every write and checks exactly that).

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(folder / "state.json", '{"n": 1}\\n')
    >>> (folder / "state.json").read_text()
    '{"n": 1}\\n'
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "replace_durably", "fsync_dir"]

log = logging.getLogger("kiosk.files")


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make renames, creations and removals in `folder` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync a directory; the rename stands
        log.debug("fsync %s: %s", folder, exc)
    finally:
        os.close(fd)


def replace_durably(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Rename the finished file `tmp` over `final`: fsync its data first (else the rename
    can reach the card before the bytes, and a cut leaves an empty file), then the folder."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    fsync_dir(Path(final).parent)


def atomic_write(path: str | os.PathLike, data: str | bytes, *, mode: int = 0o600,
                 gid: int | None = None, check: Callable[[Path], object] | None = None) -> None:
    """Replace `path` with `data` so that a power cut leaves the old or the new content.

    `check(tmp)` runs on the written temporary file before the rename; if it raises, the
    old file stays and the error goes to the caller. `gid` sets the group (as root only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if gid is not None and os.geteuid() == 0:
            os.chown(tmp, -1, gid)
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
