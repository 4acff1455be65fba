"""Namespace controller: empties a terminating namespace, then removes its finalizer."""

from ctrlgen_helpers import eventually, exists, make_job, make_pod, running, settle

from jobplane.controllers.base import remove_finalizer
from jobplane.controllers.namespace import NamespaceController, content_kinds


async def make_ns(client, name, finalizers=("kubernetes",)):
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if finalizers:
        body["spec"] = {"finalizers": list(finalizers)}
    return await client.create("namespaces", body)


async def fill(client, ns):
    await make_job(client, "j", ns=ns)
    await make_pod(client, "p", ns=ns)
    await client.create("events", {"metadata": {"name": "e"}, "reason": "R", "message": "m", "type": "Normal",
                                   "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns,
                                                      "apiVersion": "v1"},
                                   "source": {"component": "test"}, "count": 1,
                                   "firstTimestamp": "2024-01-01T00:00:00Z",
                                   "lastTimestamp": "2024-01-01T00:00:00Z"}, ns)
    await client.create("leases", {"metadata": {"name": "l"}, "spec": {}}, ns)


async def count(client, ns):
    total = 0
    for info in content_kinds():
        total += len((await client.list(info.group_resource, ns))["items"])
    return total


def ns_gone(client, name):
    async def check():
        return not await exists(client, "namespaces", name, None)
    return check


async def test_terminating_namespace_is_emptied_then_removed(client, informers, clock):
    await make_ns(client, "t")
    await fill(client, "t")
    await make_pod(client, "held", ns="t", finalizers=["example.com/hold"])
    await make_pod(client, "other-ns-pod")
    ctrl = NamespaceController(client, clock, informers)
    async with running(ctrl.run()):
        await client.delete("namespaces", "t")
        ns = await client.get("namespaces", "t")
        assert ns["status"]["phase"] == "Terminating"

        async def only_held_left():
            return await count(client, "t") == 1

        await eventually(only_held_left)
        await settle(100)
        assert await exists(client, "namespaces", "t", None)  # held pod still there
        await remove_finalizer(client, "pods", "t", "held", "example.com/hold")
        await eventually(ns_gone(client, "t"))
        assert await exists(client, "pods", "other-ns-pod")


async def test_namespace_without_finalizer_gets_leftovers_cleaned(client, informers, clock):
    await make_ns(client, "t", finalizers=())
    await fill(client, "t")
    ctrl = NamespaceController(client, clock, informers)
    async with running(ctrl.run()):
        await client.delete("namespaces", "t")

        async def empty():
            return await count(client, "t") == 0

        await eventually(empty)


async def test_live_namespace_is_left_alone(client, informers, clock):
    await make_ns(client, "t")
    await fill(client, "t")
    ctrl = NamespaceController(client, clock, informers)
    async with running(ctrl.run()):
        await settle(200)
        assert await count(client, "t") == 4
        assert await ctrl.reconcile("t") is None
        assert await count(client, "t") == 4


def test_content_kinds_cover_registry_writable_namespaced_kinds():
    names = [i.group_resource for i in content_kinds()]
    assert names[:3] == ["cronjobs.batch", "jobs.batch", "pods"]
    assert "events" in names and "leases.coordination.k8s.io" in names
    assert "namespaces" not in names and "nodes" not in names
    assert names.count("events") == 1  # the read-only events.k8s.io view is skipped
