from jobplane.api.resources import pod_requests
from jobplane.controllers.scheduler import (
    failure_message,
    filter_node,
    lease_fresh,
    matches_node_selector,
    score,
    tolerates,
    wants_scheduling,
)

NOW = 1_700_000_000.0


def node(name="n1", cpu="2", memory="4Gi", pods="110", ready="True", labels=None, **spec):
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                       "conditions": [{"type": "Ready", "status": ready}]}}


def pod(cpu=None, memory=None, gpu=None, **spec):
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory), ("nvidia.com/gpu", gpu)) if v}
    return {"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": req, "limits": {}}}], **spec}}


def check(p, n, used=None, lease=None):
    return filter_node(p, pod_requests(p), n, lease, used or {}, NOW)


def test_resources_fit():
    assert check(pod(cpu="1"), node()) == []
    assert check(pod(cpu="3"), node()) == ["Insufficient cpu"]
    assert check(pod(cpu="1", memory="1Gi"), node(), {"cpu": 1.5, "memory": 3.5 * 2**30}) == [
        "Insufficient cpu", "Insufficient memory"]
    assert check(pod(gpu="1"), node()) == ["Insufficient nvidia.com/gpu"]
    assert check(pod(), node(pods="1"), {"pods": 1}) == ["Too many pods"]


def test_readiness_and_unschedulable():
    assert check(pod(), node(ready="False")) == ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
    assert check(pod(), node(ready="Unknown")) == [
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
    stale = {"spec": {"renewTime": "2023-01-01T00:00:00.000000Z", "leaseDurationSeconds": 40}}
    assert not lease_fresh(stale, NOW)
    assert check(pod(), node(), lease=stale) == ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
    assert check(pod(), node(unschedulable=True)) == ["node(s) were unschedulable"]


def test_selector_affinity_taints():
    gpu_node = node(labels={"accel": "a100", "zone": "z1"})
    assert matches_node_selector(pod(nodeSelector={"accel": "a100"}), gpu_node)
    assert check(pod(nodeSelector={"accel": "h100"}), gpu_node) == [
        "node(s) didn't match Pod's node affinity/selector"]
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]},
        {"matchExpressions": [{"key": "accel", "operator": "Exists"}]}]}}}
    assert matches_node_selector(pod(affinity=aff), gpu_node)
    taint = {"key": "dedicated", "value": "ml", "effect": "NoSchedule"}
    tainted = node(taints=[taint])
    assert check(pod(), tainted) == ["node(s) had untolerated taint {dedicated: ml}"]
    assert tolerates([{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}], taint)
    assert tolerates([{"operator": "Exists"}], taint)
    assert not tolerates([{"key": "dedicated", "value": "other"}], taint)
    assert check(pod(tolerations=[{"key": "dedicated", "operator": "Exists"}]), tainted) == []


def test_failure_message():
    assert failure_message(1, {"n1": ["Insufficient cpu"]}) == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod.")
    msg = failure_message(3, {"a": ["Insufficient cpu"], "b": ["node(s) were unschedulable"],
                              "c": ["Insufficient cpu", "Insufficient memory"]})
    assert msg.startswith("0/3 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable, "
                          "2 Insufficient cpu. preemption: 0/3 nodes are available: "
                          "1 Preemption is not helpful for scheduling, 2 No preemption victims found")
    assert failure_message(0, {}) == "no nodes available to schedule pods"


def test_wants_scheduling_and_score():
    assert wants_scheduling(pod())
    assert not wants_scheduling(pod(nodeName="n1"))
    assert not wants_scheduling(pod(schedulerName="other"))
    p = pod()
    p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert not wants_scheduling(p)
    alloc = {"cpu": 4.0, "memory": 8.0}
    assert score({"cpu": 1}, {}, alloc) > score({"cpu": 1}, {"cpu": 2}, alloc)
