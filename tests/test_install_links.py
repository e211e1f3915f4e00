"""install.sh never follows a link planted by the kiosk user (issue 11).

The kiosk user owns /var/lib/kiosk and shares /etc/kiosk (group kiosk, 2770). Before the
fix, the upgrade's journal backup chowned whatever `/var/lib/kiosk/backup` pointed at to
the kiosk user and wrote into it, chowned the target of a planted `journal.db-wal`, and
the first config was written through a planted `/etc/kiosk/.kiosk.toml.new`, as root.

These run install.sh's own `backup_journal` and `write_config` (taken from the script, so
the test follows the script) in a Debian 12 root folder with the links planted; like
tests/test_install.py they need root, chroot and $KIOSK_TEST_DEBIAN_ROOT.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "install.sh"
ENV_ROOT = "KIOSK_TEST_DEBIAN_ROOT"


def _cannot_run(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must run this (.ci/run: scripts/test.sh as root builds the root folder)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    source = os.environ.get(ENV_ROOT)
    if not source:
        _cannot_run(f"no Debian 12 root folder: set ${ENV_ROOT} (see tests/test_install.py)")
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        _cannot_run("a root folder needs root and chroot")
    root = tmp_path_factory.mktemp("links") / "root"
    root.mkdir()
    if source.endswith((".tar", ".tar.gz", ".tgz")):
        subprocess.run(["tar", "-xf", source, "-C", str(root)], check=True)
    else:
        subprocess.run(["cp", "-a", f"{source}/.", str(root)], check=True)
    _chroot(root, "useradd", "--system", "--user-group", "--home-dir", "/var/lib/kiosk", "kiosk")
    # install_package's venv, as far as backup_journal needs it: a python.
    venv = root / "opt/kiosk/venv/bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to("/usr/bin/python3")
    return root


def _chroot(root: Path, *argv: str) -> str:
    return subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True, check=True).stdout


def _run_step(root: Path, step: str) -> subprocess.CompletedProcess:
    """Run one of install.sh's functions with the script's own settings and helpers."""
    text = SCRIPT.read_text()
    settings = text[text.index("PREFIX="):text.index("ROOT=\"\"")]
    helpers = "".join(re.search(rf"^{name}\(\) {{\n.*?^}}\n", text, re.S | re.M).group(0)
                      for name in ("target", "backup_journal", "write_config", "copy_if_changed"))
    one_liners = "".join(line + "\n" for line in text.splitlines() if re.match(r"^(say|die)\(\) ", line))
    program = (f"set -Eeuo pipefail\n{settings}\nROOT={root}\nSRC={ROOT}\nexport PYTHONDONTWRITEBYTECODE=1\n"
               f"{one_liners}{helpers}{step}\n")
    return subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})


def _victim(root: Path, name: str, *, folder: bool = False) -> Path:
    path = root / "etc" / name
    if folder:
        path.mkdir()
        (path / "keep").write_text("root's\n")
    else:
        path.write_text("root:secret\n")
    os.chown(path, 0, 0)
    return path


def _journal(root: Path, uid: int) -> Path:
    state = root / "var/lib/kiosk"
    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True)
    journal = state / "journal.db"
    with sqlite3.connect(journal) as db:
        db.execute("CREATE TABLE entries (id TEXT)")
        db.execute("INSERT INTO entries VALUES ('a')")
    db.close()
    for p in (state, journal):
        os.chown(p, uid, uid)
    return journal


def _uid(root: Path) -> int:
    return int(_chroot(root, "id", "-u", "kiosk"))


def test_a_planted_backup_link_is_not_followed(root):
    uid = _uid(root)
    journal = _journal(root, uid)
    victim = _victim(root, "victim-backup", folder=True)
    (journal.parent / "backup").symlink_to("/etc/victim-backup")
    result = _run_step(root, "backup_journal")
    assert result.returncode != 0 and "journal backup failed" in result.stderr
    assert victim.stat().st_uid == 0 and victim.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in victim.iterdir()) == ["keep"]  # nothing written through the link


def test_a_planted_wal_link_is_not_chowned(root):
    uid = _uid(root)
    journal = _journal(root, uid)
    victim = _victim(root, "victim-wal")
    # The chown ran outside the chroot: a link to the victim as this machine sees it.
    Path(str(journal) + "-wal").symlink_to(victim)
    _run_step(root, "backup_journal")
    assert victim.stat().st_uid == 0 and victim.read_text() == "root:secret\n"


def test_the_backup_is_made_as_the_kiosk_user(root):
    uid = _uid(root)
    journal = _journal(root, uid)
    result = _run_step(root, "backup_journal")
    assert result.returncode == 0, result.stderr
    (backup,) = (journal.parent / "backup").glob("journal-*.db")
    assert backup.stat().st_uid == uid and backup.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(backup) as db:
        assert db.execute("SELECT id FROM entries").fetchall() == [("a",)]
    db.close()


def test_a_planted_config_temp_link_is_not_followed(root):
    victim = _victim(root, "victim-config")
    conf = root / "etc/kiosk"
    if conf.exists():
        shutil.rmtree(conf)
    conf.mkdir(parents=True)
    (conf / ".kiosk.toml.new").symlink_to("/etc/victim-config")
    result = _run_step(root, "write_config")
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "root:secret\n" and victim.stat().st_uid == 0
    assert victim.stat().st_mode & 0o777 == 0o644
    written = conf / "kiosk.toml"
    assert written.is_file() and not written.is_symlink() and "[device]" in written.read_text()
