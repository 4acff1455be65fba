#!/usr/bin/env bash
# Sets up a fresh machine and runs the Jobs documentation's pi example end to end:
# start a jobplane server, apply examples/pi-job.yaml with kubectl (or jobplane's own CLI
# when kubectl is not installed), wait for it to complete, describe it and print its log.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

DATA=${JOBPLANE_DEMO_DIR:-$PWD/.data/demo}
rm -rf "$DATA"
mkdir -p "$DATA"
LOG="$DATA/server.log"
.venv/bin/jobplane server --data-dir "$DATA" --port 0 >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  grep -q ready "$LOG" && break
  kill -0 $SERVER 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.1
done
grep ready "$LOG"
export KUBECONFIG="$DATA/kubeconfig"
if [ -x /usr/bin/kubectl ] || command -v kubectl >/dev/null 2>&1; then
  K=(kubectl)
  # kubectl caches discovery per host:port; keep the demo's cache beside its data.
  export HOME="$DATA/home"; mkdir -p "$HOME"
else
  K=(.venv/bin/jobplane)
fi
set -x
"${K[@]}" apply -f examples/pi-job.yaml
"${K[@]}" wait --for=condition=complete job/pi --timeout=120s
"${K[@]}" get jobs
"${K[@]}" describe jobs/pi
pods=$("${K[@]}" get pods --selector=job-name=pi --output=jsonpath='{.items[*].metadata.name}')
echo "$pods"
"${K[@]}" logs "$pods"
