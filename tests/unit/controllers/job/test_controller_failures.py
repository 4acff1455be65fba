"""Job controller: back-off, backoffLimit, deadlines, suspend/resume, pod failure policy,
pod replacement policy."""

from __future__ import annotations

from jobctl_helpers import job_manifest

from jobplane.api.meta import parse_time


def conds(job):
    return [(c["type"], c["status"], c.get("reason", "")) for c in job.get("status", {}).get("conditions") or []]


def has_cond(job, ctype):
    return any(c[0] == ctype and c[1] == "True" for c in conds(job))


async def test_backoff_limit_and_delays(env):
    await env.create_job(job_manifest("bo", backoffLimit=3))
    created_at: dict[str, float] = {}
    failed_at: dict[str, float] = {}
    for _ in range(4000):
        pods = await env.pods("bo")
        for p in pods:
            created_at.setdefault(p["metadata"]["name"], env.clock.now())
        for p in pods:
            name = p["metadata"]["name"]
            if name not in failed_at and p.get("status", {}).get("phase") != "Failed" \
                    and not p["metadata"].get("deletionTimestamp"):
                failed_at[name] = env.clock.now()
                await env.fail(p)
        if has_cond(await env.job("bo"), "Failed"):
            break
        await env.step(0.25)
    job = await env.job("bo")
    assert conds(job) == [("FailureTarget", "True", "BackoffLimitExceeded"),
                          ("Failed", "True", "BackoffLimitExceeded")]
    assert job["status"]["conditions"][1]["message"] == "Job has reached the specified backoff limit"
    assert job["status"]["failed"] == 4 and job["status"].get("active", 0) == 0
    assert "completionTime" not in job["status"]
    pods = await env.pods("bo")
    assert len(pods) == 4  # backoffLimit + 1
    order = sorted(created_at, key=created_at.get)
    gaps = [created_at[order[i + 1]] - failed_at[order[i]] for i in range(3)]
    for gap, want in zip(gaps, (10, 20, 40), strict=True):
        assert want - 1 <= gap <= want + 1, gaps  # finishedAt has second precision
    events = await env.events("bo")
    assert ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit") in events


async def test_active_deadline(env):
    await env.create_job(job_manifest("dl", completions=2, parallelism=2, activeDeadlineSeconds=5))

    async def two():
        return len(await env.active_pods("dl")) == 2
    await env.until(two)
    start = parse_time((await env.job("dl"))["status"]["startTime"])

    async def failed():
        return has_cond(await env.job("dl"), "Failed")
    await env.until(failed, max_time=10)
    job = await env.job("dl")
    assert conds(job) == [("FailureTarget", "True", "DeadlineExceeded"), ("Failed", "True", "DeadlineExceeded")]
    assert job["status"]["conditions"][0]["message"] == "Job was active longer than specified deadline"
    assert parse_time(job["status"]["conditions"][0]["lastTransitionTime"]) - start >= 5
    assert env.clock.now() - start < 6
    assert await env.pods("dl") == []  # deleted, finalizers removed
    assert job["status"]["failed"] == 2 and job["status"].get("active", 0) == 0 and job["status"]["terminating"] == 0


async def test_suspend_and_resume(env):
    await env.create_job(job_manifest("sus", completions=2, parallelism=2, suspend=True))

    async def suspended():
        return has_cond(await env.job("sus"), "Suspended")
    await env.until(suspended)
    job = await env.job("sus")
    assert await env.pods("sus") == []
    assert "startTime" not in job["status"]
    assert job["status"]["conditions"][0]["reason"] == "JobSuspended"

    job["spec"]["suspend"] = False
    await env.client.update("jobs", job, "default")

    async def two():
        return len(await env.active_pods("sus")) == 2
    await env.until(two)
    job = await env.job("sus")
    assert conds(job) == [("Suspended", "False", "JobResumed")]
    assert job["status"]["startTime"]

    job["spec"]["suspend"] = True
    await env.client.update("jobs", job, "default")

    async def gone():
        return await env.pods("sus") == [] and has_cond(await env.job("sus"), "Suspended")
    await env.until(gone)
    job = await env.job("sus")
    assert job["status"].get("failed", 0) == 0 and job["status"].get("active", 0) == 0
    events = await env.events("sus")
    assert ("Normal", "Suspended", "Job suspended") in events
    assert ("Normal", "Resumed", "Job resumed") in events


async def test_pod_failure_policy_fail_job(env):
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    manifest = job_manifest("pfj", completions=2, parallelism=2, podFailurePolicy=policy,
                            podReplacementPolicy="Failed")
    manifest["spec"]["template"]["spec"]["nodeName"] = "node-1"  # bound: deletion is graceful
    await env.create_job(manifest)

    async def two():
        return len(await env.active_pods("pfj")) == 2
    await env.until(two)
    pods = await env.active_pods("pfj")
    await env.fail(pods[0], 42)

    async def target():
        return has_cond(await env.job("pfj"), "FailureTarget")
    await env.until(target)
    job = await env.job("pfj")
    name = pods[0]["metadata"]["name"]
    msg = f"Container main for pod default/{name} failed with exit code 42 matching FailJob rule at index 0"
    assert job["status"]["conditions"][0]["message"] == msg
    # the other pod was deleted but is still terminating (policy Failed): no terminal condition yet
    assert not has_cond(job, "Failed")
    other = [p for p in await env.pods("pfj") if p["metadata"]["name"] != name][0]
    assert other["metadata"].get("deletionTimestamp")
    assert (await env.job("pfj"))["status"]["terminating"] == 1
    await env.fail(other, 137)
    await env.force_delete(other)  # the kubelet finishes the deletion

    async def failed():
        return has_cond(await env.job("pfj"), "Failed")
    await env.until(failed)
    job = await env.job("pfj")
    assert conds(job) == [("FailureTarget", "True", "PodFailurePolicy"), ("Failed", "True", "PodFailurePolicy")]
    assert job["status"]["failed"] == 2 and job["status"]["terminating"] == 0


async def test_pod_failure_policy_ignore_and_count(env):
    policy = {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "Count", "onExitCodes": {"operator": "In", "values": [3]}},
    ]}
    await env.create_job(job_manifest("pfi", podFailurePolicy=policy, podReplacementPolicy="Failed",
                                      backoffLimit=1))

    async def one():
        return len(await env.active_pods("pfi")) == 1
    await env.until(one)
    await env.fail((await env.active_pods("pfi"))[0], 1,
                   conditions=[{"type": "DisruptionTarget", "status": "True"}])

    async def replaced():
        return len(await env.active_pods("pfi")) == 1 and len(await env.pods("pfi")) == 2
    await env.until(replaced, max_time=30)
    job = await env.job("pfi")
    assert job["status"].get("failed", 0) == 0  # ignored
    await env.fail((await env.active_pods("pfi"))[0], 3)

    async def counted():
        j = await env.job("pfi")
        return j["status"].get("failed") == 1
    await env.until(counted)
    assert not has_cond(await env.job("pfi"), "FailureTarget")


async def test_replacement_policy_terminating_or_failed(env):
    await env.create_job(job_manifest("tof"))

    async def one():
        return len(await env.active_pods("tof")) == 1
    await env.until(one)
    first = (await env.active_pods("tof"))[0]
    await env.client.delete("pods", first["metadata"]["name"], "default")

    async def replaced():
        return len(await env.active_pods("tof")) == 1 and \
            (await env.active_pods("tof"))[0]["metadata"]["name"] != first["metadata"]["name"]
    await env.until(replaced, max_time=15)
    job = await env.job("tof")
    assert job["status"]["failed"] == 1


async def test_replacement_policy_failed_waits_for_terminal_phase(env):
    await env.create_job(job_manifest("rpf", podReplacementPolicy="Failed"))

    async def one():
        return len(await env.active_pods("rpf")) == 1
    await env.until(one)
    first = (await env.active_pods("rpf"))[0]
    await env.client.delete("pods", first["metadata"]["name"], "default")

    async def terminating():
        return (await env.job("rpf"))["status"].get("terminating") == 1
    await env.until(terminating)
    await env.step(30)
    assert len(await env.pods("rpf")) == 1  # no replacement while terminating
    assert (await env.job("rpf"))["status"].get("failed", 0) == 0
    await env.fail(first, 137)

    async def replaced():
        return len(await env.active_pods("rpf")) == 1
    await env.until(replaced, max_time=15)
    job = await env.job("rpf")
    assert job["status"]["failed"] == 1 and job["status"]["terminating"] == 0


async def test_on_failure_restart_count_rule(env):
    await env.create_job(job_manifest("onf", restartPolicy="OnFailure", backoffLimit=2))

    async def one():
        return len(await env.active_pods("onf")) == 1
    await env.until(one)
    await env.set_phase((await env.active_pods("onf"))[0], "Running", restarts=2)

    async def failed():
        return has_cond(await env.job("onf"), "Failed")
    await env.until(failed)
    job = await env.job("onf")
    assert job["status"]["conditions"][-1]["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 1
