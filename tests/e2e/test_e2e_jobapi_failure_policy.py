"""spec.podFailurePolicy with real processes (upstream test/e2e/apps/job.go #2-#4, #16):
FailJob on an exit code, Ignore on an exit code and on the DisruptionTarget pod condition
(pods evicted through pods/eviction),
FailIndex, and rule order with Count/NotIn."""

from __future__ import annotations

from jobapi_helpers import (
    fail_once_per_index,
    indexed_job,
    jobs_resource_version,
    watch_conditions,
    with_host_dir,
)
from jobs_helpers import NS, Cluster, condition, job_manifest, phase, wait_for
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch


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
    assert status.get("active", 0) == 0 and status["ready"] == 0 and status["terminating"] == 0, status
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


def _disruption_reasons(cl: Cluster, names: set[str], resource_version: str) -> dict[str, tuple[str, str]]:
    """(reason, message) of the DisruptionTarget condition each of ``names`` got, from a pod
    watch after ``resource_version`` (the evicted pods may already be gone when we look)."""
    seen: dict[str, tuple[str, str]] = {}
    w = k8s_watch.Watch()
    for event in w.stream(cl.core.list_namespaced_pod, NS, resource_version=resource_version,
                          timeout_seconds=10):
        pod = event["object"]
        for c in pod.status.conditions or ():
            if pod.metadata.name in names and c.type == "DisruptionTarget" and c.status == "True":
                seen[pod.metadata.name] = (c.reason, c.message)
        if set(seen) == names:
            w.stop()
    return seen


def test_ignore_on_disruption_target_condition_after_eviction(cluster, tmp_path):
    # #4: Indexed, 3 pods, Ignore on DisruptionTarget=True, backoffLimit 0 (a counted failure
    # would be fatal). Once all 3 are ready, each is evicted through pods/eviction (policy/v1):
    # the pod gets DisruptionTarget and is deleted gracefully, its process gets SIGTERM and the
    # ignored failure is replaced; the replacements find their index's marker and succeed.
    cl = cluster("--pod-backoff-base", "0.2")
    marker = f"{tmp_path}/marker-$JOB_COMPLETION_INDEX"
    script = f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; exec sleep 60"
    cl.apply(with_host_dir(indexed_job("pfp-disrupt", script, 3, 3, backoffLimit=0, podFailurePolicy={
        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}), str(tmp_path)))

    def all_ready() -> list[dict] | None:
        pods = cl.job_pods("pfp-disrupt")
        return pods if len(pods) == 3 and all(condition(p, "Ready") for p in pods) else None

    names = {p["metadata"]["name"] for p in wait_for(all_ready, 20, what="3 ready pods")}
    rv = cl.core.list_namespaced_pod(NS).metadata.resource_version
    for name in sorted(names):
        body = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=name, namespace=NS))
        cl.core.create_namespaced_pod_eviction(name, NS, body)
    reasons = _disruption_reasons(cl, names, rv)
    assert reasons == {n: ("EvictionByEvictionAPI", "Eviction API: evicting") for n in names}, reasons

    job = cl.wait_complete("pfp-disrupt", timeout=30)
    assert condition(job, "Complete")["reason"] == "CompletionsReached"
    assert job["status"]["succeeded"] == 3 and not job["status"].get("failed"), job["status"]
    assert job["status"]["completedIndexes"] == "0-2"
    succeeded = [p for p in cl.job_pods("pfp-disrupt") if phase(p) == "Succeeded"]
    assert len(succeeded) == 3 and not names & {p["metadata"]["name"] for p in succeeded}
    # One replacement per evicted pod.
    events = cl.core.list_namespaced_event(NS, field_selector="involvedObject.name=pfp-disrupt").items
    assert sum(e.reason == "SuccessfulCreate" for e in events) == 6, [(e.reason, e.message) for e in events]


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
