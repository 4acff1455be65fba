"""``kubectl describe job`` for the newer Job API fields: upstream's describeJob prints only
``Completed Indexes`` (capped by capIndexesListOrNone) — no failed indexes, success or failure
policies, managedBy or podReplacementPolicy lines, and no Conditions section."""

from __future__ import annotations

import pytest

from jobplane.cli import describe

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("indexes", "expected"), [
    ("", "<none>"),
    ("0,2", "0,2"),
    ("1-5", "1-5"),
    ("0," * 25 + "1", "0," * 25 + "1"),  # no comma at or after position 50
    ("0," * 25 + "1,2", "0," * 25 + "1,..."),  # the first comma after position 50 is kept
    # Cut at the first comma at or after position 50, keeping that comma.
    (",".join(str(i) for i in range(0, 200, 2)), "0,2,4,6,8,10,12,14,16,18,20,22,24,26,28,30,32,34,36,...")
])
def test_cap_indexes_list_or_none(indexes, expected):
    assert describe.cap_indexes_list_or_none(indexes, 50) == expected


def test_long_run_without_comma_after_the_limit_is_not_cut():
    text = ",".join(str(i) for i in range(0, 30, 2)) + ",100000-199999"
    assert len(text) > 50 and text.find(",", 50) < 0
    assert describe.cap_indexes_list_or_none(text, 50) == text


JOB = {
    "metadata": {"name": "idx", "namespace": "default"},
    "spec": {"parallelism": 2, "completions": 4, "completionMode": "Indexed", "suspend": True,
             "backoffLimit": 2147483647, "backoffLimitPerIndex": 1, "maxFailedIndexes": 2,
             "managedBy": "kubernetes.io/job-controller", "podReplacementPolicy": "Failed",
             "podFailurePolicy": {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In",
                                                                                     "values": [1]}}]},
             "successPolicy": {"rules": [{"succeededCount": 1}]},
             "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
             "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}},
    "status": {"active": 0, "ready": 0, "terminating": 1, "failed": 4, "succeeded": 2,
               "completedIndexes": "0,2", "failedIndexes": "1,3",
               "conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended"}]},
}


def test_describe_indexed_job_with_policies_prints_only_upstream_lines():
    text = describe.describe("Job", JOB, None, NOW)
    head = text.split("Pod Template:")[0]
    lines = [ln.split(":", 1)[0] for ln in head.splitlines()]
    assert lines == ["Name", "Namespace", "Selector", "Labels", "Annotations", "Parallelism", "Completions",
                     "Completion Mode", "Suspend", "Backoff Limit", "Pods Statuses", "Completed Indexes"]
    assert "Completed Indexes:  0,2\n" in text
    assert "Pods Statuses:      0 Active (0 Ready) / 2 Succeeded / 4 Failed\n" in text
    for absent in ("Failed Indexes", "Backoff Limit Per Index", "Max Failed Indexes", "Conditions",
                   "Managed By", "Success Policy", "Pod Failure Policy", "Terminating"):
        assert absent not in text


def test_completed_indexes_only_for_indexed_jobs():
    job = {**JOB, "spec": {**JOB["spec"], "completionMode": "NonIndexed"}}
    assert "Completed Indexes" not in describe.describe("Job", job, None, NOW)
    job = {**JOB, "status": {}}
    assert "Completed Indexes:  <none>\n" in describe.describe("Job", job, None, NOW)


def test_host_path_type_printed_raw_and_none_only_when_unset():
    # printHostPathVolumeSource: "<none>" for a nil type; the defaulted "" prints as empty.
    job = {**JOB, "spec": {**JOB["spec"], "template": {"spec": {
        "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "a", "hostPath": {"path": "/a", "type": ""}},
                    {"name": "b", "hostPath": {"path": "/b"}}]}}}}
    text = describe.describe("Job", job, None, NOW)
    assert "    HostPathType:  \n" in text
    assert "    HostPathType:  <none>\n" in text
