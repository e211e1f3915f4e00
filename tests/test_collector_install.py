"""The collector installs and runs on a server with no camera, screen or GPIO libraries.

A fresh virtual environment gets `pip install ./packages/collector` from a clean copy of
the repository (non-editable, as a server would; plus pytest, hypothesis, httpx), and then:
- OpenCV, pygame, zxing-cpp, gpiozero, numpy, pyzbar and pyserial are not importable;
- `collector --help` works and there is no `kiosk` command;
- `collector serve` on loopback takes an enrolment, a gzip batch, and `collector report`
  counts it;
- the collector's own test files pass with that environment's Python, importing the
  installed packages, not the source tree.

It fills a wheelhouse from PyPI on its first run (a few minutes); afterwards it installs
from there offline and takes well under a minute.
"""

from __future__ import annotations

import gzip
import json
import os
import runpy
import shutil
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from collector_process import free_port

ROOT = Path(__file__).resolve().parent.parent
#: What a clean checkout holds that the collector's distribution is built from.
CHECKOUT = ("setup.py", "README.md", "packages", "kiosk", "collector")
#: None of these may be installed with the collector (import names).
APPLIANCE_MODULES = ("cv2", "pygame", "zxingcpp", "gpiozero", "numpy", "pyzbar", "serial")
#: The collector's test files that run in the fresh environment. Left out, and why:
#: test_tracing.py drives a real kiosk pipeline and journal (appliance code); the
#: hostile, schemathesis, partitions and cli_errors files start many servers or fuzz for
#: minutes and add nothing about packaging that these do not.
COLLECTOR_TESTS = ("test_collector_api.py", "test_collector_storage.py", "test_collector_cli.py",
                   "test_collector_retention.py")
#: What those test files import beyond the collector's own requirements.
TEST_TOOLS = ("pytest", "hypothesis", "httpx")
#: What builds the local package in the venv (pip's build isolation would fetch them anew).
BUILD_TOOLS = ("setuptools>=70", "wheel")
PIP_TIMEOUT_S = 600
#: Wheels kept between runs, outside the repository ($KIOSK_TEST_WHEELHOUSE to move it).
WHEELHOUSE = Path(os.environ.get("KIOSK_TEST_WHEELHOUSE", Path.home() / ".cache" / "kiosk-tests" / "wheels"))
ADMIN = "admin-secret-of-at-least-32-characters"


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
         check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, f"{argv}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


def _pip_install(python: Path, requirements: list[str], *, cwd: Path) -> None:
    """pip install from the wheelhouse alone (fast, offline); when a wheel is missing, fill
    the wheelhouse from PyPI first. The venv's own setuptools builds the local package."""
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    offline = [*pip, "install", "-q", "--no-index", "--find-links", str(WHEELHOUSE), "--no-build-isolation",
               *requirements]
    if _run(offline, cwd=cwd, timeout=PIP_TIMEOUT_S, check=False).returncode != 0:
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        _run([*pip, "download", "-q", "--no-build-isolation", "-d", str(WHEELHOUSE), *requirements],
             cwd=cwd, timeout=PIP_TIMEOUT_S)
        _run(offline, cwd=cwd, timeout=PIP_TIMEOUT_S)


@pytest.fixture(scope="module")
def server_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the kiosk-collector distribution (and its [dev] test tools)."""
    base = tmp_path_factory.mktemp("collector-install")
    checkout = base / "checkout"
    checkout.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for part in CHECKOUT:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, checkout / part, ignore=ignore)
        else:
            shutil.copy2(src, checkout / part)
    venv = base / "venv"
    # The base interpreter, not this test's virtual environment: nothing may leak in.
    python = getattr(sys, "_base_executable", sys.executable)
    _run([python, "-m", "venv", str(venv)], cwd=base)
    # The test tools these files use, at the ranges of setup.py's DEV list (the rest of
    # [dev], schemathesis and its tree, would only slow this down).
    dev = runpy.run_path(str(ROOT / "setup.py"), run_name="kiosk_setup")["DEV"]
    tools = [r for r in dev if r.split(">")[0].split("=")[0].strip() in TEST_TOOLS]
    assert len(tools) == len(TEST_TOOLS), dev
    _pip_install(venv / "bin/python", list(BUILD_TOOLS), cwd=base)
    _pip_install(venv / "bin/python", [str(checkout / "packages" / "collector"), *tools], cwd=base)
    shutil.rmtree(checkout)  # what runs from here on is what pip installed
    return venv


def test_no_camera_screen_or_gpio_library_is_installed(server_venv: Path) -> None:
    probe = ("import importlib.util, json; "
             f"print(json.dumps([m for m in {APPLIANCE_MODULES!r} if importlib.util.find_spec(m)]))")
    out = _run([str(server_venv / "bin/python"), "-I", "-c", probe], cwd=server_venv).stdout
    assert json.loads(out) == []


def test_every_collector_module_imports_without_them(server_venv: Path) -> None:
    """Importing the whole collector (and what it pulls from the kiosk's library code)
    loads no hardware module; a lazy import of one would fail here."""
    probe = ("import importlib, json, pkgutil, sys, collector; "
             "[importlib.import_module(m.name) for m in pkgutil.walk_packages(collector.__path__, 'collector.')]; "
             "import kiosk.display.texts, kiosk.checks.rules, kiosk.checks.trust, kiosk.sync.fetcher; "
             f"print(json.dumps([m for m in {APPLIANCE_MODULES!r} if m in sys.modules]))")
    out = _run([str(server_venv / "bin/python"), "-I", "-c", probe], cwd=server_venv).stdout
    assert json.loads(out) == []


def test_collector_command_is_installed_and_kiosk_is_not(server_venv: Path) -> None:
    out = _run([str(server_venv / "bin/collector"), "--help"], cwd=server_venv).stdout
    assert "serve" in out and "enrol-code" in out
    assert not (server_venv / "bin/kiosk").exists()


def test_serve_enrol_upload_and_report(server_venv: Path, tmp_path: Path) -> None:
    collector = str(server_venv / "bin/collector")
    db = f"sqlite:///{tmp_path / 'collector.db'}"
    env = {"COLLECTOR_ADMIN_TOKEN": ADMIN}
    code = _run([collector, "enrol-code", "--db", db, "--device", "kiosk-1", "--venue", "BV-A"],
                cwd=tmp_path, env=env).stdout.strip()
    port = free_port()
    proc = subprocess.Popen([collector, "serve", "--db", db, "--port", str(port), "--log-level", "warning"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env}, stdin=subprocess.DEVNULL)
    try:
        first = proc.stderr.readline()
        assert "listening" in first, first + proc.stderr.read()
        url = f"http://127.0.0.1:{port}"
        r = requests.post(f"{url}/v1/devices", json={"device_id": "kiosk-1", "code": code}, timeout=30)
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        now = datetime.now(timezone.utc).replace(microsecond=0)
        entries = [{"id": str(uuid.uuid4()), "scanned_at": now.isoformat().replace("+00:00", "Z"),
                    "device_id": "kiosk-1", "venue_code": "BV-A", "outcome": outcome, "reason": reason,
                    "scheme": "dcc", "subject_hash": None, "name_masked": "Nguyễn V*** A",
                    "personal": None, "sealed": False, "override_of": None}
                   for outcome, reason in (("pass", "ok"), ("fail", "expired"), ("fail", "expired"))]
        body = gzip.compress(json.dumps({"device_id": "kiosk-1", "batch_id": "b1", "entries": entries}).encode())
        headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                   "Content-Type": "application/json"}
        r = requests.post(f"{url}/v1/batches", data=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 3
        again = requests.post(f"{url}/v1/batches", data=body, headers=headers, timeout=30)
        assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # Today in Vietnam (the report's default day), which is when these entries were made.
    report = _run([collector, "report", "--db", db], cwd=tmp_path, env=env).stdout
    assert "BV-A" in report
    # The readable page says the fail reason in the kiosk's words (kiosk.display.texts).
    page = _run([collector, "report", "--db", db, "--html"], cwd=tmp_path, env=env).stdout
    assert "(expired)" in page and "This certificate has expired" in page


def test_the_collectors_tests_pass_in_the_fresh_environment(server_venv: Path, tmp_path: Path) -> None:
    """Copied test files run by the server venv's Python in isolated mode (-I), so
    `collector` and `kiosk` come from site-packages, never from this source tree."""
    tests = tmp_path / "tests"
    tests.mkdir()
    for f in (ROOT / "tests").glob("*.py"):
        if not f.name.startswith("test_") or f.name in COLLECTOR_TESTS:
            shutil.copy2(f, tests / f.name)
    python = str(server_venv / "bin/python")
    where = _run([python, "-I", "-c", "import collector, kiosk; print(collector.__file__, kiosk.__file__)"],
                 cwd=tmp_path).stdout
    assert where.count(str(server_venv)) == 2, where
    env = {"KIOSK_TESTDATA": str(Path(os.environ.get("KIOSK_TESTDATA", ROOT.parent / "shared" / "testdata")))}
    result = _run([python, "-I", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
                   *(f"tests/{name}" for name in COLLECTOR_TESTS)], cwd=tmp_path, env=env, timeout=600,
                  check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
