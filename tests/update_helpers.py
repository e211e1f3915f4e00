"""Kiosk wheels of other versions, for the update tests (tests/test_update*.py).

`build_wheel(out, "0.1.1")` copies the source tree, sets the version in setup.py and
kiosk/__init__.py and builds a real wheel with pip (about 2 s). `broken=True` makes a
version whose `kiosk run` exits at start, as a bad release would: `kiosk --version`
still answers, so only the trial can catch it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PARTS = ("setup.py", "README.md", "kiosk", "collector")

BROKEN_RUN = '''

def _broken_release(args):  # a release that cannot start (tests/update_helpers.py)
    print("kiosk: this release is broken on purpose", file=sys.stderr)
    return 3


cmd_run = _broken_release  # noqa: F811
'''


def build_wheel(out: Path, version: str, *, broken: bool = False) -> Path:
    src = out / f"src-{version}"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for part in SOURCE_PARTS:
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / part, src / part)
    setup = src / "setup.py"
    setup.write_text(re.sub(r'^VERSION = "[^"]+"', f'VERSION = "{version}"', setup.read_text(), flags=re.M))
    init = src / "kiosk" / "__init__.py"
    init.write_text(re.sub(r'^__version__ = "[^"]+"', f'__version__ = "{version}"', init.read_text(), flags=re.M))
    if broken:
        run = src / "kiosk" / "cli" / "run.py"
        text = run.read_text()
        if "import sys" not in text:
            text = text.replace("import argparse\n", "import argparse\nimport sys\n", 1)
        # The name register() binds is looked up at call time: patch the module's cmd_run
        # before register runs by appending the override before register's definition.
        text = text.replace("\ndef register(", BROKEN_RUN + "\n\ndef register(", 1)
        run.write_text(text)
    dist = out / "dist"
    dist.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
                   check=True, capture_output=True)
    wheel = dist / f"kiosk-{version}-py3-none-any.whl"
    assert wheel.exists(), sorted(dist.iterdir())
    shutil.rmtree(src)
    return wheel
