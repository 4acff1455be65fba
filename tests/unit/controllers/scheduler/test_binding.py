"""pods/binding: the service verb, both client transports' route to it, and the scheduler's one write."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from jobplane.api.errors import StatusError
from jobplane.api.registry import PODS
from jobplane.apiserver.discovery import aggregated_api
from jobplane.apiserver.http import create_app
from jobplane.client.events import EventRecorder
from jobplane.client.informer import SharedInformerFactory
from jobplane.clock import Clock
from jobplane.controllers.scheduler import Scheduler


def node(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def pod(name: str, cpu: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x", "command": ["true"],
                                     "resources": {"requests": {"cpu": cpu}}}]}}

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BIND = "/api/v1/namespaces/default/pods/p/binding"


def binding(name: str, target: str, kind: str = "Node") -> dict:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"kind": kind, "name": target}}


async def test_service_bind_sets_node_and_condition_in_one_write(service, inproc):
    created = await inproc.create("pods", pod("p", "100m"), "default")
    status = await service.bind("default", "p", "n1")
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    got = await inproc.get("pods", "p", "default")
    assert got["spec"]["nodeName"] == "n1"
    conds = [c for c in got["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert len(conds) == 1 and conds[0]["status"] == "True" and conds[0]["lastTransitionTime"]
    assert int(got["metadata"]["resourceVersion"]) == int(created["metadata"]["resourceVersion"]) + 1


async def test_service_bind_conflicts_as_upstream(service, inproc):
    await inproc.create("pods", pod("p", "100m"), "default")
    await service.bind("default", "p", "n1")
    with pytest.raises(StatusError) as exc:
        await service.bind("default", "p", "n2")
    assert exc.value.code == 409 and exc.value.reason == "Conflict"
    assert exc.value.message == ('Operation cannot be fulfilled on pods/binding "p": '
                                 'pod p is already assigned to node "n1"')
    with pytest.raises(StatusError) as exc:
        await service.bind("default", "missing", "n1")
    assert exc.value.code == 404


async def test_service_bind_replaces_unschedulable_condition(service, inproc):
    await inproc.create("pods", pod("p", "100m"), "default")
    cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes",
            "lastProbeTime": None, "lastTransitionTime": "2020-01-01T00:00:00Z"}
    await inproc.patch("pods", "p", {"status": {"conditions": [cond]}}, "default", subresource="status")
    await inproc.bind("p", "n1", "default")
    got = await inproc.get("pods", "p", "default")
    conds = [c for c in got["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert len(conds) == 1 and conds[0]["status"] == "True" and "reason" not in conds[0]
    assert conds[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"


async def test_inproc_binding_body_validation(inproc):
    await inproc.create("pods", pod("p", "100m"), "default")
    with pytest.raises(StatusError) as exc:
        await inproc.create("pods", binding("p", "n1", kind="Pod"), "default", subresource="binding")
    assert exc.value.code == 422 and "target.kind" in exc.value.message
    with pytest.raises(StatusError) as exc:
        await inproc.create("pods", binding("p", ""), "default", subresource="binding")
    assert exc.value.code == 422 and "target.name: Required value" in exc.value.message
    with pytest.raises(StatusError) as exc:
        await inproc.update("pods", dict(binding("p", "n1")), "default", subresource="binding")
    assert exc.value.code == 405


async def test_http_binding_route(service, inproc, tmp_path):
    app = create_app(service, token=TOKEN, pods_dir=tmp_path)
    http = TestClient(TestServer(app))
    await http.start_server()
    try:
        await inproc.create("pods", pod("p", "100m"), "default")
        resp = await http.post(BIND, json=binding("p", "n1"), headers=AUTH)
        assert resp.status == 201 and (await resp.json())["status"] == "Success"
        assert (await inproc.get("pods", "p", "default"))["spec"]["nodeName"] == "n1"
        resp = await http.post(BIND, json=binding("p", "n2"), headers=AUTH)
        body = await resp.json()
        assert resp.status == 409 and body["message"].endswith('pod p is already assigned to node "n1"')
        resp = await http.post(BIND, json=binding("other", "n2"), headers=AUTH)
        assert resp.status == 400
        resp = await http.get(BIND, headers=AUTH)
        assert resp.status == 405
    finally:
        await http.close()


def test_discovery_lists_binding_create():
    core = aggregated_api()["items"][0]["versions"][0]["resources"]
    pods = [r for r in core if r["resource"] == "pods"][0]
    sub = [s for s in pods["subresources"] if s["subresource"] == "binding"][0]
    assert sub["verbs"] == ["create"] and sub["responseKind"]["kind"] == "Binding"
    assert "binding" in PODS.subresources


async def test_scheduler_binds_with_one_write(inproc):
    client = inproc
    clock = Clock()
    informers = SharedInformerFactory(client, clock)
    sched = Scheduler(client, clock, informers, EventRecorder(client, "default-scheduler", clock))
    await client.create("nodes", node("n1"))
    created = await client.create("pods", pod("p", "100m"), "default")
    rv = created["metadata"]["resourceVersion"]
    task = asyncio.create_task(sched.run())
    try:
        events = []
        async for typ, obj in client.watch("pods", "default", resource_version=rv, timeout_seconds=3):
            events.append((typ, obj))
            break
        typ, obj = events[0]
        assert typ == "MODIFIED" and obj["spec"]["nodeName"] == "n1"  # the first write binds completely
        cond = [c for c in obj["status"]["conditions"] if c["type"] == "PodScheduled"][0]
        assert cond["status"] == "True"
    finally:
        task.cancel()
        await informers.stop_all()
