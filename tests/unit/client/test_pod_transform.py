"""The pod informer transform: terminal pods are cached compact, with everything readers use."""

from __future__ import annotations

import copy

import pytest

from jobplane.client.informer import Informer, SharedInformerFactory
from jobplane.client.pod_transform import LAST_APPLIED, compact_terminal_pod
from jobplane.clock import FakeClock
from jobplane.controllers.job.pods import active_pods_key, finished_time


def full_pod(name: str = "p", phase: str = "Succeeded", rv: str = "7") -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": rv,
                     "creationTimestamp": "2026-11-22T21:00:00Z", "labels": {"job-name": "j"},
                     "annotations": {"batch.kubernetes.io/job-completion-index": "3", LAST_APPLIED: "{...}"},
                     "finalizers": ["batch.kubernetes.io/job-tracking"],
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "j1",
                                          "controller": True, "blockOwnerDeletion": True}],
                     "managedFields": [{"manager": "kubectl"}]},
        "spec": {"nodeName": "n1", "restartPolicy": "Never", "terminationGracePeriodSeconds": 30,
                 "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "exit 3"],
                                 "env": [{"name": "A", "value": "1"}],
                                 "resources": {"requests": {"cpu": "1"}}}],
                 "initContainers": [{"name": "side", "image": "x", "restartPolicy": "Always"}],
                 "volumes": [{"name": "v", "emptyDir": {}}],
                 "tolerations": [{"key": "k", "operator": "Exists"}]},
        "status": {"phase": phase,
                   "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted",
                                   "lastTransitionTime": "2026-11-22T21:00:05Z"}],
                   "containerStatuses": [{"name": "main", "restartCount": 0, "state": {"terminated": {
                       "exitCode": 3, "finishedAt": "2026-11-22T21:00:04Z"}}}],
                   "initContainerStatuses": [{"name": "side", "state": {"terminated": {
                       "exitCode": 0, "finishedAt": "2026-11-22T21:00:06Z"}}}]},
    }


def test_running_pods_pass_through_unchanged():
    pod = full_pod(phase="Running")
    assert compact_terminal_pod(pod) is pod


def test_terminal_pod_keeps_what_readers_use_and_input_is_untouched():
    pod = full_pod()
    before = copy.deepcopy(pod)
    out = compact_terminal_pod(pod)
    assert pod == before  # watch events are shared: never mutated
    md = out["metadata"]
    assert "managedFields" not in md and LAST_APPLIED not in md["annotations"]
    for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "labels", "finalizers",
                "ownerReferences"):
        assert md[key] == pod["metadata"][key]
    assert md["annotations"]["batch.kubernetes.io/job-completion-index"] == "3"
    assert out["status"] == pod["status"]
    assert out["spec"] == {"nodeName": "n1", "restartPolicy": "Never", "terminationGracePeriodSeconds": 30,
                           "containers": [{"name": "main"}],
                           "initContainers": [{"name": "side", "restartPolicy": "Always"}]}
    # the Job controller's readings do not change
    assert finished_time(out) == finished_time(pod)
    assert active_pods_key(out) == active_pods_key(pod)


def test_same_revision_shares_one_compact_object():
    a, b = full_pod(rv="9"), full_pod(rv="9")
    assert compact_terminal_pod(a) is compact_terminal_pod(b)
    assert compact_terminal_pod(full_pod(rv="10")) is not compact_terminal_pod(a)


def test_sibling_pods_share_their_repeated_parts_and_nothing_else():
    a, b = full_pod("a"), full_pod("b")
    b["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] = "4"
    ca, cb = compact_terminal_pod(a), compact_terminal_pod(b)
    for path in (("spec",), ("metadata", "ownerReferences"), ("metadata", "finalizers"), ("status", "conditions")):
        x, y = ca, cb
        for k in path:
            x, y = x[k], y[k]
        assert x is y
        assert path == ("spec",) or x == _at(a, path) == _at(b, path)
    # the pod's own parts are its own
    assert ca["metadata"] is not cb["metadata"] and ca["status"] is not cb["status"]
    assert ca["metadata"]["annotations"] != cb["metadata"]["annotations"]
    # equal as Python values is not enough: true, 1 and 1.0 are different JSON
    c, d = full_pod("c"), full_pod("d")
    c["metadata"]["ownerReferences"][0]["controller"] = 1
    assert compact_terminal_pod(c)["metadata"]["ownerReferences"][0]["controller"] is not True
    assert compact_terminal_pod(d)["metadata"]["ownerReferences"][0]["controller"] is True
    # a different condition is not shared
    d2 = full_pod("e")
    d2["status"]["conditions"][0]["lastTransitionTime"] = "2026-11-22T21:00:09Z"
    assert compact_terminal_pod(d2)["status"]["conditions"] == d2["status"]["conditions"] != ca["status"]["conditions"]


def test_a_part_that_is_not_json_is_kept_unshared():
    odd = full_pod("odd")
    odd["status"]["conditions"] = [{"type": "Ready", "tags": {"a"}}]
    out = compact_terminal_pod(odd)
    assert out["status"]["conditions"] == odd["status"]["conditions"]
    assert out["status"]["conditions"] is not odd["status"]["conditions"]


def _at(obj, path):
    for k in path:
        obj = obj[k]
    return obj


class ListOnlyClient:
    def __init__(self, items):
        self.items = items

    async def list(self, resource, namespace=None, **kw):
        return {"items": self.items, "metadata": {"resourceVersion": "5"}}


async def test_informer_caches_and_hands_out_transformed_objects():
    inf = Informer(ListOnlyClient([full_pod("a"), full_pod("b", phase="Running")]), "pods",
                   clock=FakeClock(), transform=compact_terminal_pod)
    seen = []
    inf.add_handler(on_add=seen.append)
    await inf._list_and_replace()
    assert "volumes" not in inf.get("default", "a")["spec"]
    assert "volumes" in inf.get("default", "b")["spec"]
    assert [p["metadata"]["name"] for p in seen] == ["a", "b"] and "volumes" not in seen[0]["spec"]
    inf._apply_event("MODIFIED", full_pod("b", phase="Failed", rv="8"))
    assert inf.get("default", "b")["spec"]["containers"] == [{"name": "main"}]


async def test_set_transform_only_before_start_and_factory_default():
    factory = SharedInformerFactory(ListOnlyClient([]), FakeClock())
    assert factory.informer("pods").transform is compact_terminal_pod
    assert factory.informer("jobs").transform is None
    assert SharedInformerFactory(ListOnlyClient([]), FakeClock(), transforms={}).informer("po").transform is None
    inf = Informer(ListOnlyClient([]), "pods", clock=FakeClock())
    inf.set_transform(compact_terminal_pod)
    await inf.start()
    try:
        with pytest.raises(RuntimeError):
            inf.set_transform(None)
    finally:
        await inf.stop()
