"""CronJob controller: upstream's cronjob_controllerv2 sync loop.

Each CronJob key is re-queued for its next scheduled time (+100 ms) on the injected
clock, so nothing polls. Jobs are named ``<cronjob>-<minutes since epoch>``, so one
scheduled time yields at most one Job, also across restarts.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobplane import metrics
from jobplane.api import errors, meta
from jobplane.client.events import EventRecorder
from jobplane.client.workqueue import WorkQueue
from jobplane.controllers.base import run_workers
from jobplane.controllers.cronjob import schedule as sched
from jobplane.controllers.cronjob.decide import decide

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]
COMPONENT = "cronjob-controller"
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
_BY_CRONJOB = "cronjob"


def _cronjob_index(job: Obj) -> list[str]:
    ref = meta.controller_ref(job)
    if not ref or ref.get("kind") != "CronJob":
        return []
    return [f"{job['metadata'].get('namespace', '')}/{ref.get('name', '')}"]


def job_finished(job: Obj) -> str | None:
    """"Complete" or "Failed" when the job has that condition True, else None."""
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


def _start_time(job: Obj) -> float:
    start = meta.parse_time((job.get("status") or {}).get("startTime"))
    return start if start is not None else float("inf")  # nil startTime counts as newest


def job_from_template(cj: Obj, scheduled: datetime, zone: Any) -> Obj:
    """upstream getJobFromTemplate2."""
    template = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = scheduled.astimezone(zone or UTC).isoformat().replace(
        "+00:00", "Z")
    md: Obj = {
        "name": sched.job_name(cj["metadata"]["name"], scheduled),
        "namespace": cj["metadata"].get("namespace"),
        "annotations": annotations,
        "ownerReferences": [meta.owner_reference(
            {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": cj["metadata"]})],
    }
    if tmeta.get("labels"):
        md["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": md,
            "spec": copy.deepcopy(template.get("spec") or {})}


def object_ref(job: Obj) -> Obj:
    md = job["metadata"]
    return {"kind": "Job", "namespace": md.get("namespace"), "name": md["name"], "uid": md.get("uid"),
            "apiVersion": "batch/v1", "resourceVersion": md.get("resourceVersion")}


class CronJobController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.clock = ctx.clock
        self.cronjobs = ctx.informers.informer("cronjobs")
        self.jobs = ctx.informers.informer("jobs")
        self.queue = WorkQueue(self.clock, name="cronjob")
        self.creation_skew = metrics.current().cronjob_skew
        self.recorder = EventRecorder(self.client, COMPONENT, self.clock)
        self.jobs.add_index(_BY_CRONJOB, _cronjob_index)
        self.cronjobs.add_handler(on_add=self._enqueue, on_update=self._cronjob_updated,
                                  on_delete=self._enqueue)
        self.jobs.add_handler(on_add=self._job_changed, on_update=lambda old, new: self._job_changed(new),
                              on_delete=self._job_changed)

    # -- event handlers -----------------------------------------------------------------
    def _enqueue(self, cj: Obj) -> None:
        self.queue.add(meta.key_of(cj))

    def _cronjob_updated(self, old: Obj, new: Obj) -> None:
        self.queue.add(meta.key_of(new))

    def _job_changed(self, job: Obj) -> None:
        for key in _cronjob_index(job):
            self.queue.add(key)

    # -- loop ---------------------------------------------------------------------------
    async def run(self, workers: int = 2) -> None:
        await asyncio.gather(self.cronjobs.start(), self.jobs.start())
        await run_workers(self.queue, self.sync, workers=workers, name="cronjob")

    # -- sync ---------------------------------------------------------------------------
    async def sync(self, key: str) -> float | None:
        """One reconcile of a CronJob. Returns the delay until it must run again, or None."""
        ns, _, name = key.rpartition("/")
        cached = self.cronjobs.get(ns, name)
        if cached is None:
            return None
        cj = copy.deepcopy(cached)
        jobs = self.jobs.by_index(_BY_CRONJOB, key)
        status_before = copy.deepcopy(cj.get("status") or {})
        await self._cleanup_finished_jobs(cj, jobs)
        await self._reconcile_active(cj, jobs)
        requeue = await self._schedule(cj)
        status = cj.setdefault("status", {})
        if not status.get("active"):
            status.pop("active", None)
        if status != status_before:
            try:
                await self.client.update("cronjobs", cj, ns, subresource="status")
            except errors.StatusError as exc:
                if exc.code == 404:
                    return None
                raise
        return requeue

    async def _cleanup_finished_jobs(self, cj: Obj, jobs: list[Obj]) -> None:
        spec = cj.get("spec") or {}
        if spec.get("successfulJobsHistoryLimit") is None and spec.get("failedJobsHistoryLimit") is None:
            return
        for kind, limit_field in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(limit_field)
            if limit is None:
                continue
            finished = [j for j in jobs if job_finished(j) == kind
                        and not j["metadata"].get("deletionTimestamp")]
            if len(finished) <= limit:
                continue
            finished.sort(key=lambda j: (_start_time(j), j["metadata"]["name"]))
            for job in finished[: len(finished) - limit]:
                await self._delete_job(cj, job)

    async def _delete_job(self, cj: Obj, job: Obj) -> bool:
        name = job["metadata"]["name"]
        try:
            await self.client.delete("jobs", name, job["metadata"].get("namespace"),
                                     propagation_policy="Background")
        except errors.StatusError as exc:
            if exc.code != 404:
                self.recorder.event(cj, "Warning", "FailedDelete", f"Deleted job: {exc.message}")
                return False
        self._remove_active(cj, job["metadata"].get("uid"))
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {name}")
        return True

    @staticmethod
    def _remove_active(cj: Obj, uid: str | None) -> None:
        status = cj.setdefault("status", {})
        status["active"] = [r for r in status.get("active") or () if r.get("uid") != uid]

    async def _reconcile_active(self, cj: Obj, jobs: list[Obj]) -> None:
        status = cj.setdefault("status", {})
        active_uids = {r.get("uid") for r in status.get("active") or ()}
        ns = cj["metadata"].get("namespace")
        seen: set[str] = set()
        for job in jobs:
            md = job["metadata"]
            seen.add(md.get("uid"))
            finished = job_finished(job)
            in_active = md.get("uid") in active_uids
            if not finished and not in_active and not md.get("deletionTimestamp"):
                try:
                    live = await self.client.get("jobs", md["name"], ns)
                except errors.StatusError:
                    live = None
                if live is not None and not job_finished(live) and \
                        live["metadata"].get("uid") == md.get("uid"):
                    self.recorder.event(cj, "Warning", "UnexpectedJob",
                                        f"Saw a job that the controller did not create or forgot: {md['name']}")
            elif in_active and finished:
                self._remove_active(cj, md.get("uid"))
                self.recorder.event(cj, "Normal", "SawCompletedJob",
                                    f"Saw completed job: {md['name']}, status: {finished}")
            elif finished == "Complete" and not in_active:
                done_at = (job.get("status") or {}).get("completionTime")
                done, last = meta.parse_time(done_at), meta.parse_time(status.get("lastSuccessfulTime"))
                if done is not None and (last is None or done > last):
                    status["lastSuccessfulTime"] = done_at
        for ref in list(status.get("active") or ()):
            if ref.get("uid") in seen:
                continue
            try:
                live = await self.client.get("jobs", ref.get("name"), ns)
            except errors.StatusError as exc:
                if exc.code != 404:
                    raise
                live = None
            if live is None or live["metadata"].get("uid") != ref.get("uid"):
                self.recorder.event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                self._remove_active(cj, ref.get("uid"))

    async def _schedule(self, cj: Obj) -> float | None:
        """Act on ``decide``'s plan: events, Replace deletions, then the Job create."""
        md = cj["metadata"]
        status = cj.setdefault("status", {})
        plan = decide(cj, datetime.fromtimestamp(self.clock.now(), tz=UTC))
        for ev in plan.events:
            self.recorder.event(cj, ev.type, ev.reason, ev.message)
        requeue, scheduled = plan.requeue, plan.create_for
        if scheduled is None:
            return requeue
        for old in plan.replace:
            old_name: Any = old.get("name")  # status.active as stored, like the pre-split code
            try:
                job = await self.client.get("jobs", old_name, md.get("namespace"))
            except errors.StatusError as exc:
                if exc.code == 404:
                    self._remove_active(cj, old.get("uid"))
                    continue
                self.recorder.event(cj, "Warning", "FailedGet", f"Get job: {exc.message}")
                return None
            if not await self._delete_job(cj, job):
                return None
        job = job_from_template(cj, scheduled, plan.zone)
        try:
            created = await self.client.create("jobs", job, md.get("namespace"))
            self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}")
            self.creation_skew.observe(max(0.0, self.clock.now() - scheduled.timestamp()))
        except errors.StatusError as exc:
            if exc.code != 409:
                self.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {exc.message}")
                return None
            created = await self.client.get("jobs", job["metadata"]["name"], md.get("namespace"))
            ref = meta.controller_ref(created)
            if not ref or ref.get("uid") != md.get("uid"):
                # a job of that name exists and is not ours: nothing more to do for this time
                return requeue
        status.setdefault("active", [])
        if not any(r.get("uid") == created["metadata"].get("uid") for r in status["active"]):
            status["active"].append(object_ref(created))
        status["lastScheduleTime"] = meta.rfc3339(scheduled.timestamp())
        return requeue
