#!/usr/bin/env bash
# Sets up (if needed) and runs the whole test suite, in parallel.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check src tests
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -n "${JOBPLANE_TEST_WORKERS:-4}" "$@"
