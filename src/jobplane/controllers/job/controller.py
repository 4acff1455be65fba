"""The Job controller (upstream pkg/controller/job/job_controller.go): wiring and syncJob.

``sync_job(key)`` recounts a job from its pods, decides whether it finished (interim
FailureTarget / SuccessCriteriaMet first, then Failed / Complete), has ``manage.py`` create
or delete pods (``manageJob``), and has ``status_writer.py`` write status with
finalizer-based accounting (tracking.py). The other concerns live beside it:
``handlers.py`` (informer events -> queue keys, expectations), ``pod_control.py`` (pod
writes and their events), ``claim.py`` (which pods a job owns), ``view.py`` (the job as
last written), ``finish.py`` (pure failure checks).

Speed: pods are indexed by their controller's UID, and only pods that can still matter are
in that index (terminal pods whose tracking finalizer is gone are accounted for and
skipped), so a sync costs O(live pods of that job). Pod events for a job are coalesced
for ``settings.job_sync_batch_period`` seconds; the last status this controller wrote is
remembered until the informer catches up, so back-to-back syncs never work from a stale
status.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any

import orjson

from jobplane import metrics
from jobplane.api.errors import StatusError
from jobplane.api.intervals import parse_lenient
from jobplane.api.meta import controller_ref, parse_time, rfc3339
from jobplane.client.events import EventRecorder
from jobplane.client.workqueue import WorkQueue
from jobplane.controllers.base import run_workers
from jobplane.controllers.job import finish, indexed, jobspec, success_policy, tracking
from jobplane.controllers.job import status as st
from jobplane.controllers.job.backoff import BackoffStore
from jobplane.controllers.job.claim import add_indexes, claim_pods
from jobplane.controllers.job.handlers import JobEventHandlers
from jobplane.controllers.job.jobspec import COND_FAILURE_TARGET, COND_SUCCESS_CRITERIA_MET
from jobplane.controllers.job.manage import PodManager
from jobplane.controllers.job.pod_control import PodControl
from jobplane.controllers.job.pods import (
    Expectations,
    FinalizerExpectations,
    has_tracking_finalizer,
    is_active,
    is_ready,
    is_terminating,
    meta,
)
from jobplane.controllers.job.status_writer import StatusWriter
from jobplane.controllers.job.tracking import SyncContext
from jobplane.controllers.job.view import JobView

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]

API_BACKOFF_BASE = 1.0
API_BACKOFF_MAX = 60.0


def _copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


class JobController:
    """Owns the informers, queues, expectations and back-off store, and wires the parts
    together; ``sync_job`` is the reconcile of one job key."""

    def __init__(self, ctx: ControllerContext, *, workers: int = 4) -> None:
        self.client = ctx.client
        self.clock = ctx.clock
        self.settings = ctx.settings
        if ctx.informers is None:
            from jobplane.client.informer import SharedInformerFactory

            ctx.informers = SharedInformerFactory(ctx.client, ctx.clock)
        self.workers = workers
        self.batch_period = float(self.settings.job_sync_batch_period)
        self.jobs = ctx.informers.informer("jobs")
        self.pods = ctx.informers.informer("pods")
        self.queue = WorkQueue(self.clock, base_delay=API_BACKOFF_BASE, max_delay=API_BACKOFF_MAX, name="job")
        self.orphan_queue = WorkQueue(self.clock, base_delay=API_BACKOFF_BASE, max_delay=API_BACKOFF_MAX,
                                      name="job-orphan-pod")
        self.recorder = EventRecorder(self.client, st.COMPONENT, self.clock)
        self.metrics = metrics.current().job
        self.expectations = Expectations(self.clock)
        self.finalizer_expectations = FinalizerExpectations()
        self.backoff = BackoffStore(self.settings.pod_backoff_base, self.settings.pod_backoff_max)
        # The informer's jobs, overlaid with the last status written per key until it catches up.
        self.view = JobView(self.jobs)
        self.pod_control = PodControl(self.client, self.recorder, self.expectations, self.finalizer_expectations,
                                      self.metrics)
        self.manager = PodManager(clock=self.clock, queue=self.queue, backoff=self.backoff,
                                  pod_control=self.pod_control)
        self.status_writer = StatusWriter(client=self.client, clock=self.clock, recorder=self.recorder,
                                          queue=self.queue, view=self.view, backoff=self.backoff,
                                          pod_control=self.pod_control, metrics=self.metrics)
        add_indexes(self.pods)
        self.handlers = JobEventHandlers(view=self.view, pods=self.pods, queue=self.queue,
                                         orphan_queue=self.orphan_queue, clock=self.clock,
                                         batch_period=self.batch_period, expectations=self.expectations,
                                         finalizer_expectations=self.finalizer_expectations,
                                         metrics=self.metrics)
        self.handlers.register()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.jobs.start()
        await self.pods.start()

    async def run(self) -> None:
        await self.start()
        await asyncio.gather(
            run_workers(self.queue, self._reconcile, self.workers, "job-controller"),
            run_workers(self.orphan_queue, self._reconcile_orphan, 1, "job-controller-orphans"),
        )

    def shutdown(self) -> None:
        self.queue.shutdown()
        self.orphan_queue.shutdown()

    async def _reconcile(self, key: str) -> float | None:
        try:
            await self.sync_job(key)
        except StatusError as exc:
            if exc.code == 409:
                # A stale object: look again soon rather than after the API back-off.
                log.debug("job %s: conflict, retrying: %s", key, exc)
                return self.batch_period
            raise
        return None

    async def _reconcile_orphan(self, key: str) -> None:
        await self.sync_orphan_pod(key)
        return None

    def job_view(self, key: str) -> Obj | None:
        """The informer's job, or this controller's own newer write of it."""
        return self.view.get(key)

    # ------------------------------------------------------------------ orphans
    async def sync_orphan_pod(self, key: str) -> None:
        """Strip the tracking finalizer from a pod no unfinished Job of ours controls."""
        pod = self.pods.get_key(key)
        if pod is None or not has_tracking_finalizer(pod):
            return
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return
            job = self.view.resolve_controller_ref(meta(pod).get("namespace") or "", ref)
            if job is not None and jobspec.managed_by_external(job):
                return
            if job is not None and not jobspec.is_finished(job):
                return
        await self.pod_control.remove_pod_finalizer(pod)

    # ------------------------------------------------------------------ syncJob
    async def sync_job(self, key: str) -> None:
        shared = self.view.get(key)
        if shared is None:
            self.expectations.delete(key)
            self.finalizer_expectations.delete(key)
            self.backoff.remove(key)
            return
        if jobspec.is_finished(shared) or jobspec.managed_by_external(shared):
            return
        if jobspec.spec(shared).get("completionMode") not in (None, jobspec.INDEXED, jobspec.NON_INDEXED):
            self.recorder.event(shared, st.WARNING, st.EV_UNKNOWN_COMPLETION_MODE, st.MSG_UNKNOWN_COMPLETION_MODE)
            return
        # job_controller_job_sync_duration_seconds / job_syncs_total, as upstream's deferred
        # record in syncJob: the action the sync took and whether it returned an error.
        t0 = perf_counter()
        action = ["tracking"]
        result = "error"
        try:
            await self._sync(key, shared, action)
            result = "success"
        finally:
            self.metrics.sync(jobspec.completion_mode(shared), result, action[0], perf_counter() - t0)

    async def _sync(self, key: str, shared: Obj, action: list[str]) -> None:
        """syncJob past its early returns; ``action[0]`` says what it did (metric label)."""
        now = self.clock.now()
        job = dict(shared)
        job["status"] = _copy(shared.get("status") or {})
        status = job["status"]
        tracking.uncounted(job)

        satisfied = self.expectations.satisfied(key)
        if not satisfied:
            action[0] = "reconciling"
        pods = await claim_pods(job, self.pods, self.client, self.pod_control)
        active = [p for p in pods if is_active(p)]
        u = status["uncountedTerminatedPods"]
        ctx = SyncContext(job=job, pods=pods, active=active,
                          expected_rm=set(self.finalizer_expectations.expected(key)),
                          uncounted_succeeded=set(u.get("succeeded") or ()),
                          uncounted_failed=set(u.get("failed") or ()))
        ctx.terminating = sum(1 for p in pods if is_terminating(p))
        ctx.ready = sum(1 for p in active if is_ready(p))
        new_succeeded, new_failed = tracking.new_finished_pods(ctx)
        ctx.succeeded = int(status.get("succeeded") or 0) + len(new_succeeded) + len(ctx.uncounted_succeeded)
        ctx.failed = (int(status.get("failed") or 0) + tracking.non_ignored_failed(job, new_failed)
                      + len(ctx.uncounted_failed))
        suspended = jobspec.is_suspended(job)
        if status.get("startTime") is None and not suspended:
            status["startTime"] = rfc3339(now)
        ctx.new_backoff = self.backoff.new_record(key, new_succeeded, new_failed)

        ctx.finished_condition = jobspec.true_condition(job, COND_SUCCESS_CRITERIA_MET)
        if ctx.finished_condition is None:
            target = jobspec.true_condition(job, COND_FAILURE_TARGET)
            if target is not None:
                ctx.finished_condition = st.failed_for_target(target, now)
            else:
                msg = finish.fail_job_message(job, pods)
                if msg is not None:
                    ctx.finished_condition = st.failure_condition(st.REASON_POD_FAILURE_POLICY, msg, now)
        if ctx.finished_condition is None:
            if ctx.failed > jobspec.backoff_limit(job) or finish.past_backoff_limit_on_failure(job, pods):
                ctx.finished_condition = st.failure_condition(st.REASON_BACKOFF_LIMIT, st.MSG_BACKOFF_LIMIT, now)
            elif finish.past_active_deadline(job, now):
                ctx.finished_condition = st.failure_condition(st.REASON_DEADLINE, st.MSG_DEADLINE, now)
            elif jobspec.spec(job).get("activeDeadlineSeconds") is not None and not suspended:
                start = parse_time(status.get("startTime")) or now
                ads = float(jobspec.spec(job)["activeDeadlineSeconds"])
                self.queue.add_after(key, max(0.0, ads - (now - start)))

        if jobspec.is_indexed(job):
            completions = jobspec.completions(job) or 0
            ctx.prev_succeeded_indexes, ctx.succeeded_indexes = indexed.succeeded_indexes(job, pods)
            ctx.succeeded = ctx.succeeded_indexes.total()
            if jobspec.has_backoff_limit_per_index(job):
                ctx.failed_indexes = indexed.failed_indexes(job, pods)
                failed_total = ctx.failed_indexes.total()
                if ctx.finished_condition is None:
                    mfi = jobspec.max_failed_indexes(job)
                    if mfi is not None and failed_total > mfi:
                        ctx.finished_condition = st.failure_condition(
                            st.REASON_MAX_FAILED_INDEXES, st.MSG_MAX_FAILED_INDEXES, now)
                    elif failed_total > 0 and failed_total + ctx.succeeded_indexes.total() >= completions:
                        ctx.finished_condition = st.failure_condition(
                            st.REASON_FAILED_INDEXES, st.MSG_FAILED_INDEXES, now)
                ctx.delayed_deletion = indexed.pods_with_delayed_deletion(
                    job, pods, active, ctx.expected_rm, ctx.succeeded_indexes, ctx.failed_indexes)
            if ctx.finished_condition is None and jobspec.true_condition(job, COND_SUCCESS_CRITERIA_MET) is None:
                msg = success_policy.match(jobspec.success_policy(job), completions, ctx.succeeded_indexes)
                if msg is not None:
                    ctx.finished_condition = st.success_condition(st.REASON_SUCCESS_POLICY, msg, now)

        suspend_changed = False
        active_count = len(active)
        manage_err: Exception | None = None
        if ctx.finished_condition is not None:
            deleted_ready, deleted, manage_err = await self.pod_control.delete_active_pods(job, active)
            if active:
                action[0] = "pods_deleted"
            if deleted != active_count or not satisfied:
                ctx.finished_condition = None
            active_count -= deleted
            ctx.terminating += deleted
            ctx.ready -= deleted_ready
        else:
            manage_called = False
            if satisfied and not job["metadata"].get("deletionTimestamp"):
                before = active_count
                active_count, manage_err = await self.manager.manage_job(key, job, ctx)
                manage_called = True
                if active_count > before:
                    action[0] = "pods_created"
                elif active_count < before:
                    action[0] = "pods_deleted"
            wanted = jobspec.completions(job)
            if wanted is None:
                complete = ctx.succeeded > 0 and active_count == 0
            else:
                complete = ctx.succeeded >= wanted and active_count == 0
            if complete:
                ctx.finished_condition = st.success_condition(
                    st.REASON_COMPLETIONS_REACHED, st.MSG_COMPLETIONS_REACHED, now)
            elif manage_called:
                conditions = status.get("conditions") or []
                if st.ensure_suspended(conditions, suspended, now):
                    suspend_changed = True
                    status["conditions"] = conditions
                    if suspended:
                        self.recorder.event(job, st.NORMAL, st.EV_SUSPENDED, "Job suspended")
                        status.pop("startTime", None)
                    else:
                        self.recorder.event(job, st.NORMAL, st.EV_RESUMED, "Job resumed")
                        status["startTime"] = rfc3339(now)

        needs_update = (suspend_changed or active_count != status.get("active", 0)
                        or ctx.ready != status.get("ready") or ctx.terminating != status.get("terminating")
                        or status.get("startTime") != (shared.get("status") or {}).get("startTime"))
        status["active"] = active_count
        status["ready"] = ctx.ready
        status["terminating"] = ctx.terminating
        await self.status_writer.track_and_remove_finalizers(key, ctx, needs_update)
        self._record_finished_pods(shared, ctx.job)
        if manage_err is not None:
            raise manage_err


    def _record_finished_pods(self, old: Obj, new: Obj) -> None:
        """job_pods_finished_total: the growth of the counted succeeded/failed pods
        (upstream recordJobPodsFinished)."""
        mode = jobspec.completion_mode(new)
        before, after = old.get("status") or {}, new.get("status") or {}
        for field_name, result in (("succeeded", "succeeded"), ("failed", "failed")):
            grown = int(after.get(field_name) or 0) - int(before.get(field_name) or 0)
            if grown > 0:
                self.metrics.pods_finished(mode, result).inc(grown)
        if mode == jobspec.INDEXED:
            limit = "perIndex" if jobspec.has_backoff_limit_per_index(new) else "global"
            for field_name, label in (("completedIndexes", "succeeded"), ("failedIndexes", "failed")):
                if before.get(field_name) != after.get(field_name):
                    grown = _count_indexes(after.get(field_name)) - _count_indexes(before.get(field_name))
                    if grown > 0:
                        self.metrics.finished_indexes(label, limit).inc(grown)


def _count_indexes(text: str | None) -> int:
    return sum(hi - lo + 1 for lo, hi in parse_lenient(text))


async def run(ctx: ControllerContext) -> None:
    """Controller-manager entry point: run the Job controller until cancelled."""
    await JobController(ctx).run()
