"""What is stored is what upstream's Go round trip writes: ``omitempty`` fields left out when
zero or empty, pointers only when ``null``, a ``null`` plain field as its zero value. Without
this, ``kubectl get -o yaml`` showed ``finalizers: []`` on every finished Job pod and
``labels: {}``, ``args: null`` or ``stdin: false`` wherever a manifest carried them."""

from __future__ import annotations

import pytest

from jobplane.api import registry
from jobplane.api.patch import JSON_PATCH
from jobplane.apiserver.service import ApiService
from jobplane.clock import FakeClock
from jobplane.storage.memory import MemoryStore


@pytest.fixture
async def service():
    store = MemoryStore()
    await store.start()
    svc = ApiService(store, FakeClock())
    await svc.ensure_default_namespaces()
    yield svc
    await store.close()


def pod(**container) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {}, "annotations": {}, "finalizers": [], "generateName": "",
                         "ownerReferences": None},
            "spec": {"containers": [{"name": "c", "image": "busybox", **container}], "volumes": [],
                     "hostNetwork": False, "nodeSelector": {}, "priority": 0, "enableServiceLinks": False,
                     "terminationGracePeriodSeconds": 0}}


async def test_create_stores_what_go_would_write(service):
    out = await service.create(registry.PODS, "default", pod(
        args=None, command=[], env=[], stdin=False, tty=False, workingDir="", ports=None,
        resources=None, livenessProbe=None, restartPolicy=None))
    md = out["metadata"]
    for gone in ("labels", "annotations", "finalizers", "generateName", "ownerReferences"):
        assert gone not in md, gone
    c = out["spec"]["containers"][0]
    for gone in ("args", "command", "env", "stdin", "tty", "workingDir", "ports", "livenessProbe", "restartPolicy"):
        assert gone not in c, gone
    assert c["resources"] == {}  # a struct: never left out; null decodes to its zero value
    spec = out["spec"]
    assert "volumes" not in spec and "hostNetwork" not in spec and "nodeSelector" not in spec
    # pointers keep their zero values: they were set
    assert spec["priority"] == 0 and spec["enableServiceLinks"] is False
    assert spec["terminationGracePeriodSeconds"] == 0


async def test_pointer_zeros_of_a_job_are_kept_and_plain_zeros_dropped(service):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "spec": {"parallelism": 0, "suspend": False, "backoffLimit": 0,
                    "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                          "restartPolicy": "Never"}}}}
    out = await service.create(registry.JOBS, "default", job)
    assert (out["spec"]["parallelism"], out["spec"]["suspend"], out["spec"]["backoffLimit"]) == (0, False, 0)
    out["status"] = {"active": 0, "succeeded": 0, "failed": 0, "ready": 0, "terminating": 0,
                     "uncountedTerminatedPods": {}}
    stored = await service.update(registry.JOBS, "default", "j", out, "status")
    # JobStatus: active/succeeded/failed are omitempty int32, ready/terminating *int32,
    # uncountedTerminatedPods a pointer to a struct
    assert stored["status"] == {"ready": 0, "terminating": 0, "uncountedTerminatedPods": {}}


async def test_removing_the_last_finalizer_by_json_patch_leaves_no_empty_list(service):
    body = pod()
    body["metadata"]["finalizers"] = ["batch.kubernetes.io/job-tracking"]
    await service.create(registry.PODS, "default", body)
    out = await service.patch(registry.PODS, "default", "p",
                              [{"op": "test", "path": "/metadata/finalizers/0",
                                "value": "batch.kubernetes.io/job-tracking"},
                               {"op": "remove", "path": "/metadata/finalizers/0"}], JSON_PATCH)
    assert "finalizers" not in out["metadata"]
    out = await service.patch(registry.PODS, "default", "p", {"metadata": {"labels": {}}},
                              "application/merge-patch+json")
    assert "labels" not in out["metadata"]
