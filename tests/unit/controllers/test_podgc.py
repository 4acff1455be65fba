"""PodGC (terminated pods): beyond the threshold, evicted then oldest terminated pods go."""


from asynctools import running, settle

from jobplane.api.meta import rfc3339
from jobplane.client.informer import SharedInformerFactory
from jobplane.controllers.podgc import GC_CHECK_PERIOD, PodGCController, gc_order, keys_to_delete


async def make_pod(client, name, phase=None, reason=None):
    pod = await client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, "default")
    if phase:
        pod["status"] = {"phase": phase, **({"reason": reason} if reason else {})}
        pod = await client.update("pods", pod, "default", subresource="status")
    return pod


async def names(client):
    return sorted(o["metadata"]["name"] for o in (await client.list("pods", "default"))["items"])


def pod(name, created, phase="Succeeded", reason=None):
    return {"metadata": {"name": name, "creationTimestamp": rfc3339(created)},
            "status": {"phase": phase, **({"reason": reason} if reason else {})}}


def test_order_is_evicted_first_then_oldest_then_name():
    pods = [pod("b", 10), pod("a", 10), pod("old", 5), pod("ev", 50, "Failed", "Evicted"), pod("f", 7, "Failed")]
    assert [p["metadata"]["name"] for p in sorted(pods, key=gc_order)] == ["ev", "old", "f", "a", "b"]
    orders = {p["metadata"]["name"]: gc_order(p) for p in pods}
    assert keys_to_delete(orders, 3) == ["ev", "old"]
    assert keys_to_delete(orders, 5) == [] and keys_to_delete(orders, 0) == []


async def test_deletes_oldest_terminated_pods_beyond_threshold(inproc, clock):
    informers = SharedInformerFactory(inproc, clock)
    for i in range(4):
        await make_pod(inproc, f"done{i}", "Succeeded")
        await clock.advance(1)  # distinct creationTimestamps, done0 oldest
    await make_pod(inproc, "failed", "Failed")
    await make_pod(inproc, "running", "Running")
    await make_pod(inproc, "pending")
    ctrl = PodGCController(inproc, clock, informers, threshold=2)
    try:
        async with running(ctrl.run()):
            await settle()
            # 5 terminated, threshold 2: the 3 oldest terminated go, non-terminated stay
            assert await names(inproc) == ["done3", "failed", "pending", "running"]
            await make_pod(inproc, "late", "Failed")
            await settle()
            assert "late" in await names(inproc)  # only checked every gcCheckPeriod
            await clock.advance(GC_CHECK_PERIOD)
            await settle()
            assert await names(inproc) == ["failed", "late", "pending", "running"]
    finally:
        await informers.stop_all()


async def test_pod_becoming_terminated_is_counted(inproc, clock):
    informers = SharedInformerFactory(inproc, clock)
    await make_pod(inproc, "a", "Succeeded")
    p = await make_pod(inproc, "b", "Running")
    ctrl = PodGCController(inproc, clock, informers, threshold=1)
    try:
        async with running(ctrl.run()):
            await settle()
            assert set(ctrl.terminated) == {"default/a"}
            p["status"]["phase"] = "Failed"
            await inproc.update("pods", p, "default", subresource="status")
            await settle()
            assert set(ctrl.terminated) == {"default/a", "default/b"}
            assert await ctrl.gc_once() == 1
            await settle()
            assert await names(inproc) == ["b"] and set(ctrl.terminated) == {"default/b"}
    finally:
        await informers.stop_all()


async def test_a_terminated_pods_place_follows_its_updates(inproc, clock):
    """The deletion order is kept per pod as events arrive: a terminated pod evicted later
    goes first, although it is the newest."""
    informers = SharedInformerFactory(inproc, clock)
    await make_pod(inproc, "old", "Succeeded")
    await clock.advance(1)
    p = await make_pod(inproc, "new", "Failed")
    ctrl = PodGCController(inproc, clock, informers, threshold=1)
    try:
        await informers.start_all()
        assert keys_to_delete(ctrl.terminated, 1) == ["default/old"]
        p["status"]["reason"] = "Evicted"
        await inproc.update("pods", p, "default", subresource="status")
        await settle()
        assert await ctrl.gc_once() == 1
        await settle()
        assert await names(inproc) == ["old"] and set(ctrl.terminated) == {"default/old"}
    finally:
        await informers.stop_all()


async def test_orphaned_pods_failed_and_deleted_after_quarantine(inproc, clock):
    """gcOrphaned: pods bound to a node that no longer exists are marked Failed with
    DisruptionTarget/DeletionByPodGC and deleted once the node stayed missing 40 s; pods on
    an existing node, and on a node that comes back within the quarantine, stay."""
    from jobplane.controllers.podgc import QUARANTINE_TIME

    informers = SharedInformerFactory(inproc, clock)
    await inproc.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "alive"}})
    for name, node in (("orphan", "gone"), ("kept", "alive"), ("back", "later")):
        p = await make_pod(inproc, name)
        p["spec"]["nodeName"] = node
        await inproc.update("pods", p, "default")
    ctrl = PodGCController(inproc, clock, informers, threshold=12500)
    try:
        async with running(ctrl.run()):
            await settle()
            assert set(ctrl.quarantine) == {"gone", "later"}
            await clock.advance(GC_CHECK_PERIOD)
            await inproc.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "later"}})
            await settle()
            assert await names(inproc) == ["back", "kept", "orphan"]
            seen = []
            informers.informer("pods").add_handler(on_update=lambda old, new: seen.append(new))
            await clock.advance(QUARANTINE_TIME)
            await settle()
            assert await names(inproc) == ["back", "kept"]
            failed = [p for p in seen if p["metadata"]["name"] == "orphan"][0]
            assert failed["status"]["phase"] == "Failed"
            cond = [c for c in failed["status"]["conditions"] if c["type"] == "DisruptionTarget"][0]
            assert (cond["reason"], cond["message"]) == ("DeletionByPodGC", "PodGC: node no longer exists")
            assert ctrl.quarantine == {}
    finally:
        await informers.stop_all()
