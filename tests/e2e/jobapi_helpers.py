"""Helpers for the Job API feature e2e tests (``test_e2e_jobapi_*``): upstream's e2e job
fixtures (test/e2e/framework/job/fixtures.go) as shell commands, and a watch that records the
sequence of a job's condition types so interim conditions can be asserted."""

from __future__ import annotations

import json
from typing import Any

from jobs_helpers import NS, Cluster, job_manifest
from kubernetes import watch as k8s_watch

# Upstream fixture behaviours, run by ``sh -c`` in container ``c``.
FAIL_ODD_SUCCEED_EVEN = "if [ $((JOB_COMPLETION_INDEX % 2)) -eq 1 ]; then exit 1; fi; exit 0"


def fail_once_per_index(marker_dir: str, code: int = 42) -> str:
    """``failOncePerIndex``: the first pod of each index exits ``code``, later ones succeed.
    The marker lives in a hostPath directory so it outlives the pod."""
    marker = f"{marker_dir}/marker-$JOB_COMPLETION_INDEX"
    return f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit {code}"


def indexed_job(name: str, script: str, completions: int, parallelism: int, **spec: Any) -> dict:
    """An Indexed Job running ``sh -c script`` in container ``c``."""
    return job_manifest(name, ["sh", "-c", script], completionMode="Indexed", completions=completions,
                        parallelism=parallelism, **spec)


def with_host_dir(manifest: dict, path: str) -> dict:
    """Mounts host directory ``path`` at the same path in container ``c``."""
    pod = manifest["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "data", "hostPath": {"path": path}}]
    pod["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": path}]
    return manifest


def watch_conditions(cl: Cluster, name: str, resource_version: str,
                     timeout: int = 40) -> list[list[tuple[str, str]]]:
    """Every distinct ``[(type, reason), …]`` list of true conditions the job went through,
    from ``resource_version`` until it has a terminal condition."""
    seen: list[list[tuple[str, str]]] = []
    w = k8s_watch.Watch()
    for event in w.stream(cl.batch.list_namespaced_job, NS, field_selector=f"metadata.name={name}",
                          resource_version=resource_version, timeout_seconds=timeout):
        conds = [(c.type, c.reason or "") for c in (event["object"].status.conditions or ())
                 if c.status == "True"]
        if not seen or seen[-1] != conds:
            seen.append(conds)
        if any(t in ("Complete", "Failed") for t, _ in conds):
            w.stop()
    return seen


def pod_dict(cl: Cluster, name: str) -> dict:
    """Pod ``name`` as the server's JSON (plain dict, camelCase keys)."""
    return json.loads(cl.core.read_namespaced_pod(name, NS, _preload_content=False).data)


def jobs_resource_version(cl: Cluster) -> str:
    return cl.batch.list_namespaced_job(NS).metadata.resource_version
