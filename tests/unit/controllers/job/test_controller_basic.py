"""Job controller end to end on the in-process API: counting, completion, parallelism."""

from __future__ import annotations

from jobctl_helpers import job_manifest

from jobplane.controllers.job.pods import TRACKING_FINALIZER


def conds(job):
    return [(c["type"], c["status"], c.get("reason", "")) for c in job.get("status", {}).get("conditions") or []]


async def test_non_parallel_job_completes(env):
    await env.create_job(job_manifest("one"))

    async def one_pod():
        return len(await env.pods("one")) == 1
    await env.until(one_pod, what="pod created")
    pod = (await env.pods("one"))[0]
    m = pod["metadata"]
    assert m["generateName"] == "one-"
    assert TRACKING_FINALIZER in m["finalizers"]
    job = await env.job("one")
    assert m["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": "one",
                                     "uid": job["metadata"]["uid"], "controller": True,
                                     "blockOwnerDeletion": True}]

    async def active_one():
        j = await env.job("one")
        return j.get("status", {}).get("active") == 1
    await env.until(active_one, what="status.active=1")
    job = await env.job("one")
    assert job["status"]["startTime"]
    assert job["status"]["ready"] == 0 and job["status"]["terminating"] == 0

    await env.succeed(pod)

    async def complete():
        return ("Complete", "True", "CompletionsReached") in conds(await env.job("one"))
    await env.until(complete, what="Complete")
    job = await env.job("one")
    assert conds(job) == [("SuccessCriteriaMet", "True", "CompletionsReached"),
                          ("Complete", "True", "CompletionsReached")]
    s = job["status"]
    assert s["succeeded"] == 1 and s.get("failed", 0) == 0 and s.get("active", 0) == 0
    assert s["completionTime"]
    assert s["uncountedTerminatedPods"] == {}
    assert job["status"]["conditions"][1]["message"] == "Reached expected number of succeeded pods"
    pods = await env.pods("one")
    assert len(pods) == 1 and TRACKING_FINALIZER not in (pods[0]["metadata"].get("finalizers") or [])
    events = await env.events("one")
    assert ("Normal", "SuccessfulCreate", f"Created pod: {pods[0]['metadata']['name']}") in events
    assert ("Normal", "Completed", "Job completed") in events


async def _status(env, name, field, value):
    j = await env.job(name)
    return j.get("status", {}).get(field) == value


async def test_fixed_completions_respects_parallelism(env):
    await env.create_job(job_manifest("fixed", completions=5, parallelism=2))
    max_active = 0
    finished = 0
    for _ in range(400):
        active = await env.active_pods("fixed")
        max_active = max(max_active, len(active))
        if active:
            await env.succeed(active[0])
            finished += 1
        if any(c[0] == "Complete" for c in conds(await env.job("fixed"))):
            break
        await env.step()
    job = await env.job("fixed")
    assert ("Complete", "True", "CompletionsReached") in conds(job)
    assert max_active == 2
    assert job["status"]["succeeded"] == 5 and finished == 5
    assert len(await env.pods("fixed")) == 5


async def test_remaining_completions_cap_active(env):
    await env.create_job(job_manifest("cap", completions=3, parallelism=5))

    async def three():
        return len(await env.active_pods("cap")) == 3
    await env.until(three)
    await env.step(1.0)
    assert len(await env.pods("cap")) == 3


async def test_work_queue_job(env):
    await env.create_job(job_manifest("wq", completions=None, parallelism=3))

    async def three():
        return len(await env.active_pods("wq")) == 3
    await env.until(three)
    pods = await env.active_pods("wq")
    await env.succeed(pods[0])

    async def counted():
        return await _status(env, "wq", "succeeded", 1)
    await env.until(counted)
    await env.step(2.0)
    # no new pods after the first success; the running ones are left alone
    assert len(await env.pods("wq")) == 3
    assert not conds(await env.job("wq")) or "Complete" not in [c[0] for c in conds(await env.job("wq"))]
    await env.succeed(pods[1])
    await env.fail(pods[2])

    async def complete():
        return ("Complete", "True", "CompletionsReached") in conds(await env.job("wq"))
    await env.until(complete)
    s = (await env.job("wq"))["status"]
    assert s["succeeded"] == 2 and s["failed"] == 1 and s.get("active", 0) == 0


async def test_parallelism_zero_creates_nothing(env):
    await env.create_job(job_manifest("zero", completions=2, parallelism=0))
    await env.step(2.0)
    assert await env.pods("zero") == []
    job = await env.job("zero")
    assert conds(job) == []
    assert job["status"]["startTime"] and job["status"].get("active", 0) == 0
