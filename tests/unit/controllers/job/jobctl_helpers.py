"""Helpers for the Job controller tests: a job manifest builder and ``Env`` (service,
controller, fake clock, and a tiny kubelet stand-in that writes pod status)."""

from __future__ import annotations

import asyncio
from typing import Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import rfc3339
from jobplane.client.informer import SharedInformerFactory
from jobplane.client.inproc import InProcessClient
from jobplane.clock import FakeClock
from jobplane.controllers.job.controller import JobController
from jobplane.controllers.manager import ControllerContext
from jobplane.settings import Settings

Obj = dict[str, Any]


def job_manifest(name: str, *, completions: int | None = 1, parallelism: int = 1, **spec: Any) -> Obj:
    restart = spec.pop("restartPolicy", "Never")
    s: Obj = {
        "parallelism": parallelism,
        "backoffLimit": spec.pop("backoffLimit", 6),
        "manualSelector": True,
        "selector": {"matchLabels": {"job": name}},
        "template": {"metadata": {"labels": {"job": name}},
                     "spec": {"restartPolicy": restart,
                              "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}},
    }
    if completions is not None:
        s["completions"] = completions
    s.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"}, "spec": s}


class Env:
    def __init__(self, client: InProcessClient, clock: FakeClock, settings: Settings) -> None:
        self.client = client
        self.clock = clock
        self.settings = settings
        self.ctrl: JobController | None = None
        self.task: asyncio.Task | None = None
        self.informers: SharedInformerFactory | None = None

    # -- controller lifecycle ----------------------------------------------------------
    async def start(self) -> JobController:
        self.informers = SharedInformerFactory(self.client, self.clock)
        ctx = ControllerContext(client=self.client, clock=self.clock, settings=self.settings,
                                informers=self.informers)
        self.ctrl = JobController(ctx)
        await self.ctrl.start()
        self.task = asyncio.create_task(self.ctrl.run())
        await self.settle()
        return self.ctrl

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.informers is not None:
            await self.informers.stop_all()
        self.ctrl = None

    # -- time ----------------------------------------------------------------------------
    async def settle(self, n: int = 30) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    async def step(self, dt: float = 0.05) -> None:
        await self.clock.advance(dt)
        await self.settle()

    async def until(self, pred, *, max_time: float = 30.0, dt: float = 0.05, what: str = "") -> None:
        """Advance the fake clock in small steps until the async predicate holds."""
        waited = 0.0
        while True:
            if await pred():
                return
            if waited > max_time:
                raise AssertionError(f"timed out waiting for {what or pred}")
            await self.step(dt)
            waited += dt

    # -- API -------------------------------------------------------------------------------
    async def create_job(self, manifest: Obj) -> Obj:
        return await self.client.create("jobs", manifest, "default")

    async def job(self, name: str) -> Obj:
        return await self.client.get("jobs", name, "default")

    async def pods(self, name: str) -> list[Obj]:
        items = (await self.client.list("pods", "default", label_selector=f"job={name}"))["items"]
        return sorted(items, key=lambda p: p["metadata"]["name"])

    async def active_pods(self, name: str) -> list[Obj]:
        return [p for p in await self.pods(name)
                if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
                and not p["metadata"].get("deletionTimestamp")]

    async def wait_active(self, name: str, n: int) -> list[Obj]:
        """Advance the clock until the Job has exactly ``n`` active pods; returns them."""
        async def reached() -> bool:
            return len(await self.active_pods(name)) == n
        await self.until(reached, what=f"{n} active pods of {name}")
        return await self.active_pods(name)

    async def events(self, name: str) -> list[tuple[str, str, str]]:
        if self.ctrl is not None:
            await self.ctrl.recorder.flush()
        items = (await self.client.list("events", "default"))["items"]
        return [(e["type"], e["reason"], e["message"]) for e in items
                if e["involvedObject"]["name"] == name]

    # -- kubelet stand-in ----------------------------------------------------------------
    async def set_phase(self, pod: Obj, phase: str, exit_code: int | None = None,
                        conditions: list[Obj] | None = None, restarts: int = 0) -> Obj:
        pod = await self.client.get("pods", pod["metadata"]["name"], "default")
        now = rfc3339(self.clock.now())
        cs: Obj = {"name": "main", "image": "busybox", "ready": False, "restartCount": restarts}
        if exit_code is not None:
            cs["state"] = {"terminated": {"exitCode": exit_code, "startedAt": now, "finishedAt": now,
                                          "reason": "Completed" if exit_code == 0 else "Error"}}
        else:
            cs["state"] = {"running": {"startedAt": now}}
        pod["status"] = {"phase": phase, "containerStatuses": [cs], "conditions": list(conditions or [])}
        return await self.client.update("pods", pod, "default", subresource="status")

    async def succeed(self, pod: Obj) -> Obj:
        return await self.set_phase(pod, "Succeeded", 0)

    async def fail(self, pod: Obj, exit_code: int = 1, **kw: Any) -> Obj:
        return await self.set_phase(pod, "Failed", exit_code, **kw)

    async def force_delete(self, pod: Obj) -> None:
        try:
            await self.client.delete("pods", pod["metadata"]["name"], "default", grace_period_seconds=0)
        except StatusError as exc:
            if exc.code != 404:
                raise


