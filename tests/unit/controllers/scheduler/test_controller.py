"""Scheduler and node lifecycle controllers against the real service through InProcessClient."""

import asyncio

import pytest
from asynctools import eventually as _eventually

from jobplane.api.meta import rfc3339_micro
from jobplane.client.events import EventRecorder
from jobplane.client.informer import SharedInformerFactory
from jobplane.clock import Clock, FakeClock
from jobplane.controllers.node_lifecycle import NodeLifecycle
from jobplane.controllers.scheduler import Scheduler


@pytest.fixture
def client(inproc):
    return inproc


def node(name, cpu="2"):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def pod(name, cpu):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x", "command": ["true"],
                                     "resources": {"requests": {"cpu": cpu}}}]}}


async def eventually(fn):
    """The scheduler runs on the real clock here: poll every 20 ms for up to 3 s."""
    return await _eventually(fn, rounds=150, interval=0.02)


async def test_binds_and_reports_unschedulable(client):
    clock = Clock()
    informers = SharedInformerFactory(client, clock)
    recorder = EventRecorder(client, "default-scheduler", clock)
    sched = Scheduler(client, clock, informers, recorder)
    await client.create("nodes", node("n1"))
    task = asyncio.create_task(sched.run())
    try:
        for i in range(3):
            await client.create("pods", pod(f"p{i}", "800m"), "default")

        async def bound_count():
            items = (await client.list("pods", "default"))["items"]
            return sum(1 for p in items if p["spec"].get("nodeName") == "n1")

        await eventually(lambda: _eq(bound_count(), 2))

        async def unschedulable():
            items = (await client.list("pods", "default"))["items"]
            return [p for p in items if any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
                                            for c in p.get("status", {}).get("conditions") or ())]

        # The scheduler's decision on the third pod is recorded, not inferred from a pause.
        pending = (await eventually(unschedulable))[0]
        assert await bound_count() == 2  # the third does not fit in 2 cpus
        assert not pending["spec"].get("nodeName")
        cond = [c for c in pending["status"]["conditions"] if c["type"] == "PodScheduled"][0]
        assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
        assert cond["message"].startswith("0/1 nodes are available: 1 Insufficient cpu.")
        await recorder.flush()
        events = (await client.list("events", "default"))["items"]
        reasons = sorted(e["reason"] for e in events)
        assert reasons.count("Scheduled") == 2 and "FailedScheduling" in reasons
        sched_ev = [e for e in events if e["reason"] == "Scheduled"][0]
        assert sched_ev["message"].startswith("Successfully assigned default/p") and sched_ev["message"].endswith(
            " to n1")
        assert sched_ev["source"]["component"] == "default-scheduler"
        # a bigger node arrives: the pending pod is retried and bound there
        await client.create("nodes", node("n2", cpu="4"))
        await eventually(lambda: _eq(bound_count(), 2))
        await eventually(lambda: _node_of(client, pending["metadata"]["name"], "n2"))
    finally:
        task.cancel()
        await informers.stop_all()


async def _eq(coro, want):
    return await coro == want


async def _node_of(client, name, want):
    return (await client.get("pods", name, "default"))["spec"].get("nodeName") == want


async def test_node_lifecycle_marks_unknown_then_pods_lost(client):
    clock = FakeClock()
    informers = SharedInformerFactory(client, clock)
    await client.create("nodes", node("n1"))
    await client.create("leases", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                   "metadata": {"name": "n1", "namespace": "kube-node-lease"},
                                   "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                                            "renewTime": rfc3339_micro(clock.now())}}, "kube-node-lease")
    p = pod("p", "100m")
    p["spec"]["nodeName"] = "n1"
    await client.create("pods", p, "default")
    ctl = NodeLifecycle(client, clock, informers, grace=40, pod_grace=60)
    await ctl.start()
    try:
        await ctl.monitor_once()
        assert (await client.get("nodes", "n1"))["status"]["conditions"][0]["status"] == "True"
        clock._now += 41
        await ctl.monitor_once()
        await asyncio.sleep(0.05)
        ready = (await client.get("nodes", "n1"))["status"]["conditions"][0]
        assert ready["status"] == "Unknown" and ready["reason"] == "NodeStatusUnknown"
        await ctl.monitor_once()
        assert (await client.get("pods", "p", "default")).get("status", {}).get("phase") != "Failed"
        clock._now += 61
        await ctl.monitor_once()
        st = (await client.get("pods", "p", "default"))["status"]
        assert st["phase"] == "Failed" and st["reason"] == "NodeLost"
    finally:
        await informers.stop_all()


async def test_best_effort_pods_spread_over_nodes(client):
    # Pods without requests count 100m / 200Mi when nodes are scored (upstream's
    # NonZeroRequested), so they spread instead of all going to the first node by name.
    clock = Clock()
    informers = SharedInformerFactory(client, clock)
    sched = Scheduler(client, clock, informers, EventRecorder(client, "default-scheduler", clock))
    await client.create("nodes", node("n1"))
    await client.create("nodes", node("n2"))
    task = asyncio.create_task(sched.run())
    try:
        for i in range(4):
            body = pod(f"be{i}", "1")
            del body["spec"]["containers"][0]["resources"]
            await client.create("pods", body, "default")

        async def placement():
            items = (await client.list("pods", "default"))["items"]
            nodes = [p["spec"].get("nodeName") for p in items]
            return None not in nodes and sorted(nodes)

        assert await eventually(placement) == ["n1", "n1", "n2", "n2"]
    finally:
        task.cancel()
