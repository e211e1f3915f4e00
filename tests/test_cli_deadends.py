"""Issue 17: a technician following the README never meets a dead end. Each test runs the
real `kiosk` command in a subprocess, as a user would, with its own state folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CCCD = "079201001234|025123456|Nguyễn Thị Hoa|15081990|Nữ|12 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh|01022022"


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "KIOSK_CONFIG",
                                                            "NOTIFY_SOCKET")}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy",
               PYTHONUNBUFFERED="1")
    return env


def kiosk(tmp_path: Path, *args: str, input: str | None = None, timeout: float = 120,
          module: str = "kiosk.cli") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          input=input, cwd=tmp_path, env=env_for(tmp_path), timeout=timeout)


def verdict_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if any(m in line for m in ("PASS", "FAIL", "REVIEW"))]


# --- kiosk run on the defaults --------------------------------------------------------------

def test_run_on_the_defaults_replays_the_demo_frames_and_says_so_in_one_line(tmp_path):
    result = kiosk(tmp_path, "--set", f"journal.path={tmp_path / 'run.db'}", "run", "--headless",
                   "--max-scans", "3")
    assert result.returncode == 0, result.stderr
    assert len(verdict_lines(result.stdout)) == 3
    said = [line for line in result.stderr.splitlines() if "demo frames" in line]
    assert len(said) == 1 and "scanner.replay_path is empty" in said[0] and "scanner.kind" in said[0]


def test_config_and_set_are_accepted_after_the_subcommand(tmp_path):
    cam = tmp_path / "cam.toml"
    cam.write_text(f'[scanner]\nkind = "stdin"\n[journal]\npath = "{tmp_path / "j.db"}"\n', encoding="utf-8")
    result = kiosk(tmp_path, "run", "--config", str(cam), "--headless", "--set", "venue.name=Chợ Bến Thành",
                   input=CCCD + "\n")
    assert result.returncode == 0, result.stderr
    assert len(verdict_lines(result.stdout)) == 1
    shown = kiosk(tmp_path, "--set", "venue.code=A", "config", "show", "--config", str(cam), "--set", "venue.name=B")
    assert shown.returncode == 0, shown.stderr
    assert 'code = "A"' in shown.stdout and 'name = "B"' in shown.stdout and 'kind = "stdin"' in shown.stdout


def test_max_scans_counts_codes_so_a_held_up_code_still_stops_the_run(tmp_path):
    """The same code read again and again is logged once; --max-scans 3 must still stop."""
    import segno

    frames = tmp_path / "frames"
    frames.mkdir()
    segno.make(CCCD, error="m").save(str(frames / "frame-001.png"), scale=8, border=4)
    result = kiosk(tmp_path, "--set", f"journal.path={tmp_path / 'j.db'}", "--set", f"scanner.replay_path={frames}",
                   "--set", "scanner.replay_loop=true", "--set", "scanner.replay_interval_s=0.05",
                   "run", "--headless", "--max-scans", "3", timeout=30)
    assert result.returncode == 0, result.stderr
    assert len(verdict_lines(result.stdout)) == 1  # one person, one verdict


# --- errors name their source ---------------------------------------------------------------

def test_a_typo_in_set_is_blamed_on_the_set_not_on_the_defaults(tmp_path):
    result = kiosk(tmp_path, "--set", "venue.nmae=x", "config", "check")
    assert result.returncode == 2
    assert "--set venue.nmae" in result.stderr and "<built-in defaults>" not in result.stderr
    assert "allowed keys in [venue]" in result.stderr
    bad = kiosk(tmp_path, "config", "check", "--set", "display.size=640x480")
    assert bad.returncode == 2 and "--set display.size" in bad.stderr and "800x480" in bad.stderr


# --- kiosk demo -----------------------------------------------------------------------------

def test_demo_refuses_a_config_file_and_a_collector_it_would_not_use(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text("", encoding="utf-8")
    result = kiosk(tmp_path, "demo", "--headless", "--config", str(cfg))
    assert result.returncode == 2 and "--config" in result.stderr and "kiosk run --config" in result.stderr
    result = kiosk(tmp_path, "demo", "--headless", "--set", "sync.collector_url=http://127.0.0.1:9")
    assert result.returncode == 2
    assert "--set sync.collector_url" in result.stderr and "local collector" in result.stderr


def test_demo_state_lives_in_a_folder_of_this_checkout_and_says_where(tmp_path):
    result = kiosk(tmp_path, "demo", "--headless", "--no-collector", "--interval", "0.01")
    assert result.returncode == 0, result.stderr
    from kiosk.demo.runner import checkout_key

    where = [line for line in result.stdout.splitlines() if line.startswith("demo: built-in defaults")]
    assert len(where) == 1
    state = tmp_path / "state" / "kiosk" / "demo" / checkout_key()
    assert f"state in {state} " in where[0]
    assert (state / "journal.db").exists()
    assert "repeat, not logged again" not in result.stdout  # a new place: nothing from an earlier run


# --- stopping and starting ------------------------------------------------------------------

def notify_socket(tmp_path: Path):
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(60)
    return sock


def run_argv(tmp_path: Path, **overrides: object) -> list[str]:
    argv = [sys.executable, "-m", "kiosk.cli", "run", "--headless"]
    for key, value in {"journal.path": tmp_path / "j.db", **overrides}.items():
        argv += ["--set", f"{key}={value}"]
    return argv


#: How long systemd may wait for a stopped kiosk: the issue asks for "within a second";
#: the margin is for a loaded 2-core test machine, not for the kiosk.
STOP_DEADLINE_S = 2.0


def stop_when_ready(proc, sock, before=lambda: None) -> tuple[int, str]:
    """Wait for the kiosk's READY=1, run `before`, send SIGTERM and wait at most
    STOP_DEADLINE_S: (exit code, stderr). The kiosk is killed if it has not stopped."""
    import signal

    try:
        while sock.recv(4096) != b"READY=1":
            pass
        before()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=STOP_DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    return rc, proc.stderr.read().decode()


def test_sigterm_stops_a_kiosk_reading_stdin_with_exit_0(tmp_path):
    """Was: exit -6, "Fatal Python error: _enter_buffered_busy" (a daemon thread blocked
    in a buffered read of stdin at interpreter shutdown)."""
    import time

    sock = notify_socket(tmp_path)
    env = {**env_for(tmp_path), "NOTIFY_SOCKET": str(tmp_path / "notify")}
    proc = subprocess.Popen(run_argv(tmp_path, **{"scanner.kind": "stdin"}), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)

    def feed_one_code():
        proc.stdin.write((CCCD + "\n").encode())
        proc.stdin.flush()
        assert verdict_lines(proc.stdout.readline().decode())  # it read the code
        time.sleep(0.2)
    rc, err = stop_when_ready(proc, sock, before=feed_one_code)
    assert rc == 0, err
    assert "Fatal Python error" not in err


@pytest.mark.parametrize("source", ["replay", "serial", "camera-file"])
def test_sigterm_stops_every_source_with_exit_0(tmp_path, source, scanner_pty):
    import segno

    frames = tmp_path / "frames"
    frames.mkdir()
    segno.make(CCCD, error="m").save(str(frames / "frame-001.png"), scale=8, border=4)
    overrides = {
        "replay": {"scanner.kind": "replay", "scanner.replay_path": frames, "scanner.replay_loop": "true"},
        "serial": {"scanner.kind": "serial", "scanner.serial_port": scanner_pty[1]},
        # OpenCV reading a still as a one-frame "video": the camera source's own loop.
        "camera-file": {"scanner.kind": "camera", "scanner.camera": frames / "frame-001.png"},
    }[source]
    sock = notify_socket(tmp_path)
    env = {**env_for(tmp_path), "NOTIFY_SOCKET": str(tmp_path / "notify")}
    proc = subprocess.Popen(run_argv(tmp_path, **overrides), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=tmp_path)
    rc, err = stop_when_ready(proc, sock)
    assert rc == 0, err
    assert "Fatal Python error" not in err and "Traceback" not in err


def test_ready_is_sent_only_once_the_scanner_is_open(tmp_path, scanner_pty):
    """READY=1 went out before the scanner thread had opened the port: systemd marked the
    kiosk active while it could not yet read a code."""
    master, port = scanner_pty
    sock = notify_socket(tmp_path)
    env = {**env_for(tmp_path), "NOTIFY_SOCKET": str(tmp_path / "notify")}
    proc = subprocess.Popen(run_argv(tmp_path, **{"scanner.kind": "serial", "scanner.serial_port": port}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    try:
        first = sock.recv(4096)
        open_then = {os.path.realpath(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")}
        assert first == b"READY=1"
        assert port in open_then, "READY=1 came before the scanner port was open"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        sock.close()


# --- help: every command and subcommand has one, with an example ------------------------------

def _commands(parser, path=()):
    """(command path, its parser) for every command and subcommand, depth first."""
    import argparse

    for action in parser._actions:  # noqa: SLF001 - argparse offers no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, child in action.choices.items():
                yield (*path, name), child
                yield from _commands(child, (*path, name))


def _all_commands():
    from collector.cli import build_parser as collector_parser
    from kiosk.cli import build_parser as kiosk_parser

    return ([("kiosk.cli", c) for c, _ in _commands(kiosk_parser())]
            + [("collector.cli", c) for c, _ in _commands(collector_parser())])


@pytest.mark.parametrize("module,command", [("kiosk.cli", ()), ("collector.cli", ()), *_all_commands()],
                         ids=lambda v: " ".join(v) if isinstance(v, tuple) else v.split(".")[0])
def test_every_command_has_help_with_an_example(capsys, module, command):
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "Example: " in out, f"{module} {' '.join(command)} --help has no example"
    prog = "kiosk" if module == "kiosk.cli" else "collector"
    assert out.split("Example: ", 1)[1].lstrip().startswith(prog), "the example is a command line"


def test_version_of_both_commands(tmp_path):
    for module, prog in (("kiosk.cli", "kiosk"), ("collector.cli", "collector")):
        result = kiosk(tmp_path, "--version", module=module)
        assert result.returncode == 0 and result.stdout.startswith(prog + " "), result.stderr


def test_make_qr_has_one_device_flag():
    from kiosk.cli import build_parser

    make_qr = dict(_commands(build_parser()))[("provision", "make-qr")]
    flags = {s for a in make_qr._actions for s in a.option_strings}  # noqa: SLF001
    assert "--device" in flags and "--device-id" not in flags



# --- screens, journal, keys: one-line errors and outputs that fit together ----------------------

def test_screens_into_an_impossible_folder_or_at_an_unknown_size_is_a_one_line_error(tmp_path):
    result = kiosk(tmp_path, "screens", "--out", "/proc/nope", "--size", "800x480")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "--out /proc/nope" in result.stderr
    result = kiosk(tmp_path, "screens", "--out", str(tmp_path / "s"), "--size", "640x480")
    assert result.returncode == 2 and "--size 640x480" in result.stderr
    assert "800x480, 1024x600, 1920x1080" in result.stderr
    assert not (tmp_path / "s").exists()


def test_a_journal_whose_folder_is_a_file_says_so(tmp_path):
    (tmp_path / "afile").write_text("", encoding="utf-8")
    result = kiosk(tmp_path, "--set", f"journal.path={tmp_path / 'afile' / 'j.db'}", "journal")
    assert result.returncode == 2
    assert f"{tmp_path / 'afile'} is a file, not a folder" in result.stderr
    assert "File exists" not in result.stderr


def test_the_keygen_entry_is_taken_by_check_and_trust_import(tmp_path):
    keygen = kiosk(tmp_path, "declaration", "keygen", "--out", str(tmp_path / "issuer.pem"))
    assert keygen.returncode == 0, keygen.stderr
    (tmp_path / "entry.json").write_text(keygen.stdout, encoding="utf-8")
    issued = kiosk(tmp_path, "declaration", "issue", "--key", str(tmp_path / "issuer.pem"), "--issuer", "Sở Y tế",
                   "--name", "Trần Thị Mai", "--dob", "1990-04-30", "--id", "079190000123", "--phone", "0901234567")
    assert issued.returncode == 0, issued.stderr
    checked = kiosk(tmp_path, "check", "--trust", str(tmp_path / "entry.json"), "--no-rules", issued.stdout.strip())
    assert checked.returncode == 0 and checked.stdout.startswith("pass"), checked.stdout + checked.stderr
    imported = kiosk(tmp_path, "--set", f"journal.path={tmp_path / 'j.db'}", "trust", "import",
                     str(tmp_path / "entry.json"))
    assert imported.returncode == 0 and "1 keys imported" in imported.stdout, imported.stderr


def test_check_says_why_asdf_fails_and_abc123_goes_to_review_and_lists_its_exit_codes(tmp_path):
    result = kiosk(tmp_path, "check", "--no-rules", "asdf", "abc123")
    assert result.returncode == 1
    fail, review = result.stdout.splitlines()
    assert fail.startswith("fail") and "not a code the kiosk knows" in fail and "6 to" in fail
    assert review.startswith("review") and "cannot be verified offline" in review
    helped = kiosk(tmp_path, "check", "--help")
    assert "Exit codes: 0" in helped.stdout and "1 at least one failed" in helped.stdout


# --- scripts/test.sh's PostgreSQL: one per checkout, never someone else's ----------------------

def _postgres_installed() -> bool:
    import glob
    import shutil

    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb"))


@pytest.mark.skipif(not _postgres_installed() and os.environ.get("CI") != "true",
                    reason="PostgreSQL not installed (scripts/test.sh installs it)")
def test_each_checkout_starts_its_own_postgres_and_refuses_a_foreign_one(tmp_path):
    import re
    import shutil

    urls, dirs = {}, []
    for name in ("a", "b"):
        (tmp_path / name / ".ci").mkdir(parents=True)
        shutil.copy(ROOT / ".ci" / "start-postgres", tmp_path / name / ".ci" / "start-postgres")

    def start(name: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(tmp_path / name / ".ci" / "start-postgres"), *env.pop("args", ())],
                              capture_output=True, text=True, timeout=120, env={**os.environ, **env})

    try:
        first = start("a")
        assert first.returncode == 0, first.stderr
        urls["a"] = first.stdout.strip()
        dirs.append(re.search(r"(/tmp/kiosk-pg-\d+)", first.stderr).group(1))
        again = start("a")
        assert again.stdout.strip() == urls["a"] and "this checkout's server" in again.stderr
        port = re.search(r":(\d+)/", urls["a"]).group(1)
        foreign = start("b", KIOSK_PG_PORT=port)
        assert foreign.returncode == 1 and "not reusing it" in foreign.stderr
        own = start("b")
        assert own.returncode == 0 and own.stdout.strip() != urls["a"], own.stderr
        dirs.append(re.search(r"(/tmp/kiosk-pg-\d+)", own.stderr).group(1))
    finally:
        for name in ("a", "b"):
            start(name, args=("--stop",))
        for folder in dirs:
            shutil.rmtree(folder, ignore_errors=True)
    probe = subprocess.run(["bash", "-c", f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null"])
    assert probe.returncode != 0, "the server still answers after --stop"


def test_scripts_test_sh_stops_the_postgres_it_started_unless_keep_pg():
    text = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert "trap '.ci/start-postgres --stop' EXIT" in text and 'KEEP_PG:-0}" != 1' in text
    assert "exec .venv/bin/python -m pytest" not in text  # exec would skip the trap


# --- progress on a terminal, quiet in journald ----------------------------------------------

def run_on_a_terminal(tmp_path: Path, *args: str) -> tuple[int, str]:
    """Run kiosk with stdout and stderr on a pty, as in a technician's terminal."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", *args], stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, cwd=tmp_path, env=env_for(tmp_path))
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=60), out.decode(errors="replace")


def test_a_large_revocation_import_shows_progress_on_a_terminal_only(tmp_path):
    import hashlib

    keygen = kiosk(tmp_path, "declaration", "keygen", "--out", str(tmp_path / "issuer.pem"))
    (tmp_path / "entry.json").write_text(keygen.stdout, encoding="utf-8")
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(22_000)]
    (tmp_path / "revoked.txt").write_text("\n".join(hashes) + "\n", encoding="utf-8")
    args = ("--set", f"journal.path={tmp_path / 'j.db'}", "trust", "import", str(tmp_path / "entry.json"),
            "--revocations", str(tmp_path / "revoked.txt"))
    rc, shown = run_on_a_terminal(tmp_path, *args)
    assert rc == 0, shown
    assert "revocations: 5,000/22,000 (22%)" in shown and "revocations: 22,000/22,000 (100%)" in shown
    quiet = kiosk(tmp_path, *args)  # stdout a pipe, as under systemd
    assert quiet.returncode == 0 and "22000 revocations" in quiet.stdout
    assert "revocations:" not in quiet.stdout + quiet.stderr


def test_sync_once_shows_the_backlog_draining_on_a_terminal(tmp_path):
    from datetime import datetime, timedelta, timezone

    pytest.importorskip("collector.local")
    from collector.local import LocalCollector
    from collector.storage import Store

    journal = tmp_path / "j.db"
    codes = "".join(f"APPCODE-{i:05d}\n" for i in range(450))
    logged = kiosk(tmp_path, "--set", f"journal.path={journal}", "--set", "scanner.kind=stdin", "run",
                   "--headless", input=codes)
    assert logged.returncode == 0, logged.stderr
    with Store(f"sqlite:///{tmp_path / 'collector.db'}") as store, LocalCollector(store) as collector:
        token = collector.token("demo-kiosk", venue="DEMO-001",
                                since=datetime.now(timezone.utc) - timedelta(hours=1))
        rc, shown = run_on_a_terminal(tmp_path, "--set", f"journal.path={journal}", "--set",
                                      f"sync.collector_url={collector.url}", "--set", f"sync.device_token={token}",
                                      "--set", "sync.batch_size=100", "sync", "--once", "--no-fetch")
        assert rc == 0, shown
        assert "uploaded: 100/450 (22%)" in shown and "uploaded: 450/450 (100%)" in shown
        assert store.count_entries(device_id="demo-kiosk") == 450


# --- a journal that turned read-only is not "disk full" -----------------------------------------

def test_a_journal_that_turned_read_only_is_a_journal_fault_not_a_full_disk(tmp_path):
    """A card the kernel remounted read-only answers SQLITE_READONLY ("attempt to write a
    readonly database"); SQLite's query_only makes the same answer on a real journal."""
    from kiosk.appliance import Kiosk
    from kiosk.config import load_config
    from kiosk.display.screen import BLOCKING_FAULTS
    from kiosk.display.texts import fault_text
    from kiosk.pipeline import open_journal

    cfg = load_config(None, search=False, overrides={"journal.path": str(tmp_path / "j.db"),
                                                     "scanner.kind": "stdin"})
    with open_journal(cfg) as journal, Kiosk(cfg, journal=journal) as kiosk:
        kiosk._process("APPCODE-00001", source="stdin", engine="text")
        assert kiosk.logged == 1 and not kiosk.faults
        journal.db.conn.execute("PRAGMA query_only = 1")
        kiosk._process("APPCODE-00002", source="stdin", engine="text")
        assert kiosk.faults == {"journal_fault"} and kiosk.logged == 1
        assert kiosk.events.qsize() == 1  # nothing signalled for the code that was not committed
        journal.db.conn.execute("PRAGMA query_only = 0")
        kiosk._process("APPCODE-00003", source="stdin", engine="text")
        assert not kiosk.faults
    assert "journal_fault" in BLOCKING_FAULTS
    title, detail = fault_text("journal_fault")
    assert title.en == "The journal cannot be written" and "nhân viên" in detail.vi.replace("\u00a0", " ")
