#!/usr/bin/env bash
# Run every jobplane benchmark in sequence and print their tables (RESULTS.md is written from this
# output). Usage: bench/run_all.sh [SCALE_COMPLETIONS]   (default 100000; 10000 is ~4 min here)
# PROFILE_DIR=/tmp/prof bench/run_all.sh  also records py-spy profiles of the server.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SCALE=${1:-100000}
if [[ -n "${PROFILE_DIR:-}" ]]; then mkdir -p "$PROFILE_DIR"; fi
echo "# jobplane benchmarks $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
echo "load average at the start (other work on this machine skews timings): $(cut -d' ' -f1-3 /proc/loadavg)"
$PY bench/bench_storage.py sqlite 10000 || echo "bench_storage.py failed (rc=$?)"
$PY bench/bench_api.py ${PROFILE_DIR:+--profile "$PROFILE_DIR"}
$PY bench/bench_throughput.py ${PROFILE_DIR:+--profile "$PROFILE_DIR/throughput.txt"}
$PY bench/bench_latency.py
$PY bench/bench_scale.py --completions "$SCALE" ${PROFILE_DIR:+--profile "$PROFILE_DIR/scale.txt"}
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n "${PROFILE_DIR:-}" ]]; then $PY bench/profile_top.py "$PROFILE_DIR"/*.txt; fi
