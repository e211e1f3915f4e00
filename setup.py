"""Packaging for the check-in kiosk (`kiosk`) and its collector (extra `[collector]`)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="kiosk",
    version="0.1.0",
    description="Check-in kiosk for venue entrances: scan, decide, journal, signal, upload",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["kiosk", "kiosk.*", "collector", "collector.*"]),
    package_data={"kiosk": ["*.toml", "rules/*.toml", "data/*"], "collector": ["*.toml", "templates/*"]},
    install_requires=[
        # Every one of these has wheels for Raspberry Pi OS 64-bit (aarch64) and x86_64.
        "numpy>=1.24,<3",
        "opencv-python-headless>=4.8,<6",
        "zxing-cpp>=2.2,<4",
        "pyzbar>=0.1.9,<0.2",            # needs the libzbar0 system package
        "pyserial>=3.5,<4",
        "gpiozero>=2.0,<3",
        "sqlite-utils>=3.36,<5",
        "requests>=2.31,<3",
        "pygame>=2.5,<3",
        "cryptography>=42,<52",
        "cbor2>=5.6,<7",
        "base45>=0.4.4,<0.6",
        "segno>=1.6,<2",
        "tomli-w>=1.0,<2",               # the one TOML writer (config show, provisioning)
    ],
    extras_require={
        # Pin backends: RPi.GPIO on a Pi 4 and older, lgpio on a Pi 5.
        "pi": [
            "RPi.GPIO>=0.7.1,<0.8; platform_machine=='aarch64' or platform_machine=='armv7l'",
            "lgpio>=0.2.2,<0.3; platform_machine=='aarch64' or platform_machine=='armv7l'",
        ],
        "collector": [
            "fastapi>=0.110,<1",
            "uvicorn>=0.29,<1",
            "sqlalchemy>=2.0,<3",
            "psycopg[binary]>=3.1,<4",
        ],
        "dev": [
            "pytest>=8,<10",
            "hypothesis>=6.100,<7",
            "httpx>=0.27,<1",
            "schemathesis>=4.0,<5",        # property-based API test of the collector
        ],
    },
    entry_points={
        "console_scripts": [
            "kiosk=kiosk.cli:main",
            "collector=collector.cli:main",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Operating System :: POSIX :: Linux",
    ],
)
