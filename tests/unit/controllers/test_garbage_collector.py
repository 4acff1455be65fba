"""Garbage collector: background, orphan and foreground cascading deletion."""

from ctrlgen_helpers import eventually, exists, make_job, make_pod, running, settle

from jobplane.controllers.base import remove_finalizer
from jobplane.controllers.garbage_collector import GarbageCollector


def gone(client, resource, name, ns="default"):
    async def check():
        return not await exists(client, resource, name, ns)
    return check


async def test_background_deletes_dependents_of_vanished_owner(client, informers, clock):
    job = await make_job(client, "j")
    await make_pod(client, "p1", owners=[job])
    await make_pod(client, "p2", owners=[job])
    await make_pod(client, "free")
    gc = GarbageCollector(client, clock, informers)
    async with running(gc.run()):
        await client.delete("jobs", "j", "default", propagation_policy="Background")
        await eventually(gone(client, "pods", "p1"))
        await eventually(gone(client, "pods", "p2"))
        assert await exists(client, "pods", "free")


async def test_dependent_with_remaining_owner_loses_only_the_dangling_reference(client, informers, clock):
    a = await make_job(client, "a")
    b = await make_job(client, "b")
    await make_pod(client, "p", owners=[a, b])
    gc = GarbageCollector(client, clock, informers)
    async with running(gc.run()):
        await client.delete("jobs", "a", "default", propagation_policy="Background")

        async def only_b():
            refs = (await client.get("pods", "p", "default"))["metadata"].get("ownerReferences") or []
            return [r["name"] for r in refs] == ["b"]

        await eventually(only_b)
        await settle()
        assert await exists(client, "pods", "p")


async def test_dependent_created_with_missing_or_replaced_owner_is_collected(client, informers, clock):
    job = await make_job(client, "j")
    await make_pod(client, "dangling", owners=[{**job, "metadata": {**job["metadata"], "uid": "nope"}}])
    await make_pod(client, "fine", owners=[job])
    gc = GarbageCollector(client, clock, informers)
    async with running(gc.run()):
        await eventually(gone(client, "pods", "dangling"))
        await settle()
        assert await exists(client, "pods", "fine")


async def test_owner_of_unknown_kind_keeps_dependent(client, informers, clock):
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", "uid": "u-rs"}}
    await make_pod(client, "p", owners=[rs])
    gc = GarbageCollector(client, clock, informers)
    async with running(gc.run()):
        await settle(200)
        assert await exists(client, "pods", "p")


async def test_orphan_strips_references_and_lets_owner_go(client, informers, clock):
    job = await make_job(client, "j")
    other = await make_job(client, "other")
    await make_pod(client, "p", owners=[job, other])
    await make_pod(client, "q", owners=[job])
    gc = GarbageCollector(client, clock, informers)
    async with running(gc.run()):
        await client.delete("jobs", "j", "default", propagation_policy="Orphan")
        await eventually(gone(client, "jobs", "j"))
        p = await client.get("pods", "p", "default")
        q = await client.get("pods", "q", "default")
        assert [r["name"] for r in p["metadata"]["ownerReferences"]] == ["other"]
        assert "ownerReferences" not in q["metadata"]


async def test_default_policy_for_jobs_is_orphan(client, informers, clock):
    job = await make_job(client, "j")
    await make_pod(client, "p", owners=[job])
    gc = GarbageCollector(client, clock, informers)
    async with running(gc.run()):
        await client.delete("jobs", "j", "default")
        await eventually(gone(client, "jobs", "j"))
        await settle()
        assert await exists(client, "pods", "p")


async def test_foreground_waits_for_blocking_dependents(client, informers, clock):
    job = await make_job(client, "j")
    await make_pod(client, "p", owners=[job])
    # A pod held by a finalizer (like the job-tracking one) keeps the Job until it goes.
    await make_pod(client, "held", owners=[job], finalizers=["batch.kubernetes.io/job-tracking"])
    gc = GarbageCollector(client, clock, informers)
    async with running(gc.run()):
        await client.delete("jobs", "j", "default", propagation_policy="Foreground")
        await eventually(gone(client, "pods", "p"))

        async def held_deleting():
            return (await client.get("pods", "held", "default"))["metadata"].get("deletionTimestamp")

        await eventually(held_deleting)
        await settle(100)
        live = await client.get("jobs", "j", "default")
        assert live["metadata"]["deletionTimestamp"]
        assert "foregroundDeletion" in live["metadata"]["finalizers"]
        await remove_finalizer(client, "pods", "default", "held", "batch.kubernetes.io/job-tracking")
        await eventually(gone(client, "pods", "held"))
        await eventually(gone(client, "jobs", "j"))


async def test_foreground_ignores_non_blocking_dependents(client, informers, clock):
    job = await make_job(client, "j")
    await make_pod(client, "nb", owners=[job], block=False, finalizers=["example.com/hold"])
    gc = GarbageCollector(client, clock, informers)
    async with running(gc.run()):
        await client.delete("jobs", "j", "default", propagation_policy="Foreground")
        await eventually(gone(client, "jobs", "j"))
        nb = await client.get("pods", "nb", "default")
        assert nb["metadata"]["deletionTimestamp"]


async def test_foreground_with_dependent_having_other_solid_owner(client, informers, clock):
    job = await make_job(client, "j")
    keep = await make_job(client, "keep")
    await make_pod(client, "p", owners=[job, keep])
    gc = GarbageCollector(client, clock, informers)
    async with running(gc.run()):
        await client.delete("jobs", "j", "default", propagation_policy="Foreground")
        await eventually(gone(client, "jobs", "j"))
        p = await client.get("pods", "p", "default")
        assert [r["name"] for r in p["metadata"]["ownerReferences"]] == ["keep"]
        assert not p["metadata"].get("deletionTimestamp")


async def test_nested_foreground_propagates_down_and_unwinds(client, informers, clock):
    cj = await client.create("cronjobs", {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
                                          "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {
                                              "template": {"spec": {"restartPolicy": "Never", "containers": [
                                                  {"name": "c", "image": "busybox"}]}}}}}}, "default")
    job = await make_job(client, "j", ownerReferences=[{
        "apiVersion": "batch/v1", "kind": "CronJob", "name": "cj", "uid": cj["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}])
    await make_pod(client, "held", owners=[job], finalizers=["example.com/hold"])
    gc = GarbageCollector(client, clock, informers)
    async with running(gc.run()):
        await client.delete("cronjobs", "cj", "default", propagation_policy="Foreground")

        async def job_in_foreground():
            j = await client.get("jobs", "j", "default")
            return "foregroundDeletion" in (j["metadata"].get("finalizers") or [])

        await eventually(job_in_foreground)
        await settle(100)
        assert await exists(client, "cronjobs", "cj")
        await remove_finalizer(client, "pods", "default", "held", "example.com/hold")
        await eventually(gone(client, "jobs", "j"))
        await eventually(gone(client, "cronjobs", "cj"))
