#!/usr/bin/env bash
# Set up everything the tests need (system packages, .venv with the [collector,dev]
# extras, a PostgreSQL server on loopback for the collector, and as root a Debian 12 root
# folder for install.sh) and run the whole test suite. Extra arguments go to pytest.
#   scripts/test.sh            all tests
#   scripts/test.sh -k journal a subset
# Not root: the install tests that need chroot/systemd-nspawn skip (with CI=true they fail).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
if [ -z "${KIOSK_TEST_PG_URL:-}" ]; then
  # This checkout's own throw-away PostgreSQL server on 127.0.0.1 for the collector's
  # tests (prints `export KIOSK_TEST_PG_URL=...`); stopped when the tests end unless
  # KEEP_PG=1 (then `.ci/start-postgres --stop` stops it).
  eval "$(.ci/start-postgres)"
  if [ "${KEEP_PG:-0}" != 1 ]; then
    trap '.ci/start-postgres --stop' EXIT
  fi
fi
if [ -z "${KIOSK_TEST_DEBIAN_ROOT:-}" ] && [ "$(id -u)" = 0 ]; then
  # Built once with debootstrap (about a minute), then reused from /var/cache/kiosk-ci.
  KIOSK_TEST_DEBIAN_ROOT=$(.ci/debian-root)
  export KIOSK_TEST_DEBIAN_ROOT
fi
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
.venv/bin/python -m pytest -q "$@"  # not exec: the EXIT trap stops PostgreSQL afterwards
