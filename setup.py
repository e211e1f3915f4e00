"""Packaging: two distributions from this one repository.

- `kiosk` (this file: `pip install .`): the appliance. The `kiosk` package with its
  camera, screen and GPIO libraries, and the `collector` package, so `kiosk demo` can run
  a local collector (its server libraries come with the `[collector]` extra).
- `kiosk-collector` (`packages/collector/setup.py`: `pip install ./packages/collector`):
  the health department's server. The `collector` package and the kiosk's pure library
  code it shares (checks, signed documents, seal, reason texts), with only LIBRARY and
  COLLECTOR below: no OpenCV, pygame, zxing-cpp, gpiozero, numpy, pyzbar or pyserial.
  `tests/test_collector_install.py` installs it in a fresh virtual environment.

Both carry the same `collector` package, so install one of them into an environment,
not both. The requirement lists live here only; packages/collector/setup.py reads them.

Floors, tried (2026-12-01): one scratch venv on Python 3.11 with EVERY direct dependency
at its floor at once, then the tests named; and `pip download --only-binary=:all:
--platform manylinux2014_aarch64 --python-version 3.11 --no-deps PKG==FLOOR` for the Pi.

| floor                          | tests run at the floor                     | aarch64 wheel            |
|--------------------------------|--------------------------------------------|--------------------------|
| requests 2.31.0                | sync fetcher, collector CLI                | pure                     |
| cryptography 42.0.0            | checks dcc/hd1/cccd/trust, seal            | manylinux_2_17           |
| cbor2 5.6.0, base45 0.4.4      | checks dcc/hd1, cose                       | manylinux_2_17 / pure    |
| segno 1.6.0, tomli-w 1.0.0     | screen, config                             | pure                     |
| jsonschema 4.18.0              | test_dcc_schema, test_checks_dcc, cases   | pure                     |
| numpy 1.24.0                   | decoder, sources                           | manylinux_2_17           |
| opencv-python-headless 4.8.0.76| decoder, sources (4.8.0.74 is yanked)      | manylinux_2_17 (abi3)    |
| zxing-cpp 3.0.0                | decoder (2.2.0: 14 of 17 fail, TypeError   | manylinux_2_28 (2.3.0    |
|                                | on try_invert=)                            | has no aarch64 wheel)    |
| pyzbar 0.1.9, pyserial 3.5     | decoder, sources                           | pure                     |
| gpiozero 2.0                   | pins, signals                              | pure                     |
| sqlite-utils 4.0               | journal, trust (3.36-3.39.1: 13 of 14      | pure                     |
|                                | journal tests fail, migration commit)      |                          |
| pygame 2.5.0                   | screen                                     | manylinux_2_17           |
| fastapi 0.110.0, pydantic 2.5.0| collector api/storage/cli/hostile (pydantic| pure (pydantic-core      |
|                                | 2.4: no pydantic_core.from_json)           | manylinux_2_17)          |
| uvicorn 0.51.0                 | collector serve --workers (0.50: TypeError)| pure                     |
| sqlalchemy 2.0.0, psycopg 3.1.4| collector storage on SQLite and PostgreSQL | manylinux_2_17           |
| lgpio 0.2.2                    | (Pi only)                                  | manylinux_2_34 (Bookworm |
|                                |                                            | has glibc 2.36)          |
| RPi.GPIO 0.7.1                 | (Pi only)                                  | none: built (install.sh  |
|                                |                                            | adds gcc, python3-dev)   |
| pytest 8.0, hypothesis 6.108,  | all of the above (schemathesis 4.0 needs   | pure                     |
| httpx 0.27, schemathesis 4.0   | hypothesis 6.108)                          |                          |
Added while this table was made, not yet tried at their floors: openpyxl, vietnam-provinces,
pillow, aiosmtpd, playwright.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = "0.1.0"

#: Pure code both ends run: COSE and signed documents, the seal, the sync protocol.
LIBRARY = [
    "requests>=2.31,<3",
    "cryptography>=42,<52",
    "cbor2>=5.6,<7",
    "base45>=0.4.4,<0.6",
    "segno>=1.6,<2",
    "tomli-w>=1.0,<2",               # the one TOML writer (config show, provisioning)
    "jsonschema>=4.18,<5",           # EU DCC schema; pure Python (rpds-py has aarch64 wheels)
]

#: The appliance only: camera, decoders, screen, pins, journal.
APPLIANCE = [
    "numpy>=1.24,<3",
    "opencv-python-headless>=4.8.0.76,<6",  # 4.8.0.74 is yanked
    "zxing-cpp>=3.0,<4",              # try_invert= (2.x: TypeError each frame)
    "pyzbar>=0.1.9,<0.2",            # needs the libzbar0 system package
    "pyserial>=3.5,<4",
    "gpiozero>=2.0,<3",
    "sqlite-utils>=4.0,<5",          # 3.x commits inside our migration transaction
    "pygame>=2.5,<3",
]

#: The collector's server.
COLLECTOR = [
    "fastapi>=0.110,<1",
    "pydantic>=2.5,<3",               # v2 models; pydantic_core.from_json
    "uvicorn>=0.51,<1",               # Multiprocess(config, sockets=) for --workers
    "sqlalchemy>=2.0,<3",
    "psycopg[binary]>=3.1.4,<4",      # the first with psycopg-binary for 3.11
    "openpyxl>=3.1,<4",               # the daily report as XLSX (pure Python)
    "vietnam-provinces>=2025.8",      # 2025 units (34 provinces, communes): the declaration form
    "pillow>=10,<14",                 # the venue poster (A4 PNG/PDF)
]

#: Pin backends: RPi.GPIO on a Pi 4 and older, lgpio on a Pi 5.
PI = [
    "RPi.GPIO>=0.7.1,<0.8; platform_machine=='aarch64' or platform_machine=='armv7l'",
    "lgpio>=0.2.2,<0.3; platform_machine=='aarch64' or platform_machine=='armv7l'",
    "evdev>=1.6,<2; sys_platform=='linux'",   # keyboard-mode USB scanners (scanner.kind = "evdev")
]

#: Everything the tests need beyond the above (scripts/setup.sh --dev installs it; the
#: system packages the tests need are listed once, in scripts/setup.sh).
DEV = [
    "pytest>=8,<10",
    "hypothesis>=6.108,<7",           # schemathesis 4 needs it
    "httpx>=0.27,<1",
    "schemathesis>=4.0,<5",        # property-based API test of the collector
    "aiosmtpd>=1.4.4,<2",             # a real SMTP server on loopback (report delivery)
    "playwright>=1.40,<2",            # drives Debian's chromium (report page; no browser download)
    "axe-playwright-python>=0.1.8,<0.2",  # axe-core (bundled) on the officers' and citizens' pages
    "evdev>=1.6,<2; sys_platform=='linux'",   # tests/test_evdev.py (a virtual scanner where /dev/uinput exists)
]

PACKAGE_DATA = {"kiosk": ["*.toml", "rules/*.toml", "data/*"], "collector": ["*.toml", "templates/*", "static/*"]}
CLASSIFIERS = [
    "Programming Language :: Python :: 3.11",
    "Operating System :: POSIX :: Linux",
]

# setuptools runs this file as __main__; packages/collector/setup.py loads it under
# another name for the lists above.
if __name__ == "__main__":
    import shutil

    # setuptools never deletes in build/lib: a module removed from the tree would still ship.
    shutil.rmtree(HERE / "build", ignore_errors=True)
    setup(
        name="kiosk",
        version=VERSION,
        description="Check-in kiosk for venue entrances: scan, decide, journal, signal, upload",
        long_description=(HERE / "README.md").read_text(encoding="utf-8"),
        long_description_content_type="text/markdown",
        license="Apache-2.0",
        python_requires=">=3.11",
        packages=find_packages(include=["kiosk", "kiosk.*", "collector", "collector.*"]),
        package_data=PACKAGE_DATA,
        install_requires=LIBRARY + APPLIANCE,
        extras_require={"pi": PI, "collector": COLLECTOR, "dev": DEV},
        entry_points={
            "console_scripts": [
                "kiosk=kiosk.cli:main",
                "collector=collector.cli:main",
            ],
        },
        classifiers=CLASSIFIERS,
    )
