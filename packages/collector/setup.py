"""The `kiosk-collector` distribution: the health department's server alone.

    pip install ./packages/collector        # from the repository's top folder
    collector serve --help

It carries the `collector` package and the kiosk's library code the collector shares
with every kiosk (COSE and signed documents, trust list and rules parsers, the seal,
reason texts), but none of the kiosk's camera, screen or GPIO libraries: its
requirements are LIBRARY + COLLECTOR of the top folder's setup.py, which is read here so
that each version range is written once. No `kiosk` command is installed.
"""

import runpy
import shutil
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
TOP = HERE.parent.parent
kiosk_setup = runpy.run_path(str(TOP / "setup.py"), run_name="kiosk_setup")
# The packages stay where they are in the repository; paths are relative to this folder
# (setuptools wants them so).
SOURCE = "../.."
# setuptools copies into build/lib and never deletes there, so a module since removed from
# the tree (the kiosk's layout keeps moving) would still ship: start every build clean.
shutil.rmtree(HERE / "build", ignore_errors=True)

setup(
    name="kiosk-collector",
    version=kiosk_setup["VERSION"],
    description="Collector for check-in kiosks: receives their logs exactly once, publishes "
                "signed trust lists and rules, daily reports and contact tracing",
    license="Apache-2.0",
    python_requires=">=3.11",
    package_dir={"": SOURCE},
    packages=find_packages(where=str(TOP), include=["kiosk", "kiosk.*", "collector", "collector.*"]),
    package_data=kiosk_setup["PACKAGE_DATA"],
    install_requires=kiosk_setup["LIBRARY"] + kiosk_setup["COLLECTOR"],
    extras_require={"dev": kiosk_setup["DEV"]},
    entry_points={"console_scripts": ["collector=collector.cli:main"]},
    classifiers=kiosk_setup["CLASSIFIERS"],
)
