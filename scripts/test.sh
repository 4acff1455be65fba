#!/usr/bin/env bash
# Sets up (if needed) and runs the whole test suite, in parallel: everything with the server in
# its default mode (JOBPLANE_PROCESSES unset: one process), then the e2e suite again with
# `--processes 2` (the node agent in a child process). Arguments select tests as pytest's
# do (one pass, in the mode JOBPLANE_PROCESSES says).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/mypy
workers="${JOBPLANE_TEST_WORKERS:-4}"
if [ $# -gt 0 ]; then
    exec .venv/bin/python -m pytest -q -n "$workers" "$@"
fi
.venv/bin/python -m pytest -q -n "$workers"
echo "--- e2e again, the agent in a child process (JOBPLANE_PROCESSES=2) ---"
JOBPLANE_PROCESSES=2 exec .venv/bin/python -m pytest -q -n "$workers" tests/e2e
