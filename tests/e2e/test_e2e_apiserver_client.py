"""The official ``kubernetes`` Python client against a real server."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException


def job_body(name: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox",
                                                           "command": ["true"]}],
                                           "restartPolicy": "Never"}}}}


def pod_body(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"]}]}}


def test_jobs_crud_selectors_pagination(jp):
    batch = k8s.BatchV1Api(jp.kube_client())
    for i in range(5):
        batch.create_namespaced_job("default", job_body(f"j{i}", {"tier": "a" if i % 2 else "b"}))
    page = batch.list_namespaced_job("default", limit=2)
    names = [j.metadata.name for j in page.items]
    assert len(names) == 2 and page.metadata._continue
    while page.metadata._continue:
        page = batch.list_namespaced_job("default", limit=2, _continue=page.metadata._continue)
        names += [j.metadata.name for j in page.items]
    assert sorted(names) == [f"j{i}" for i in range(5)]
    selected = batch.list_namespaced_job("default", label_selector="tier=a")
    assert sorted(j.metadata.name for j in selected.items) == ["j1", "j3"]

    patched = batch.patch_namespaced_job("j0", "default", {"metadata": {"labels": {"patched": "yes"}}})
    assert patched.metadata.labels["patched"] == "yes"
    stale = batch.read_namespaced_job("j0", "default")
    batch.patch_namespaced_job("j0", "default", {"metadata": {"labels": {"again": "1"}}})
    stale.metadata.labels["x"] = "y"
    with pytest.raises(ApiException) as exc:
        batch.replace_namespaced_job("j0", "default", stale)
    assert exc.value.status == 409
    with pytest.raises(ApiException) as exc:
        batch.create_namespaced_job("default", job_body("j0"))
    assert exc.value.status == 409

    before_delete = batch.list_namespaced_job("default").metadata.resource_version
    batch.delete_namespaced_job("j1", "default", propagation_policy="Background")
    with pytest.raises(ApiException) as exc:
        batch.read_namespaced_job("j1", "default")
    assert exc.value.status == 404
    # the state as of a revision, as etcd reads it; NotOlderThan is the current one
    exact = batch.list_namespaced_job("default", resource_version=before_delete, resource_version_match="Exact")
    assert "j1" in [j.metadata.name for j in exact.items] and exact.metadata.resource_version == before_delete
    newer = batch.list_namespaced_job("default", resource_version=before_delete,
                                      resource_version_match="NotOlderThan")
    assert "j1" not in [j.metadata.name for j in newer.items]
    with pytest.raises(ApiException) as exc:
        batch.list_namespaced_job("default", resource_version_match="Exact")
    assert exc.value.status == 422 and "resourceVersionMatch is forbidden unless resourceVersion" in exc.value.body


def test_watch_jobs(jp):
    batch = k8s.BatchV1Api(jp.kube_client())
    batch.create_namespaced_job("default", job_body("w1"))
    rv = batch.list_namespaced_job("default").metadata.resource_version
    batch.patch_namespaced_job("w1", "default", {"metadata": {"labels": {"step": "2"}}})
    w = k8s_watch.Watch()
    seen = []
    for event in w.stream(batch.list_namespaced_job, "default", resource_version=rv, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "MODIFIED":
            w.stop()
    assert ("MODIFIED", "w1") in seen

    # a streaming list: the state, then the bookmark that ends it, then changes
    seen = []
    for event in w.stream(batch.list_namespaced_job, "default", send_initial_events=True,
                          resource_version_match="NotOlderThan", allow_watch_bookmarks=True, timeout_seconds=5):
        md = event["raw_object"]["metadata"]
        seen.append((event["type"], md.get("name"), (md.get("annotations") or {}).get("k8s.io/initial-events-end")))
        if event["type"] == "BOOKMARK":
            w.stop()
    assert seen == [("ADDED", "w1", None), ("BOOKMARK", None, "true")]


def test_pods_crud(jp):
    core = k8s.CoreV1Api(jp.kube_client())
    core.create_namespaced_pod("default", pod_body("p1"))
    pods = core.list_namespaced_pod("default", label_selector="app=x")
    assert [p.metadata.name for p in pods.items] == ["p1"]
    assert core.list_pod_for_all_namespaces().items
    patched = core.patch_namespaced_pod("p1", "default", {"metadata": {"labels": {"b": "c"}}})
    assert patched.metadata.labels == {"app": "x", "b": "c"}
    core.delete_namespaced_pod("p1", "default", grace_period_seconds=0)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("p1", "default")
    assert exc.value.status == 404
