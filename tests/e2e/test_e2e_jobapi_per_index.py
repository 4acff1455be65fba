"""spec.backoffLimitPerIndex and spec.maxFailedIndexes with real processes
(upstream test/e2e/apps/job.go #13-#15)."""

from __future__ import annotations

from collections import defaultdict

from jobapi_helpers import FAIL_ODD_SUCCEED_EVEN, indexed_job, jobs_resource_version, watch_conditions
from jobs_helpers import condition, phase

INDEX = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"


def _failure_counts(pods: list[dict]) -> dict[str, list[str]]:
    """index -> the failure-count annotations of its pods, oldest first."""
    by_index: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for p in pods:
        ann = p["metadata"]["annotations"]
        by_index[ann[INDEX]].append((int(ann[FAILURE_COUNT]), ann[FAILURE_COUNT]))
    return {i: [v for _, v in sorted(values)] for i, values in by_index.items()}


def test_all_indexes_run_despite_failing_ones(cluster):
    # #13: failOddSucceedEven, p=2, c=4, backoffLimitPerIndex=1, backoffLimit nil.
    cl = cluster("--pod-backoff-base", "0.2")
    rv = jobs_resource_version(cl)
    cl.apply(indexed_job("bli-odd", FAIL_ODD_SUCCEED_EVEN, 4, 2, backoffLimitPerIndex=1))
    history = watch_conditions(cl, "bli-odd", rv)
    assert history[-1] == [("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")], history
    job = cl.job("bli-odd")
    assert job["spec"]["backoffLimit"] == 2147483647  # defaulted because backoffLimitPerIndex is set
    assert condition(job, "Failed")["message"] == "Job has failed indexes"
    status = job["status"]
    assert status["failedIndexes"] == "1,3" and status["completedIndexes"] == "0,2", status
    assert status["failed"] == 4 and status["succeeded"] == 2, status
    assert status.get("active", 0) == 0 and status["terminating"] == 0 and status["ready"] == 0, status
    pods = cl.job_pods("bli-odd")
    # #15: every pod carries the per-index failure count, "0" then "1" for the retried indexes.
    assert _failure_counts(pods) == {"0": ["0"], "1": ["0", "1"], "2": ["0"], "3": ["0", "1"]}
    assert sorted(phase(p) for p in pods) == ["Failed"] * 4 + ["Succeeded"] * 2


def test_max_failed_indexes_exceeded_stops_the_job(cluster):
    # #14: fail, p=1, c=4, backoffLimitPerIndex=0, maxFailedIndexes=0.
    cl = cluster("--pod-backoff-base", "0.2")
    cl.apply(indexed_job("bli-max", "exit 1", 4, 1, backoffLimitPerIndex=0, maxFailedIndexes=0))
    job = cl.wait_finished("bli-max", timeout=30)
    failed = condition(job, "Failed")
    assert failed and failed["reason"] == "MaxFailedIndexesExceeded", job["status"]
    assert failed["message"] == "Job has exceeded the specified maximal number of failed indexes"
    assert condition(job, "FailureTarget")["reason"] == "MaxFailedIndexesExceeded"
    status = job["status"]
    assert status["failedIndexes"] == "0" and status["failed"] == 1, status
    assert not status.get("completedIndexes") and not status.get("succeeded"), status
    assert len(cl.job_pods("bli-max")) == 1  # indexes 1-3 never started


def test_every_index_failing_records_failure_counts(cluster):
    # #15: fail, p=c=2, backoffLimitPerIndex=1.
    cl = cluster("--pod-backoff-base", "0.2")
    cl.apply(indexed_job("bli-all", "exit 1", 2, 2, backoffLimitPerIndex=1))
    job = cl.wait_finished("bli-all", timeout=30)
    assert condition(job, "Failed")["reason"] == "FailedIndexes"
    status = job["status"]
    assert status["failedIndexes"] == "0,1" and not status.get("completedIndexes"), status
    assert status["failed"] == 4 and not status.get("succeeded"), status
    assert _failure_counts(cl.job_pods("bli-all")) == {"0": ["0", "1"], "1": ["0", "1"]}
