#!/usr/bin/env bash
# GPU scheduling check, for a machine with NVIDIA GPUs: the embedded agent must report
# nvidia.com/gpu capacity, a pod asking for one GPU runs with CUDA_VISIBLE_DEVICES set to
# its own device, and a pod asking for more GPUs than the node has stays Pending with a
# FailedScheduling event. Usage: scripts/gpu_check.sh [PYTHON]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
D=$(mktemp -d)
nvidia-smi -L
$PY -m jobplane server --data-dir "$D" --port 0 >"$D/server.log" 2>&1 &
S=$!
trap 'kill $S 2>/dev/null; wait $S 2>/dev/null' EXIT
for _ in $(seq 1 100); do grep -q ready "$D/server.log" && break; sleep 0.2; done
grep ready "$D/server.log" || { cat "$D/server.log"; exit 1; }
export KUBECONFIG="$D/kubeconfig"
J() { $PY -m jobplane "$@"; }
sleep 1
J get nodes -o jsonpath='{.items[0].status.capacity}'; echo
cat > "$D/gpu.yaml" <<'YAML'
apiVersion: batch/v1
kind: Job
metadata: {name: gpu-one}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: cuda
        command: ["sh", "-c", "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES; nvidia-smi -L"]
        resources: {limits: {nvidia.com/gpu: 1}}
---
apiVersion: v1
kind: Pod
metadata: {name: gpu-too-many}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: cuda
    command: ["true"]
    resources: {limits: {nvidia.com/gpu: 64}}
YAML
J apply -f "$D/gpu.yaml"
J wait --for=condition=complete job/gpu-one --timeout=60s
J logs job/gpu-one
J get pods -o wide
J get events --field-selector reason=FailedScheduling
