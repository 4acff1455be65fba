"""Writing a Job's status and removing its pods' tracking finalizers, in the order that
keeps counts exact (upstream trackJobStatusAndRemoveFinalizers, flushUncountedAndRemoveFinalizers,
enactJobFinished).

Why a module of its own: this is the only place the Job's status is written. A pod's
finalizer goes only after its UID is recorded in ``uncountedTerminatedPods`` (or counted),
and the finished condition is set only once nothing is left uncounted or terminating.
"""

from __future__ import annotations

from typing import Any

from jobplane.api.meta import rfc3339
from jobplane.client.base import Client
from jobplane.client.events import EventRecorder
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.job import jobspec, tracking
from jobplane.controllers.job import status as st
from jobplane.controllers.job.backoff import BackoffStore
from jobplane.controllers.job.jobspec import (
    COND_COMPLETE,
    COND_FAILURE_TARGET,
    COND_SUCCESS_CRITERIA_MET,
)
from jobplane.controllers.job.pod_control import PodControl
from jobplane.controllers.job.tracking import SyncContext
from jobplane.controllers.job.view import JobView
from jobplane.metrics import JobMetrics

Obj = dict[str, Any]


class StatusWriter:
    """Flushes a sync's counts and conditions to the Job and strips finalizers."""

    def __init__(self, *, client: Client, clock: Clock, recorder: EventRecorder, queue: WorkQueue, view: JobView,
                 backoff: BackoffStore, pod_control: PodControl, metrics: JobMetrics | None = None) -> None:
        self.metrics = metrics
        self.client = client
        self.clock = clock
        self.recorder = recorder
        self.queue = queue
        self.view = view
        self.backoff = backoff
        self.pod_control = pod_control

    async def track_and_remove_finalizers(self, key: str, ctx: SyncContext, needs_flush: bool) -> None:
        staging = tracking.stage(ctx, needs_flush)
        needs_flush = staging.needs_flush
        now = self.clock.now()
        fc = ctx.finished_condition
        if fc is not None and fc["type"] == COND_FAILURE_TARGET:
            ctx.job["status"].setdefault("conditions", []).append(fc)
            needs_flush = True
            ctx.finished_condition = st.failed_for_target(fc, now)
        elif fc is not None and fc["type"] == COND_SUCCESS_CRITERIA_MET:
            if jobspec.true_condition(ctx.job, COND_SUCCESS_CRITERIA_MET) is None:
                ctx.job["status"].setdefault("conditions", []).append(fc)
                needs_flush = True
            ctx.finished_condition = st.new_condition(COND_COMPLETE, "True", fc.get("reason", ""),
                                                      fc.get("message", ""), now)
        if needs_flush:
            await self.write_status(key, ctx)
            self.backoff.update(key, ctx.new_backoff)
            needs_flush = False
        if self.metrics is not None:
            for action in staging.policy_actions:
                self.metrics.failure_policy(action).inc()

        removed, rm_err = await self.pod_control.remove_finalizers(key, staging.to_remove)
        staging.uids_with_finalizer -= removed
        if tracking.clean_uncounted(ctx.job["status"], staging.uids_with_finalizer):
            needs_flush = True
        if rm_err is not None:
            if needs_flush:
                await self.write_status(key, ctx)
            raise rm_err
        finished = not staging.reached_max and self._enact_finished(ctx)
        if finished:
            needs_flush = True
        if needs_flush:
            await self.write_status(key, ctx)
            if finished and ctx.finished_condition is not None:  # _enact_finished needs the condition
                for type_, reason, message in st.finished_events(ctx.job, ctx.finished_condition):
                    self.recorder.event(ctx.job, type_, reason, message)
                self.backoff.remove(key)
                self._record_finished(ctx)
        if staging.reached_max:
            self.queue.add(key)

    def _record_finished(self, ctx: SyncContext) -> None:
        """job_controller_jobs_finished_total{completion_mode, result, reason}."""
        fc = ctx.finished_condition
        if self.metrics is None or fc is None:
            return
        result = "succeeded" if fc["type"] == COND_COMPLETE else "failed"
        self.metrics.finished(jobspec.completion_mode(ctx.job), result, fc.get("reason", "")).inc()

    def _enact_finished(self, ctx: SyncContext) -> bool:
        fc = ctx.finished_condition
        if fc is None:
            return False
        status = ctx.job["status"]
        u = status.get("uncountedTerminatedPods") or {}
        if u.get("succeeded") or u.get("failed"):
            return False
        if ctx.terminating > 0:
            return False
        conditions = status.setdefault("conditions", [])
        now = self.clock.now()
        st.ensure_condition(conditions, fc["type"], fc["status"], fc.get("reason", ""), fc.get("message", ""), now)
        if fc["type"] == COND_COMPLETE:
            status["completionTime"] = rfc3339(now)
        return True

    async def write_status(self, key: str, ctx: SyncContext) -> None:
        job = ctx.job
        status = job["status"]
        if not status.get("completedIndexes"):
            status.pop("completedIndexes", None)
        body = {k: v for k, v in job.items() if k != "status"}
        body["status"] = status
        written = await self.client.update("jobs", body, job["metadata"].get("namespace"), subresource="status")
        self.view.remember(key, written)
        # Keep working on our copy of the status, under the new resourceVersion.
        ctx.job = {**written, "status": status}
