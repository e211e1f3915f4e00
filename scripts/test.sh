#!/usr/bin/env bash
# Set up everything the tests need (system packages, .venv, a PostgreSQL server on
# loopback for the collector) and run the whole test suite. Extra arguments go to pytest.
#   scripts/test.sh            all tests
#   scripts/test.sh -k journal a subset
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
if [ -z "${KIOSK_TEST_PG_URL:-}" ]; then
  # A throw-away PostgreSQL server on 127.0.0.1 for the collector's tests; prints
  # `export KIOSK_TEST_PG_URL=...`.
  eval "$(.ci/start-postgres)"
fi
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
exec .venv/bin/python -m pytest -q "$@"
