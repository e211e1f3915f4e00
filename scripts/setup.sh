#!/usr/bin/env bash
# Set up a development or demo copy of the kiosk on Debian 12 / Raspberry Pi OS Bookworm:
# system packages, then a virtual environment in .venv with the package installed editable.
#   scripts/setup.sh          the kiosk and its collector (enough for `kiosk demo`)
#   scripts/setup.sh --dev    also everything the tests need (APT_DEV below, the [dev] extra)
# Safe to run again: it installs only what is missing.
#
# A new dependency goes in ONE place: a Python one in setup.py's lists (DEV for test
# tools), a Debian one in APT_RUN or APT_DEV here. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (allowed: --dev)" >&2; exit 2 ;;
  esac
done

# What the kiosk and `kiosk demo` need. libzbar0: pyzbar's decoder. fonts-dejavu-core:
# Vietnamese glyphs on the screen. libsdl2 comes inside pygame's wheel.
APT_RUN=(python3 python3-venv python3-pip libzbar0 fonts-dejavu-core)
# What the tests need besides. postgresql: the collector's PostgreSQL tests
# (.ci/start-postgres). systemd, shellcheck: unit and install.sh checks. debootstrap,
# systemd-container: a Debian 12 root folder to run install.sh in and boot with
# systemd-nspawn (.ci/debian-root, tests/test_install.py). chromium, fonts-noto-core: the report
# pages in a real browser (Playwright drives it; tests/test_report_page.py). espeak-ng:
# the spoken verdicts (tests/test_voice.py). gcc, python3-dev: pip builds evdev (no wheels)
# for the keyboard-mode scanner tests. qemu-user-static, binfmt-support: the arm64 root
# (.ci/arm64) runs under emulation.
APT_DEV=(postgresql systemd shellcheck debootstrap systemd-container chromium fonts-noto-core espeak-ng strace
         gcc python3-dev qemu-user-static binfmt-support haproxy)

# One line per step with the seconds so far, so a cold run (a minute or more) is never
# silent; pip's own progress bar shows on a terminal.
started=$SECONDS
step() { echo "setup: [$1/4 +$((SECONDS - started)) s] $2"; }
pip_quiet=(-q)
[ -t 1 ] && pip_quiet=(--progress-bar on -q)

step 1 "system packages"
packages=("${APT_RUN[@]}")
if [ "$dev" = 1 ]; then
  packages+=("${APT_DEV[@]}")
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
step 2 "virtual environment in .venv"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install "${pip_quiet[@]}" --upgrade pip
extras="collector"
[ "$dev" = 1 ] && extras="collector,dev"
step 3 "Python packages for .[$extras] (the first time takes a minute or more)"
.venv/bin/python -m pip install "${pip_quiet[@]}" -e ".[$extras]"
step 4 "checking the install"
.venv/bin/kiosk --version >/dev/null
echo "setup: ready in $((SECONDS - started)) s (.venv/bin/kiosk)"
