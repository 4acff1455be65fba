"""Job controller: Indexed jobs, per-index back-off limits, success policy, elastic scale-down."""

from __future__ import annotations

from jobctl_helpers import job_manifest

from jobplane.controllers.job.indexed import FAILURE_COUNT_KEY, INDEX_KEY


def conds(job):
    return [(c["type"], c["status"], c.get("reason", "")) for c in job.get("status", {}).get("conditions") or []]


def has_cond(job, ctype):
    return any(c[0] == ctype and c[1] == "True" for c in conds(job))


def index_of(pod):
    return int(pod["metadata"]["annotations"][INDEX_KEY])


async def test_indexed_job_completes_with_ranges(env):
    await env.create_job(job_manifest("idx", completions=5, parallelism=5, completionMode="Indexed"))
    pods = await env.wait_active("idx", 5)
    by_index = {index_of(p): p for p in pods}
    assert sorted(by_index) == [0, 1, 2, 3, 4]
    p3 = by_index[3]
    assert p3["metadata"]["generateName"] == "idx-3-"
    assert p3["metadata"]["name"].startswith("idx-3-") and len(p3["metadata"]["name"]) == len("idx-3-") + 5
    assert p3["metadata"]["labels"][INDEX_KEY] == "3"
    assert p3["spec"]["hostname"] == "idx-3"
    env_vars = p3["spec"]["containers"][0]["env"]
    assert env_vars[-1]["name"] == "JOB_COMPLETION_INDEX"
    assert env_vars[-1]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['batch.kubernetes.io/job-completion-index']"
    for ix in (0, 1, 2, 4):
        await env.succeed(by_index[ix])

    async def ranges():
        return (await env.job("idx"))["status"].get("completedIndexes") == "0-2,4"
    await env.until(ranges)
    job = await env.job("idx")
    assert job["status"]["succeeded"] == 4 and not has_cond(job, "Complete")
    await env.succeed(by_index[3])

    async def complete():
        return has_cond(await env.job("idx"), "Complete")
    await env.until(complete)
    job = await env.job("idx")
    assert job["status"]["completedIndexes"] == "0-4" and job["status"]["succeeded"] == 5
    assert len(await env.pods("idx")) == 5


async def test_indexed_failed_index_is_retried(env):
    await env.create_job(job_manifest("idr", completions=2, parallelism=2, completionMode="Indexed"))
    pods = await env.wait_active("idr", 2)
    await env.fail(pods[0])
    await env.step(1)
    assert len(await env.active_pods("idr")) == 1  # back-off: 10 s before the replacement
    pods = await env.wait_active("idr", 2)
    assert sorted(index_of(p) for p in pods) == [0, 1]
    assert (await env.job("idr"))["status"]["failed"] == 1


async def test_backoff_limit_per_index_and_max_failed_indexes(env):
    await env.create_job(job_manifest("bli", completions=4, parallelism=4, completionMode="Indexed",
                                      backoffLimitPerIndex=1, maxFailedIndexes=1,
                                      backoffLimit=2147483647))
    pods = await env.wait_active("bli", 4)
    assert all(p["metadata"]["annotations"][FAILURE_COUNT_KEY] == "0" for p in pods)
    by_index = {index_of(p): p for p in pods}
    await env.succeed(by_index[0])
    await env.fail(by_index[1])

    async def retried():
        pods = [p for p in await env.active_pods("bli") if index_of(p) == 1]
        return len(pods) == 1
    await env.until(retried, max_time=15)
    retry = [p for p in await env.active_pods("bli") if index_of(p) == 1][0]
    assert retry["metadata"]["annotations"][FAILURE_COUNT_KEY] == "1"
    await env.fail(retry)

    async def failed_index():
        return (await env.job("bli"))["status"].get("failedIndexes") == "1"
    await env.until(failed_index)
    await env.step(30)
    assert not [p for p in await env.active_pods("bli") if index_of(p) == 1]  # not retried again
    job = await env.job("bli")
    assert not has_cond(job, "FailureTarget")
    # a second failed index exceeds maxFailedIndexes=1
    by_index = {index_of(p): p for p in await env.active_pods("bli")}
    await env.fail(by_index[2])

    async def retried2():
        return len([p for p in await env.active_pods("bli") if index_of(p) == 2]) == 1
    await env.until(retried2, max_time=15)
    retry2 = [p for p in await env.active_pods("bli") if index_of(p) == 2][0]
    await env.fail(retry2)

    async def failed():
        return has_cond(await env.job("bli"), "Failed")
    await env.until(failed)
    job = await env.job("bli")
    assert conds(job) == [("FailureTarget", "True", "MaxFailedIndexesExceeded"),
                          ("Failed", "True", "MaxFailedIndexesExceeded")]
    assert job["status"]["failedIndexes"] == "1,2"
    assert job["status"]["completedIndexes"] == "0"
    assert await env.active_pods("bli") == []


async def test_fail_index_action_and_failed_indexes_reason(env):
    policy = {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [7]}}]}
    await env.create_job(job_manifest("fi", completions=2, parallelism=2, completionMode="Indexed",
                                      backoffLimitPerIndex=3, podFailurePolicy=policy,
                                      podReplacementPolicy="Failed"))
    by_index = {index_of(p): p for p in await env.wait_active("fi", 2)}
    await env.fail(by_index[0], 7)
    await env.succeed(by_index[1])

    async def failed():
        return has_cond(await env.job("fi"), "Failed")
    await env.until(failed)
    job = await env.job("fi")
    assert conds(job)[-1] == ("Failed", "True", "FailedIndexes")
    assert job["status"]["conditions"][-1]["message"] == "Job has failed indexes"
    assert job["status"]["failedIndexes"] == "0" and job["status"]["completedIndexes"] == "1"
    assert len(await env.pods("fi")) == 2  # index 0 was not retried


async def test_success_policy(env):
    sp = {"rules": [{"succeededIndexes": "0,1", "succeededCount": 1}]}
    await env.create_job(job_manifest("sp", completions=4, parallelism=4, completionMode="Indexed",
                                      successPolicy=sp))
    by_index = {index_of(p): p for p in await env.wait_active("sp", 4)}
    await env.succeed(by_index[1])

    async def complete():
        return has_cond(await env.job("sp"), "Complete")
    await env.until(complete)
    job = await env.job("sp")
    assert conds(job) == [("SuccessCriteriaMet", "True", "SuccessPolicy"), ("Complete", "True", "SuccessPolicy")]
    assert job["status"]["conditions"][1]["message"] == "Matched rules at index 0"
    assert job["status"]["succeeded"] == 1 and job["status"].get("failed", 0) == 0
    assert job["status"].get("active", 0) == 0
    assert await env.active_pods("sp") == []


async def test_elastic_scale_down(env):
    await env.create_job(job_manifest("el", completions=4, parallelism=4, completionMode="Indexed"))
    by_index = {index_of(p): p for p in await env.wait_active("el", 4)}
    await env.succeed(by_index[3])

    async def three_done():
        return (await env.job("el"))["status"].get("completedIndexes") == "3"
    await env.until(three_done)
    job = await env.job("el")
    job["spec"]["completions"] = 2
    job["spec"]["parallelism"] = 2
    await env.client.update("jobs", job, "default")

    async def scaled():
        return sorted(index_of(p) for p in await env.active_pods("el")) == [0, 1]
    await env.until(scaled)
    job = await env.job("el")
    assert job["status"].get("succeeded", 0) == 0 and job["status"].get("completedIndexes", "") == ""
    for p in await env.active_pods("el"):
        await env.succeed(p)

    async def complete():
        return has_cond(await env.job("el"), "Complete")
    await env.until(complete)
    job = await env.job("el")
    assert job["status"]["completedIndexes"] == "0,1" and job["status"]["succeeded"] == 2
