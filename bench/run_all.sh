#!/usr/bin/env bash
# Run every jobplane benchmark in sequence and print their tables, then issue #16's target table
# (bench/targets.py; RESULTS.md is written from this output).
# Usage: bench/run_all.sh [SCALE_COMPLETIONS]   (default 100000; 10000 is ~4 min here)
# PROFILE_DIR=/tmp/prof bench/run_all.sh  also records py-spy profiles of the server.
# Needs wrk (Debian's package) and py-spy (pip): installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SCALE=${1:-100000}
if ! command -v wrk >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q wrk >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1)
  fi
  command -v wrk >/dev/null 2>&1 || { echo "bench_api.py needs wrk (apt-get install wrk)" >&2; exit 1; }
fi
[[ -x .venv/bin/py-spy ]] || .venv/bin/pip install -q "py-spy>=0.3.14" || echo "note: no py-spy; profiles skipped" >&2
if [[ -n "${PROFILE_DIR:-}" ]]; then mkdir -p "$PROFILE_DIR"; fi
export JOBPLANE_BENCH_SUMMARY=${JOBPLANE_BENCH_SUMMARY:-$(mktemp /tmp/jp-bench-summary.XXXXXX.jsonl)}
echo "# jobplane benchmarks $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM, main at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "load average at the start (other work on this machine skews timings): $(cut -d' ' -f1-3 /proc/loadavg)"
echo "features on (the shipped defaults): pod sandbox (bubblewrap), authentication + RBAC authorization, service-account token automount, managedFields, one server process (--processes 1)"
$PY bench/bench_storage.py sqlite 10000 || echo "bench_storage.py failed (rc=$?)"
$PY bench/bench_api.py ${PROFILE_DIR:+--profile "$PROFILE_DIR"}
$PY bench/bench_throughput.py ${PROFILE_DIR:+--profile "$PROFILE_DIR/throughput.txt"}
$PY bench/bench_latency.py
$PY bench/bench_scale.py --completions "$SCALE" ${PROFILE_DIR:+--profile "$PROFILE_DIR/scale.txt"}
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n "${PROFILE_DIR:-}" ]]; then $PY bench/profile_top.py "$PROFILE_DIR"/*.txt; fi
$PY bench/targets.py "$JOBPLANE_BENCH_SUMMARY"
