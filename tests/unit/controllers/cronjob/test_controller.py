"""CronJob controller policies on a fake clock, against the real in-process API stack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from jobplane.apiserver.service import ApiService
from jobplane.client.informer import SharedInformerFactory
from jobplane.client.inproc import InProcessClient
from jobplane.clock import FakeClock
from jobplane.controllers.cronjob.controller import CronJobController
from jobplane.controllers.manager import ControllerContext
from jobplane.settings import Settings
from jobplane.storage.memory import MemoryStore

# 2024-01-01T00:00:30Z
START = datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC).timestamp()


class Env:
    def __init__(self) -> None:
        self.clock = FakeClock(START)
        self.service = ApiService(MemoryStore(), self.clock)
        self.client = InProcessClient(self.service)
        self.ctx = ControllerContext(self.client, self.clock, Settings(),
                                     SharedInformerFactory(self.client, self.clock))
        self.ctl = CronJobController(self.ctx)

    async def start(self) -> None:
        await self.service.ensure_default_namespaces()
        await self.ctx.informers.start_all()

    async def settle(self) -> None:
        await asyncio.sleep(0.02)

    async def create_cronjob(self, name: str = "hello", **spec: object) -> dict:
        body = {
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {
                "metadata": {"labels": {"app": name}},
                "spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [
                    {"name": "c", "image": "busybox", "command": ["true"]}]}}}}, **spec},
        }
        cj = await self.client.create("cronjobs", body, "default")
        await self.settle()
        return cj

    async def sync(self, name: str = "hello") -> float | None:
        delay = await self.ctl.sync(f"default/{name}")
        await self.ctl.recorder.flush()
        await self.settle()
        return delay

    async def jobs(self) -> list[dict]:
        return (await self.client.list("jobs", "default"))["items"]

    async def cronjob(self, name: str = "hello") -> dict:
        return await self.client.get("cronjobs", name, "default")

    async def events(self, reason: str) -> list[dict]:
        return [e for e in (await self.client.list("events", "default"))["items"] if e["reason"] == reason]

    async def finish(self, job: dict, ctype: str = "Complete") -> None:
        now = "2024-01-01T00:01:05Z"
        job = await self.client.get("jobs", job["metadata"]["name"], "default")
        interim = "SuccessCriteriaMet" if ctype == "Complete" else "FailureTarget"
        job["status"] = {"startTime": "2024-01-01T00:01:00Z", "conditions": [
            {"type": interim, "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
            {"type": ctype, "status": "True", "lastTransitionTime": now, "lastProbeTime": now}]}
        if ctype == "Complete":
            job["status"].update(completionTime=now, succeeded=1)
        else:
            job["status"].update(failed=1)
        await self.client.update("jobs", job, "default", subresource="status")
        await self.settle()


@pytest.fixture
async def env() -> Env:
    e = Env()
    await e.start()
    yield e
    await e.ctx.informers.stop_all()


async def test_nothing_before_first_time_then_wakes_at_next_minute(env: Env) -> None:
    await env.create_cronjob()
    delay = await env.sync()
    assert await env.jobs() == []
    assert delay == pytest.approx(30.1)


async def test_creates_job_with_upstream_name_labels_annotation_and_owner(env: Env) -> None:
    cj = await env.create_cronjob()
    await env.clock.advance(31)  # 00:01:01
    await env.sync()
    jobs = await env.jobs()
    assert [j["metadata"]["name"] for j in jobs] == ["hello-28401121"]
    job = jobs[0]
    assert job["metadata"]["labels"]["app"] == "hello"
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        "2024-01-01T00:01:00Z"
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("CronJob", "hello", cj["metadata"]["uid"],
                                                                       True)
    status = (await env.cronjob())["status"]
    assert status["lastScheduleTime"] == "2024-01-01T00:01:00Z"
    assert [r["name"] for r in status["active"]] == ["hello-28401121"]
    assert len(await env.events("SuccessfulCreate")) == 1
    # a second sync (or a restarted controller) at the same time never makes a second job
    await env.sync()
    env2 = CronJobController(env.ctx)
    await env2.sync("default/hello")
    assert len(await env.jobs()) == 1


async def test_forbid_skips_while_active_then_runs(env: Env) -> None:
    await env.create_cronjob(concurrencyPolicy="Forbid")
    await env.clock.advance(31)
    await env.sync()
    await env.clock.advance(60)  # 00:02:01, first job still active
    await env.sync()
    assert len(await env.jobs()) == 1
    assert await env.events("JobAlreadyActive")
    await env.finish((await env.jobs())[0])
    await env.sync()
    names = sorted(j["metadata"]["name"] for j in await env.jobs())
    assert names == ["hello-28401121", "hello-28401122"]
    assert await env.events("SawCompletedJob")


async def test_replace_deletes_the_active_job(env: Env) -> None:
    await env.create_cronjob(concurrencyPolicy="Replace")
    await env.clock.advance(31)
    await env.sync()
    await env.clock.advance(60)
    await env.sync()
    names = [j["metadata"]["name"] for j in await env.jobs() if not j["metadata"].get("deletionTimestamp")]
    assert names == ["hello-28401122"]
    assert [r["name"] for r in (await env.cronjob())["status"]["active"]] == ["hello-28401122"]


async def test_allow_runs_concurrently(env: Env) -> None:
    await env.create_cronjob()
    await env.clock.advance(31)
    await env.sync()
    await env.clock.advance(60)
    await env.sync()
    assert len((await env.cronjob())["status"]["active"]) == 2


async def test_suspend_creates_nothing(env: Env) -> None:
    await env.create_cronjob(suspend=True)
    await env.clock.advance(600)
    assert await env.sync() is None
    assert await env.jobs() == []


async def test_starting_deadline_missed(env: Env) -> None:
    await env.create_cronjob(schedule="0 * * * *", startingDeadlineSeconds=10)
    await env.clock.advance(3600)  # 01:00:30, 30 s after the run time, deadline 10 s
    await env.sync()
    assert await env.jobs() == []


async def test_too_many_missed_runs_only_latest(env: Env) -> None:
    await env.create_cronjob()
    await env.clock.advance(200 * 60)
    await env.sync()
    jobs = await env.jobs()
    assert len(jobs) == 1
    assert jobs[0]["metadata"]["name"] == f"hello-{int(START + 200 * 60) // 60}"
    assert await env.events("TooManyMissedTimes")


async def test_history_limits_prune_oldest(env: Env) -> None:
    await env.create_cronjob(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0)
    for _ in range(3):
        await env.clock.advance(60)
        await env.sync()
        job = [j for j in await env.jobs() if not (j.get("status") or {}).get("conditions")][0]
        await env.finish(job)
        await env.sync()
    remaining = [j["metadata"]["name"] for j in await env.jobs()]
    assert len(remaining) == 1
    assert await env.events("SuccessfulDelete")
    assert (await env.cronjob())["status"].get("lastSuccessfulTime") == "2024-01-01T00:01:05Z"


async def test_missing_job_removed_from_active(env: Env) -> None:
    await env.create_cronjob()
    await env.clock.advance(31)
    await env.sync()
    job = (await env.jobs())[0]
    await env.client.delete("jobs", job["metadata"]["name"], "default", propagation_policy="Background")
    await env.settle()
    await env.sync()
    assert not (await env.cronjob())["status"].get("active")
    assert await env.events("MissingJob")


async def test_time_zone_annotation(env: Env) -> None:
    await env.create_cronjob(schedule="1 9 * * *", timeZone="Asia/Seoul")
    await env.clock.advance(60)  # 00:01:30 UTC = 09:01:30 KST
    await env.sync()
    job = (await env.jobs())[0]
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        "2024-01-01T09:01:00+09:00"
