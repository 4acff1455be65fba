"""TTL-after-finished: deletes finished Jobs at finishTime + ttl, on the fake clock."""

from ctrlgen_helpers import eventually, exists, finished_status, make_job, running, settle

from jobplane.controllers.ttl_after_finished import TTLAfterFinishedController, time_left


async def deleting(client, name):
    job = await client.get("jobs", name, "default")
    return job["metadata"].get("deletionTimestamp") is not None


async def test_deletes_at_finish_plus_ttl_with_foreground(client, informers, clock):
    await make_job(client, "j", ttl=100, finished_at=clock.now() - 40)
    ctrl = TTLAfterFinishedController(client, clock, informers)
    async with running(ctrl.run()):
        await settle()
        assert not await deleting(client, "j")
        await clock.advance(59)
        await settle()
        assert not await deleting(client, "j")
        await clock.advance(1)
        await eventually(lambda: deleting(client, "j"))
        job = await client.get("jobs", "j", "default")
        # Foreground propagation: the garbage collector finishes the deletion.
        assert "foregroundDeletion" in job["metadata"]["finalizers"]


async def test_ttl_zero_deletes_at_once(client, informers, clock):
    await make_job(client, "j", ttl=0, finished_at=clock.now(), ctype="Failed")
    ctrl = TTLAfterFinishedController(client, clock, informers)
    async with running(ctrl.run()):
        await eventually(lambda: deleting(client, "j"))


async def test_unfinished_or_no_ttl_jobs_stay(client, informers, clock):
    await make_job(client, "running", ttl=0)
    await make_job(client, "nottl", finished_at=clock.now() - 1000)
    ctrl = TTLAfterFinishedController(client, clock, informers)
    async with running(ctrl.run()):
        await clock.advance(10_000)
        await settle()
        assert not await deleting(client, "running")
        assert not await deleting(client, "nottl")
        assert ctrl.queue.pending_delays() == {}


async def test_finishing_later_schedules_then(client, informers, clock):
    job = await make_job(client, "j", ttl=30)
    ctrl = TTLAfterFinishedController(client, clock, informers)
    async with running(ctrl.run()):
        await clock.advance(100)
        job = await client.get("jobs", "j", "default")
        job["status"] = finished_status("Complete", clock.now())
        await client.update("jobs", job, "default", subresource="status")
        await eventually(lambda: ctrl.queue.pending_delays().get("default/j") == clock.now() + 30)
        await clock.advance(29)
        await settle()
        assert not await deleting(client, "j")
        await clock.advance(1)
        await eventually(lambda: deleting(client, "j"))


async def test_raised_ttl_postpones_deletion(client, informers, clock):
    job = await make_job(client, "j", ttl=10, finished_at=clock.now())
    ctrl = TTLAfterFinishedController(client, clock, informers)
    async with running(ctrl.run()):
        job = await client.get("jobs", "j", "default")
        job["spec"]["ttlSecondsAfterFinished"] = 50
        await client.update("jobs", job, "default")
        await settle()
        await clock.advance(10)
        await settle()
        assert not await deleting(client, "j")
        await clock.advance(40)
        await eventually(lambda: deleting(client, "j"))


async def test_live_object_is_rechecked_before_delete(client, informers, clock):
    await make_job(client, "j", ttl=5, finished_at=clock.now() - 10)
    ctrl = TTLAfterFinishedController(client, clock, informers)
    await ctrl.jobs.start()
    # The cache still says "expired"; the live Job no longer has a TTL.
    job = await client.get("jobs", "j", "default")
    del job["spec"]["ttlSecondsAfterFinished"]
    await client.update("jobs", job, "default")
    assert ctrl.jobs.get("default", "j")["spec"].get("ttlSecondsAfterFinished") == 5
    assert await ctrl.reconcile("default/j") is None
    assert await exists(client, "jobs", "j")
    assert not await deleting(client, "j")
    await ctrl.jobs.stop()


def test_time_left_uses_condition_transition_time():
    job = {"metadata": {"name": "j"}, "spec": {"ttlSecondsAfterFinished": 60},
           "status": {"conditions": [{"type": "Complete", "status": "True",
                                      "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}
    assert time_left(job, 1704067200.0 + 10) == 50.0

