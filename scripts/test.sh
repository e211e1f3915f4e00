#!/usr/bin/env bash
# Set up everything the tests need (system packages, .venv, a PostgreSQL server on
# loopback for the collector) and run the whole test suite. Extra arguments go to pytest.
#   scripts/test.sh            all tests
#   scripts/test.sh -k journal a subset
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
if [ -z "${KIOSK_TEST_PG_URL:-}" ] && [ -x scripts/start-postgres ]; then
  # Prints the URL of a throw-away database on 127.0.0.1.
  KIOSK_TEST_PG_URL=$(scripts/start-postgres)
  export KIOSK_TEST_PG_URL
fi
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
exec .venv/bin/python -m pytest -q "$@"
