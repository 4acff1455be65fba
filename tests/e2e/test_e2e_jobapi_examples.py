"""Runs every ``examples/job-api/*.yaml`` on one live server and checks what its comment says."""

from __future__ import annotations

import time

from jobs_helpers import EXAMPLES, TERMINAL, condition, phase, wait_for

DIR = EXAMPLES / "job-api"


def _apply(cl, name: str) -> None:
    cl.kubectl("apply", "-f", str(DIR / name), check=True)


def _patch(cl, job: str, patch: str) -> None:
    cl.kubectl("patch", "job", job, "--type=merge", "-p", patch, check=True)


def test_job_api_examples(cluster):
    cl = cluster("--pod-backoff-base", "0.2")
    assert sorted(p.name for p in DIR.glob("*.yaml")) == [
        "backoff-limit-per-index.yaml", "elastic-indexed.yaml", "managed-by.yaml", "pod-failure-policy.yaml",
        "pod-replacement-policy.yaml", "success-policy.yaml", "suspend.yaml"]
    for name in sorted(p.name for p in DIR.glob("*.yaml")):
        _apply(cl, name)

    # suspend.yaml: nothing runs; scheduling directives may change; resuming runs it.
    wait_for(lambda: condition(cl.job("suspended"), "Suspended"), 10, what="suspended")
    assert not cl.job_pods("suspended")
    _patch(cl, "suspended", '{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/os":"linux"}}}}}')
    _patch(cl, "suspended", '{"spec":{"suspend":false}}')

    # elastic-indexed.yaml: scale down to 2 while the 4 shards run.
    wait_for(lambda: cl.job("elastic")["status"].get("active") == 4, 15, what="4 elastic shards running")
    _patch(cl, "elastic", '{"spec":{"completions":2,"parallelism":2}}')

    # pod-replacement-policy.yaml: delete the running pod; no replacement while it cleans up.
    wait_for(lambda: cl.job("pod-replacement-policy")["status"].get("ready") == 1, 15, what="a ready pod")
    cl.kubectl("delete", "pod", "-l", "job-name=pod-replacement-policy", "--wait=false", check=True)
    wait_for(lambda: cl.job("pod-replacement-policy")["status"].get("terminating") == 1, 5, what="terminating 1")
    assert cl.job("pod-replacement-policy")["status"].get("active", 0) == 0

    job = cl.wait_finished("pod-failure-policy", timeout=30)
    assert condition(job, "Failed")["reason"] == "PodFailurePolicy"
    assert condition(job, "FailureTarget")["reason"] == "PodFailurePolicy"
    assert job["status"]["failed"] <= 2  # the two pods of the first wave, no retries

    job = cl.wait_finished("backoff-limit-per-index", timeout=60)
    assert condition(job, "Failed")["reason"] == "FailedIndexes"
    assert job["status"]["failedIndexes"] == "1,3,5,7,9"
    assert job["status"]["completedIndexes"] == "0,2,4,6,8"

    job = cl.wait_complete("success-policy", timeout=30)
    assert condition(job, "Complete")["reason"] == "SuccessPolicy"
    assert job["status"]["completedIndexes"] == "0" and not job["status"].get("failed")

    job = cl.wait_complete("suspended", timeout=30)
    assert job["status"]["succeeded"] == 2

    job = cl.wait_complete("elastic", timeout=30)
    assert job["status"]["completedIndexes"] == "0,1" and not job["status"].get("failed")
    assert sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                  for p in cl.job_pods("elastic") if phase(p) in TERMINAL) == ["0", "1"]

    wait_for(lambda: cl.job("pod-replacement-policy")["status"].get("failed") == 1
             and cl.job("pod-replacement-policy")["status"].get("active") == 1, 15, what="the replacement")

    time.sleep(0.5)
    assert cl.job("managed-elsewhere").get("status", {}) == {}
    assert not cl.job_pods("managed-elsewhere")
