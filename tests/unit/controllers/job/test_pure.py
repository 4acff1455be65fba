"""Pure modules of the Job controller: intervals, back-off, pod failure policy, success
policy, indexes, pod construction and ordering, tracking staging."""

from __future__ import annotations

from jobplane.api.intervals import Intervals, parse
from jobplane.api.meta import rfc3339
from jobplane.controllers.job import backoff, indexed, pods, success_policy, tracking
from jobplane.controllers.job import pod_failure_policy as pfp
from jobplane.controllers.job.status import ensure_condition, ensure_suspended

T0 = 1_700_000_000.0


def pod(name="p", *, phase="Running", uid=None, index=None, finalizer=True, exit_code=None, finished=None,
        created=T0, node="", ready=None, restarts=0, annotations=None, conditions=None, deleting=False):
    m = {"name": name, "namespace": "ns", "uid": uid or name, "creationTimestamp": rfc3339(created),
         "annotations": dict(annotations or {})}
    if index is not None:
        m["annotations"][indexed.INDEX_KEY] = str(index)
    if finalizer:
        m["finalizers"] = [pods.TRACKING_FINALIZER]
    if deleting:
        m["deletionTimestamp"] = rfc3339(created + 1)
    status = {"phase": phase, "conditions": list(conditions or [])}
    cs = {"name": "main", "restartCount": restarts}
    if exit_code is not None:
        cs["state"] = {"terminated": {"exitCode": exit_code, "finishedAt": rfc3339(finished or created + 5)}}
    status["containerStatuses"] = [cs]
    if ready is not None:
        status["conditions"].append({"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(ready)})
    return {"metadata": m, "spec": {"nodeName": node}, "status": status}


def job(**spec):
    base = {"completions": 1, "parallelism": 1, "backoffLimit": 6,
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "x"}]}}}
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "namespace": "ns", "uid": "job-uid"}, "spec": base, "status": {}}


def test_intervals_format_parse_and_has():
    iv = Intervals().with_indexes([5, 1, 3, 4, 7, 8])
    assert str(iv) == "1,3-5,7,8"
    assert iv.total() == 6
    assert iv.has(4) and not iv.has(2) and not iv.has(9)
    assert str(parse("0,1,2,5,x,7-9", 9)) == "0-2,5,7,8"
    assert str(parse("0-3", 2)) == "0,1"
    assert str(Intervals().with_indexes([0, 1])) == "0,1"
    assert str(parse("1-2", 10).merge(parse("0,3", 10))) == "0-3"


def test_backoff_delays_double_and_cap():
    assert [backoff.delay_for(n, 10, 360) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 320, 360]
    assert backoff.remaining(T0 + 4, 1, T0, 10, 360) == 6
    assert backoff.remaining(T0 + 11, 1, T0, 10, 360) == 0


def test_backoff_record_resets_on_success():
    store = backoff.BackoffStore(10, 360)
    f1 = pod("f1", phase="Failed", exit_code=1, finished=T0)
    rec = store.new_record("k", [], [f1])
    assert rec.failures_after_last_success == 1 and rec.last_failure_time == T0
    store.update("k", rec)
    f2 = pod("f2", phase="Failed", exit_code=1, finished=T0 + 20)
    assert store.new_record("k", [], [f2]).failures_after_last_success == 2
    s = pod("s", phase="Succeeded", exit_code=0, finished=T0 + 30)
    f3 = pod("f3", phase="Failed", exit_code=1, finished=T0 + 40)
    rec = store.new_record("k", [s], [f2, f3])
    assert rec.failures_after_last_success == 1 and rec.last_failure_time == T0 + 40
    assert store.new_record("k", [s], []) == backoff.EMPTY


def test_pod_failure_policy_actions_and_messages():
    policy = {"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
    ]}
    m = pfp.match(policy, pod("p1", phase="Failed", exit_code=42))
    assert m.action == "FailJob"
    assert m.message == "Container main for pod ns/p1 failed with exit code 42 matching FailJob rule at index 0"
    disrupted = pod("p2", phase="Failed", exit_code=1,
                    conditions=[{"type": "DisruptionTarget", "status": "True"}])
    assert pfp.match(policy, disrupted) == pfp.Match(None, False, "Ignore")
    assert pfp.match(policy, pod("p3", phase="Failed", exit_code=3)).action == "Count"
    assert pfp.match(policy, pod("p4", phase="Failed", exit_code=1)) == pfp.NO_MATCH
    cond_policy = {"rules": [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    assert pfp.match(cond_policy, disrupted).message == \
        "Pod ns/p2 has condition DisruptionTarget matching FailJob rule at index 0"


def test_success_policy():
    done = Intervals().with_indexes([0, 1, 2, 5])
    assert success_policy.match({"rules": [{"succeededIndexes": "0-2"}]}, 10, done) == "Matched rules at index 0"
    assert success_policy.match({"rules": [{"succeededIndexes": "0-3"}]}, 10, done) is None
    assert success_policy.match({"rules": [{"succeededIndexes": "x"}, {"succeededIndexes": "3-6",
                                                                        "succeededCount": 1}]},
                                10, done) == "Matched rules at index 1"
    assert success_policy.match({"rules": [{"succeededCount": 4}]}, 10, done) == "Matched rules at index 0"
    assert success_policy.match({"rules": [{"succeededCount": 5}]}, 10, done) is None


def test_indexed_helpers():
    assert indexed.generate_name("j", 3) == "j-3-"
    long = "a" * 60
    g = indexed.generate_name(long, 12)
    assert len(g) == 58 and g.endswith("-12-")
    assert indexed.completion_index(pod(index=4)) == 4
    assert indexed.completion_index(pod(annotations={indexed.INDEX_KEY: "-1"})) == indexed.UNKNOWN
    assert indexed.completion_index(pod(annotations={indexed.INDEX_KEY: "x"})) == indexed.UNKNOWN
    j = job(completionMode="Indexed", completions=6, parallelism=3)
    active = [pod("a", index=0), pod("b", index=2)]
    pending = indexed.first_pending_indexes(j, active, active, Intervals().with_indexes([1, 3]), None, 3)
    assert pending == [4, 5]
    dup = [pod("x1", index=1, created=T0), pod("x2", index=1, created=T0 + 5, node="n"),
           pod("x3", index=7), pod("x4")]
    rm, keep = indexed.duplicated_for_removal(dup, 6)
    assert {p["metadata"]["name"] for p in rm} == {"x1", "x3", "x4"}
    assert [p["metadata"]["name"] for p in keep] == ["x2"]


def test_pod_template_indexed():
    j = job(completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=1)
    t = pods.PodTemplate(j, indexed.add_index_env)
    replaced = pod("old", phase="Failed", index=1, exit_code=1,
                   annotations={indexed.FAILURE_COUNT_KEY: "0"})
    p = t.pod(generate_name=indexed.generate_name("j", 1), labels={indexed.INDEX_KEY: "1"},
              annotations=indexed.index_annotations(j, 1, replaced), hostname="j-1")
    m = p["metadata"]
    assert m["generateName"] == "j-1-"
    assert m["labels"] == {"a": "b", indexed.INDEX_KEY: "1"}
    assert m["annotations"] == {indexed.INDEX_KEY: "1", indexed.FAILURE_COUNT_KEY: "1"}
    assert m["finalizers"] == [pods.TRACKING_FINALIZER]
    assert m["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "job-uid",
                                     "controller": True, "blockOwnerDeletion": True}]
    assert p["spec"]["hostname"] == "j-1"
    assert p["spec"]["containers"][0]["env"] == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}}]
    # the template itself is untouched
    assert "env" not in j["spec"]["template"]["spec"]["containers"][0]


def test_active_pods_order():
    unscheduled = pod("u", phase="Pending")
    pending = pod("p", phase="Pending", node="n")
    running_ready_old = pod("r1", node="n", ready=T0)
    running_ready_new = pod("r2", node="n", ready=T0 + 10)
    running_not_ready = pod("r3", node="n")
    restarts = pod("r4", node="n", restarts=3)
    order = pods.sort_for_deletion([running_ready_old, running_ready_new, running_not_ready, restarts,
                                    pending, unscheduled])
    assert [p["metadata"]["name"] for p in order] == ["u", "p", "r4", "r3", "r2", "r1"]


def test_is_pod_failed_and_replacement_policy():
    deleting = pod("d", deleting=True)
    assert pods.is_pod_failed(deleting, job())
    assert not pods.is_pod_failed(deleting, job(podReplacementPolicy="Failed"))
    assert pods.is_terminating(deleting) and not pods.is_active(deleting)


def test_tracking_stage_counts_once():
    j = job(completions=3, parallelism=3)
    s1 = pod("s1", phase="Succeeded", exit_code=0)
    f1 = pod("f1", phase="Failed", exit_code=1)
    gone = "gone-uid"
    j["status"] = {"succeeded": 1, "uncountedTerminatedPods": {"succeeded": [gone, "s1"]}}
    ctx = tracking.SyncContext(job=j, pods=[s1, f1], active=[], expected_rm=set(),
                               uncounted_succeeded={gone, "s1"})
    st = tracking.stage(ctx, False)
    # the pod that lost its finalizer (gone) moved into the counter; s1 stays staged once
    assert j["status"]["succeeded"] == 2
    assert j["status"]["uncountedTerminatedPods"] == {"succeeded": ["s1"], "failed": ["f1"]}
    assert {p["metadata"]["name"] for p in st.to_remove} == {"s1", "f1"}
    assert st.needs_flush


def test_conditions():
    conds: list = []
    assert not ensure_suspended(conds, False, T0)
    assert conds == []
    assert ensure_suspended(conds, True, T0)
    assert conds[0]["reason"] == "JobSuspended" and conds[0]["status"] == "True"
    assert ensure_suspended(conds, False, T0 + 1)
    assert conds[0] == {"type": "Suspended", "status": "False", "reason": "JobResumed", "message": "Job resumed",
                        "lastProbeTime": rfc3339(T0 + 1), "lastTransitionTime": rfc3339(T0 + 1)}
    assert not ensure_condition(conds, "Suspended", "False", "JobResumed", "Job resumed", T0 + 2)
