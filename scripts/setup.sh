#!/usr/bin/env bash
# Set up a development or demo copy of the kiosk on Debian 12 / Raspberry Pi OS Bookworm:
# system packages, then a virtual environment in .venv with the package installed editable.
#   scripts/setup.sh          the kiosk and its collector (enough for `kiosk demo`)
#   scripts/setup.sh --dev    also the test tools and a PostgreSQL server for the collector's tests
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (allowed: --dev)" >&2; exit 2 ;;
  esac
done

# libzbar0: pyzbar's decoder. fonts-dejavu-core: Vietnamese glyphs on the screen.
# libsdl2 libraries come inside pygame's wheel; python3-venv makes the virtual environment.
packages=(python3 python3-venv python3-pip libzbar0 fonts-dejavu-core)
if [ "$dev" = 1 ]; then
  packages+=(postgresql systemd shellcheck)
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
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
extras="collector"
[ "$dev" = 1 ] && extras="collector,dev"
.venv/bin/python -m pip install -q -e ".[$extras]"
echo "setup: ready (.venv/bin/kiosk)"
