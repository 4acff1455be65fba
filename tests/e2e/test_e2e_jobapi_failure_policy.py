"""spec.podFailurePolicy with real processes (upstream test/e2e/apps/job.go #2-#4, #16):
FailJob on an exit code, Ignore on an exit code and on the DisruptionTarget pod condition,
FailIndex, and rule order with Count/NotIn."""

from __future__ import annotations

import pytest
from jobapi_helpers import (
    fail_once_per_index,
    indexed_job,
    jobs_resource_version,
    pod_dict,
    watch_conditions,
    with_host_dir,
)
from jobs_helpers import NS, cluster_factory, condition, job_manifest, phase, wait_for


@pytest.fixture
def cluster(server_factory):
    yield from cluster_factory(server_factory)


INDEX = "batch.kubernetes.io/job-completion-index"


def _exit_codes(pods: list[dict]) -> list[int]:
    return sorted(p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods)


def test_fail_job_on_exit_code_fails_at_once(cluster):
    cl = cluster("--pod-backoff-base", "0.2")
    rv = jobs_resource_version(cl)
    cl.apply(job_manifest("pfp-failjob", ["sh", "-c", "exit 42"], completions=4, parallelism=1, backoffLimit=6,
                          podFailurePolicy={"rules": [{"action": "FailJob", "onExitCodes": {
                              "containerName": "c", "operator": "In", "values": [42]}}]}))
    history = watch_conditions(cl, "pfp-failjob", rv)
    assert history[-1] == [("FailureTarget", "PodFailurePolicy"), ("Failed", "PodFailurePolicy")], history
    assert [("FailureTarget", "PodFailurePolicy")] in history, f"no interim FailureTarget: {history}"

    job = cl.job("pfp-failjob")
    pods = cl.job_pods("pfp-failjob")
    assert len(pods) == 1 and phase(pods[0]) == "Failed", [phase(p) for p in pods]
    pod = pods[0]["metadata"]["name"]
    expected = f"Container c for pod {NS}/{pod} failed with exit code 42 matching FailJob rule at index 0"
    for ctype in ("FailureTarget", "Failed"):
        assert condition(job, ctype)["message"] == expected
    status = job["status"]
    assert status["failed"] == 1 and not status.get("succeeded"), status
    assert status["active"] == 0 and status["ready"] == 0 and status["terminating"] == 0, status
    assert "completionTime" not in status
    events = cl.core.list_namespaced_event(NS, field_selector="involvedObject.name=pfp-failjob").items
    assert any(e.reason == "PodFailurePolicy" and e.type == "Warning" and e.message == expected
               for e in events), [(e.reason, e.message) for e in events]


def test_ignore_on_exit_code_does_not_count_failures(cluster, tmp_path):
    # #3: Indexed, 3 pods, backoffLimit 0 (upstream uses 2; 0 makes a counted failure fatal).
    cl = cluster("--pod-backoff-base", "0.2")
    manifest = indexed_job("pfp-ignore", fail_once_per_index(str(tmp_path)), 3, 3, backoffLimit=0,
                           podFailurePolicy={"rules": [{"action": "Ignore", "onExitCodes": {
                               "operator": "In", "values": [42]}}]})
    cl.apply(with_host_dir(manifest, str(tmp_path)))
    job = cl.wait_complete("pfp-ignore", timeout=30)
    cond = condition(job, "Complete")
    assert cond["reason"] == "CompletionsReached"
    assert job["status"]["succeeded"] == 3 and not job["status"].get("failed"), job["status"]
    assert job["status"]["completedIndexes"] == "0-2"
    pods = cl.job_pods("pfp-ignore")
    assert sorted(phase(p) for p in pods) == ["Failed"] * 3 + ["Succeeded"] * 3
    assert _exit_codes([p for p in pods if phase(p) == "Failed"]) == [42, 42, 42]
    # The replacement of an ignored failure carries the ignored count, not the failure count.
    for p in pods:
        ann = p["metadata"]["annotations"]
        if phase(p) == "Succeeded":
            assert "batch.kubernetes.io/job-index-failure-count" not in ann  # no backoffLimitPerIndex
            assert "batch.kubernetes.io/job-index-ignored-failure-count" not in ann


def test_ignore_on_disruption_target_condition(cluster, tmp_path):
    # #4: upstream evicts the pods; here an external component marks the pod with
    # DisruptionTarget (as the eviction API does) and deletes it: the process gets SIGTERM,
    # the pod fails, the failure is ignored (backoffLimit 0 is not hit) and the pod replaced.
    cl = cluster("--pod-backoff-base", "0.2")
    marker = tmp_path / "disrupted-once"
    script = f"if [ $JOB_COMPLETION_INDEX = 1 ] || [ -e {marker} ]; then exit 0; fi; touch {marker}; exec sleep 60"
    cl.apply(with_host_dir(indexed_job("pfp-disrupt", script, 2, 2, backoffLimit=0, podFailurePolicy={
        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}), str(tmp_path)))

    def running_index_0() -> dict | None:
        for p in cl.job_pods("pfp-disrupt"):
            if p["metadata"]["annotations"][INDEX] == "0" and condition(p, "Ready"):
                return p
        return None

    name = wait_for(running_index_0, 15, what="index 0 running")["metadata"]["name"]
    patch = ('{"status":{"conditions":[{"type":"DisruptionTarget","status":"True",'
             '"reason":"EvictionByEvictionAPI","message":"Eviction API: evicting"}]}}')
    cl.kubectl("patch", "pod", name, "--subresource=status", "--type=strategic", "-p", patch, check=True)
    wait_for(lambda: condition(pod_dict(cl, name), "DisruptionTarget"), 5, what="DisruptionTarget on the pod")
    cl.kubectl("delete", "pod", name, "--wait=false", check=True)

    job = cl.wait_complete("pfp-disrupt", timeout=30)
    assert condition(job, "Complete")["reason"] == "CompletionsReached"
    assert job["status"]["succeeded"] == 2 and not job["status"].get("failed"), job["status"]
    succeeded = [p for p in cl.job_pods("pfp-disrupt") if phase(p) == "Succeeded"]
    assert len(succeeded) == 2 and name not in {p["metadata"]["name"] for p in succeeded}
    # Exactly one replacement: the disrupted pod of index 0.
    events = cl.core.list_namespaced_event(NS, field_selector="involvedObject.name=pfp-disrupt").items
    assert sum(e.reason == "SuccessfulCreate" for e in events) == 3, [(e.reason, e.message) for e in events]


def test_fail_index_action_marks_index_failed(cluster):
    # #16: failOddSucceedEven, p=c=2, backoffLimitPerIndex 1, FailIndex on exit 1.
    cl = cluster("--pod-backoff-base", "0.2")
    cl.apply(indexed_job("pfp-failindex", "if [ $JOB_COMPLETION_INDEX = 1 ]; then exit 1; fi", 2, 2,
                         backoffLimitPerIndex=1,
                         podFailurePolicy={"rules": [{"action": "FailIndex", "onExitCodes": {
                             "operator": "In", "values": [1]}}]}))
    job = cl.wait_finished("pfp-failindex", timeout=30)
    failed = condition(job, "Failed")
    assert failed and failed["reason"] == "FailedIndexes" and failed["message"] == "Job has failed indexes"
    assert condition(job, "FailureTarget")["reason"] == "FailedIndexes"
    status = job["status"]
    assert status["failedIndexes"] == "1" and status["completedIndexes"] == "0", status
    assert status["failed"] == 1 and status["succeeded"] == 1, status
    # FailIndex skips the per-index retry: only one pod ever ran for index 1.
    assert len(cl.job_pods("pfp-failindex")) == 2


def test_first_matching_rule_wins_and_container_name_filters(cluster, tmp_path):
    # Rule 0 only looks at container "side" (never fails); rule 1 counts exit 3 (NotIn [3] does
    # not match 3); rule 2 fails the job on any exit code other than 3 — so the second pod's
    # exit 5 fails the job with the rule index 2 in the message.
    cl = cluster("--pod-backoff-base", "0.2")
    script = "if [ -e $D/first ]; then exit 5; fi; touch $D/first; exit 3"
    manifest = job_manifest("pfp-order", ["sh", "-c", script], backoffLimit=6, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "side", "operator": "In", "values": [3, 5]}},
        {"action": "Count", "onExitCodes": {"containerName": "c", "operator": "In", "values": [3]}},
        {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [3]}},
    ]})
    pod_spec = manifest["spec"]["template"]["spec"]
    pod_spec["containers"][0]["env"] = [{"name": "D", "value": str(tmp_path)}]
    pod_spec["containers"].append({"name": "side", "image": "busybox", "command": ["sh", "-c", "exit 0"]})
    cl.apply(with_host_dir(manifest, str(tmp_path)))
    job = cl.wait_finished("pfp-order", timeout=30)
    failed = condition(job, "Failed")
    assert failed and failed["reason"] == "PodFailurePolicy", job["status"]
    pods = sorted(cl.job_pods("pfp-order"), key=lambda p: p["metadata"]["creationTimestamp"])
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    second = next(p for p in pods if any(
        s["name"] == "c" and s["state"]["terminated"]["exitCode"] == 5 for s in p["status"]["containerStatuses"]))
    assert failed["message"] == (f"Container c for pod {NS}/{second['metadata']['name']} failed with exit code 5 "
                                 "matching FailJob rule at index 2")
    assert job["status"]["failed"] == 2, job["status"]
