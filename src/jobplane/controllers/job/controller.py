"""The Job controller (upstream pkg/controller/job/job_controller.go).

``sync_job(key)`` recounts a job from its pods, decides whether it finished (interim
FailureTarget / SuccessCriteriaMet first, then Failed / Complete), creates or deletes pods
(``manageJob``), and writes status with finalizer-based accounting (tracking.py).

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
from typing import Any

import orjson

from jobplane.api.errors import StatusError
from jobplane.api.meta import parse_time, rfc3339
from jobplane.api.selectors import from_label_selector_dict
from jobplane.client.events import EventRecorder
from jobplane.client.workqueue import WorkQueue
from jobplane.controllers.base import remove_finalizer, run_workers
from jobplane.controllers.job import indexed, jobspec, success_policy, tracking
from jobplane.controllers.job import pod_failure_policy as pfp
from jobplane.controllers.job import status as st
from jobplane.controllers.job.backoff import BackoffStore
from jobplane.controllers.job.jobspec import (
    COND_COMPLETE,
    COND_FAILURE_TARGET,
    COND_SUCCESS_CRITERIA_MET,
)
from jobplane.controllers.job.pods import (
    TRACKING_FINALIZER,
    Expectations,
    FinalizerExpectations,
    PodTemplate,
    adopt_patch,
    controller_ref,
    controller_uid,
    has_tracking_finalizer,
    is_active,
    is_pod_failed,
    is_ready,
    is_terminal,
    is_terminating,
    meta,
    phase,
    pod_uid,
    release_patch,
    remove_finalizer_patch,
    sort_for_deletion,
)
from jobplane.controllers.job.tracking import SyncContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MAX_POD_CREATE_DELETE_PER_SYNC = 500
SLOW_START_INITIAL_BATCH = 1
API_BACKOFF_BASE = 1.0
API_BACKOFF_MAX = 60.0
MIN_BACKOFF_REQUEUE = 1.0

IDX_BY_OWNER = "job-controller/owner-uid"
IDX_ORPHANS = "job-controller/orphans"


def _owner_index(pod: Obj) -> list[str]:
    """Pods that still matter to their job: not terminal, or still carrying the finalizer."""
    uid = controller_uid(pod)
    if uid is None:
        return []
    if is_terminal(pod) and not has_tracking_finalizer(pod):
        return []
    return [uid]


def _orphan_index(pod: Obj) -> list[str]:
    if controller_ref(pod) is not None:
        return []
    return [meta(pod).get("namespace") or ""]


def _key(obj: Obj) -> str:
    m = obj.get("metadata") or {}
    return f"{m.get('namespace')}/{m.get('name')}"


def _rv(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def _namespace_terminating(exc: StatusError) -> bool:
    causes = ((exc.details or {}).get("causes") or [])
    if any(c.get("reason") == "NamespaceTerminating" for c in causes):
        return True
    return exc.code == 403 and "because it is being terminated" in exc.message


class JobController:
    def __init__(self, ctx: Any, *, workers: int = 4) -> None:
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
        self.expectations = Expectations(self.clock)
        self.finalizer_expectations = FinalizerExpectations()
        self.backoff = BackoffStore(self.settings.pod_backoff_base, self.settings.pod_backoff_max)
        # Last status this controller wrote per job key, until the informer catches up.
        self._written: dict[str, Obj] = {}
        self.pods.add_index(IDX_BY_OWNER, _owner_index)
        self.pods.add_index(IDX_ORPHANS, _orphan_index)
        self.jobs.add_handler(self._add_job, self._update_job, self._delete_job)
        self.pods.add_handler(self._add_pod, self._update_pod, lambda pod: self._delete_pod(pod, final=True))

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

    # ------------------------------------------------------------------ job view
    def job_view(self, key: str) -> Obj | None:
        """The informer's job, or this controller's own newer write of it."""
        cached = self.jobs.get_key(key)
        written = self._written.get(key)
        if written is None:
            return cached
        if cached is None or cached["metadata"].get("uid") != written["metadata"].get("uid") \
                or _rv(cached) >= _rv(written):
            del self._written[key]
            return cached
        return written

    def _resolve_controller_ref(self, namespace: str, ref: Obj) -> Obj | None:
        if ref.get("kind") != "Job":
            return None
        job = self.job_view(f"{namespace}/{ref.get('name')}")
        if job is None or job["metadata"].get("uid") != ref.get("uid"):
            return None
        return job

    def _jobs_matching(self, pod: Obj) -> list[Obj]:
        labels = meta(pod).get("labels") or {}
        if not labels:
            return []
        out = []
        for job in self.jobs.list(meta(pod).get("namespace")):
            if from_label_selector_dict(jobspec.spec(job).get("selector")).matches(labels):
                out.append(job)
        return out

    # ------------------------------------------------------------------ enqueueing
    def enqueue(self, job: Obj, delay: float = 0.0) -> None:
        if delay <= 0:
            self.queue.add(_key(job))
        else:
            self.queue.add_after(_key(job), delay)

    def _enqueue_batched(self, job: Obj) -> None:
        self.enqueue(job, self.batch_period)

    def _enqueue_orphan(self, pod: Obj) -> None:
        self.orphan_queue.add(_key(pod))

    def _cleanup_pod_finalizers(self, job: Obj) -> None:
        for pod in self.pods.by_index(IDX_BY_OWNER, jobspec.uid(job)):
            if has_tracking_finalizer(pod):
                self._enqueue_orphan(pod)

    # ------------------------------------------------------------------ job handlers
    def _add_job(self, job: Obj) -> None:
        if jobspec.managed_by_external(job):
            return
        self.enqueue(job)
        if jobspec.is_finished(job):
            self._cleanup_pod_finalizers(job)

    def _update_job(self, old: Obj, cur: Obj) -> None:
        if jobspec.managed_by_external(cur):
            return
        if old["metadata"].get("uid") != cur["metadata"].get("uid"):
            self._delete_job(old)
            self._add_job(cur)
            return
        if meta(cur).get("generation") == meta(old).get("generation"):
            self._enqueue_batched(cur)
        else:
            self.enqueue(cur)
        if jobspec.is_finished(cur):
            self._cleanup_pod_finalizers(cur)
        start = parse_time(jobspec.status(cur).get("startTime"))
        ads = jobspec.spec(cur).get("activeDeadlineSeconds")
        if start is not None and ads is not None and ads != jobspec.spec(old).get("activeDeadlineSeconds"):
            self.enqueue(cur, max(0.0, ads - (self.clock.now() - start)))

    def _delete_job(self, job: Obj) -> None:
        key = _key(job)
        self.queue.add(key)
        self._written.pop(key, None)
        if not jobspec.managed_by_external(job):
            self._cleanup_pod_finalizers(job)

    # ------------------------------------------------------------------ pod handlers
    def _add_pod(self, pod: Obj) -> None:
        if meta(pod).get("deletionTimestamp"):
            self._delete_pod(pod, final=False)
            return
        ref = controller_ref(pod)
        if ref is not None:
            job = self._resolve_controller_ref(meta(pod).get("namespace"), ref)
            if job is None:
                if has_tracking_finalizer(pod):
                    self._enqueue_orphan(pod)
                return
            self.expectations.creation_observed(_key(job))
            self._enqueue_batched(job)
            return
        if has_tracking_finalizer(pod):
            self._enqueue_orphan(pod)
        for job in self._jobs_matching(pod):
            self._enqueue_batched(job)

    def _update_pod(self, old: Obj, cur: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(cur).get("resourceVersion"):
            return
        if meta(cur).get("deletionTimestamp"):
            self._delete_pod(cur, final=False)
        finalizer_removed = not has_tracking_finalizer(cur)
        ns = meta(cur).get("namespace")
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            job = self._resolve_controller_ref(ns, old_ref)
            if job is not None:
                if finalizer_removed:
                    self.finalizer_expectations.observed(_key(job), pod_uid(cur))
                self._enqueue_batched(job)
        if cur_ref is not None:
            job = self._resolve_controller_ref(ns, cur_ref)
            if job is None:
                if has_tracking_finalizer(cur):
                    self._enqueue_orphan(cur)
                return
            if finalizer_removed:
                self.finalizer_expectations.observed(_key(job), pod_uid(cur))
            self._enqueue_batched(job)
            return
        if has_tracking_finalizer(cur):
            self._enqueue_orphan(cur)
        if ref_changed or (meta(cur).get("labels") != meta(old).get("labels")):
            for job in self._jobs_matching(cur):
                self._enqueue_batched(job)

    def _delete_pod(self, pod: Obj, final: bool) -> None:
        ref = controller_ref(pod)
        has_fin = has_tracking_finalizer(pod)
        if ref is None:
            if has_fin:
                self._enqueue_orphan(pod)
            return
        job = self._resolve_controller_ref(meta(pod).get("namespace"), ref)
        if job is None or jobspec.is_finished(job):
            if has_fin:
                self._enqueue_orphan(pod)
            return
        key = _key(job)
        self.expectations.deletion_observed(key)
        if final or not has_fin:
            self.finalizer_expectations.observed(key, pod_uid(pod))
        self._enqueue_batched(job)

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
            job = self._resolve_controller_ref(meta(pod).get("namespace"), ref)
            if job is not None and jobspec.managed_by_external(job):
                return
            if job is not None and not jobspec.is_finished(job):
                return
        await self._remove_pod_finalizer(pod)

    async def _remove_pod_finalizer(self, pod: Obj) -> None:
        """JSON patch guarded by ``test``; on a moved list fall back to GET + PUT."""
        patch = remove_finalizer_patch(pod)
        if patch is None:
            return
        m = meta(pod)
        try:
            await self.client.patch("pods", m["name"], patch, m.get("namespace"), patch_type=JSON_PATCH)
        except StatusError as exc:
            if exc.code == 404:
                return
            if exc.code not in (409, 422):
                raise
            await remove_finalizer(self.client, "pods", m.get("namespace"), m["name"], TRACKING_FINALIZER,
                                   uid=m.get("uid"))

    # ------------------------------------------------------------------ claiming
    async def _pods_for_job(self, job: Obj) -> list[Obj]:
        """Owned pods that still match the selector, plus matching orphans adopted now;
        owned pods that stopped matching are released (ClaimPods)."""
        m = job["metadata"]
        uid, ns = m["uid"], m.get("namespace")
        selector = from_label_selector_dict(jobspec.spec(job).get("selector"))
        deleting = bool(m.get("deletionTimestamp"))
        result: list[Obj] = []
        release: list[Obj] = []
        for pod in self.pods.by_index(IDX_BY_OWNER, uid):
            if selector.matches(meta(pod).get("labels") or {}):
                result.append(pod)
            elif not deleting:
                release.append(pod)
        adopt: list[Obj] = []
        if not deleting:
            adopt = [p for p in self.pods.by_index(IDX_ORPHANS, ns or "")
                     if not meta(p).get("deletionTimestamp")
                     and selector.matches(meta(p).get("labels") or {})]
        if adopt and await self._can_adopt(job):
            results = await asyncio.gather(*(self._patch_pod(p, adopt_patch(p, job)) for p in adopt))
            result.extend(r for r in results if r is not None)
        if release:
            await asyncio.gather(*(self._patch_pod(p, release_patch(p, uid)) for p in release))
        return result

    async def _can_adopt(self, job: Obj) -> bool:
        m = job["metadata"]
        try:
            fresh = await self.client.get("jobs", m["name"], m.get("namespace"))
        except StatusError as exc:
            if exc.code == 404:
                return False
            raise
        return fresh["metadata"].get("uid") == m["uid"] and not fresh["metadata"].get("deletionTimestamp")

    async def _patch_pod(self, pod: Obj, patch: list[Obj] | None) -> Obj | None:
        if not patch:
            return None
        m = meta(pod)
        try:
            return await self.client.patch("pods", m["name"], patch, m.get("namespace"), patch_type=JSON_PATCH)
        except StatusError as exc:
            if exc.code in (404, 409, 422):
                log.debug("pod %s/%s: claim patch skipped: %s", m.get("namespace"), m["name"], exc)
                return None
            raise

    # ------------------------------------------------------------------ syncJob
    async def sync_job(self, key: str) -> None:
        shared = self.job_view(key)
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
        now = self.clock.now()
        job = dict(shared)
        job["status"] = _copy(shared.get("status") or {})
        status = job["status"]
        tracking.uncounted(job)

        satisfied = self.expectations.satisfied(key)
        pods = await self._pods_for_job(job)
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

        ctx.finished_condition = jobspec.condition_true(job, COND_SUCCESS_CRITERIA_MET)
        if ctx.finished_condition is None:
            target = jobspec.condition_true(job, COND_FAILURE_TARGET)
            if target is not None:
                ctx.finished_condition = st.failed_for_target(target, now)
            else:
                msg = self._fail_job_message(job, pods)
                if msg is not None:
                    ctx.finished_condition = st.failure_condition(st.REASON_POD_FAILURE_POLICY, msg, now)
        if ctx.finished_condition is None:
            if ctx.failed > jobspec.backoff_limit(job) or self._past_backoff_limit_on_failure(job, pods):
                ctx.finished_condition = st.failure_condition(st.REASON_BACKOFF_LIMIT, st.MSG_BACKOFF_LIMIT, now)
            elif self._past_active_deadline(job, now):
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
            if ctx.finished_condition is None and jobspec.condition_true(job, COND_SUCCESS_CRITERIA_MET) is None:
                msg = success_policy.match(jobspec.success_policy(job), completions, ctx.succeeded_indexes)
                if msg is not None:
                    ctx.finished_condition = st.success_condition(st.REASON_SUCCESS_POLICY, msg, now)

        suspend_changed = False
        active_count = len(active)
        manage_err: Exception | None = None
        if ctx.finished_condition is not None:
            deleted_ready, deleted, manage_err = await self._delete_active_pods(job, active)
            if deleted != active_count or not satisfied:
                ctx.finished_condition = None
            active_count -= deleted
            ctx.terminating += deleted
            ctx.ready -= deleted_ready
        else:
            manage_called = False
            if satisfied and not job["metadata"].get("deletionTimestamp"):
                active_count, manage_err = await self._manage_job(key, job, ctx)
                manage_called = True
            completions = jobspec.completions(job)
            if completions is None:
                complete = ctx.succeeded > 0 and active_count == 0
            else:
                complete = ctx.succeeded >= completions and active_count == 0
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
        await self._track_and_remove_finalizers(key, ctx, needs_update)
        if manage_err is not None:
            raise manage_err

    # ------------------------------------------------------------------ finish checks
    @staticmethod
    def _fail_job_message(job: Obj, pods: list[Obj]) -> str | None:
        policy = jobspec.pod_failure_policy(job)
        if policy is None:
            return None
        for p in pods:
            if is_pod_failed(p, job):
                msg = pfp.match(policy, p).message
                if msg is not None:
                    return msg
        return None

    @staticmethod
    def _past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
        if jobspec.restart_policy(job) != "OnFailure":
            return False
        restarts = 0
        for p in pods:
            if phase(p) in ("Running", "Pending"):
                s = p.get("status") or {}
                for cs in (s.get("initContainerStatuses") or []) + (s.get("containerStatuses") or []):
                    restarts += int(cs.get("restartCount") or 0)
        limit = jobspec.backoff_limit(job)
        return restarts > 0 if limit == 0 else restarts >= limit

    @staticmethod
    def _past_active_deadline(job: Obj, now: float) -> bool:
        ads = jobspec.spec(job).get("activeDeadlineSeconds")
        start = parse_time(jobspec.status(job).get("startTime"))
        if ads is None or start is None or jobspec.is_suspended(job):
            return False
        return now - start >= ads

    # ------------------------------------------------------------------ manageJob
    def _active_pods_for_removal(self, job: Obj, active: list[Obj], rm_at_least: int) -> list[Obj]:
        if jobspec.is_indexed(job):
            rm, left = indexed.duplicated_for_removal(active, jobspec.completions(job) or 0)
        else:
            rm, left = [], active
        if len(rm) < rm_at_least:
            rm += sort_for_deletion(left)[:rm_at_least - len(rm)]
        return rm

    async def _manage_job(self, key: str, job: Obj, ctx: SyncContext) -> tuple[int, Exception | None]:
        active = len(ctx.active)
        if jobspec.is_suspended(job):
            to_delete = self._active_pods_for_removal(job, ctx.active, active)
            self.expectations.expect_deletions(key, len(to_delete))
            removed_ready, removed, err = await self._delete_job_pods(job, key, to_delete)
            ctx.terminating += removed
            ctx.ready -= removed_ready
            return active - removed, err

        parallelism = jobspec.parallelism(job)
        completions = jobspec.completions(job)
        if completions is None:
            want = active if ctx.succeeded > 0 else parallelism
        else:
            want = max(0, min(completions - ctx.succeeded, parallelism))
        rm_at_least = max(active - want, 0)
        to_delete = self._active_pods_for_removal(job, ctx.active, rm_at_least)[:MAX_POD_CREATE_DELETE_PER_SYNC]
        if to_delete:
            self.expectations.expect_deletions(key, len(to_delete))
            removed_ready, removed, err = await self._delete_job_pods(job, key, to_delete)
            ctx.terminating += removed
            ctx.ready -= removed_ready
            return active - removed, err

        terminating = ctx.terminating if jobspec.only_replace_failed_pods(job) else 0
        diff = want - terminating - active
        if diff <= 0:
            return active, None
        now = self.clock.now()
        if not jobspec.has_backoff_limit_per_index(job):
            remaining = self.backoff.remaining(ctx.new_backoff, now)
            if remaining > 0:
                self.queue.add_after(key, max(remaining, MIN_BACKOFF_REQUEUE))
                return active, None
        diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)
        indexes: list[int] | None = None
        if jobspec.is_indexed(job):
            indexes = indexed.first_pending_indexes(job, ctx.active, ctx.pods, ctx.succeeded_indexes,
                                                    ctx.failed_indexes, diff)
            if jobspec.has_backoff_limit_per_index(job):
                now_ix, min_wait = [], None
                for ix in indexes:
                    wait = self.backoff.remaining_for_index(ctx.delayed_deletion.get(ix), now)
                    if wait <= 0:
                        now_ix.append(ix)
                    elif min_wait is None or wait < min_wait:
                        min_wait = wait
                if not now_ix and min_wait is not None:
                    self.queue.add_after(key, max(min_wait, MIN_BACKOFF_REQUEUE))
                    return active, None
                indexes = now_ix
            diff = len(indexes)
            if diff == 0:
                return active, None
        return await self._create_pods(key, job, ctx, diff, indexes, active)

    async def _create_pods(self, key: str, job: Obj, ctx: SyncContext, diff: int, indexes: list[int] | None,
                           active: int) -> tuple[int, Exception | None]:
        self.expectations.expect_creations(key, diff)
        template = PodTemplate(job, indexed.add_index_env if indexes is not None else None)
        name = job["metadata"]["name"]
        ns = job["metadata"].get("namespace")
        bodies: list[Obj] = []
        for i in range(diff):
            if indexes is not None:
                ix = indexes[i]
                bodies.append(template.pod(
                    generate_name=indexed.generate_name(name, ix),
                    labels={indexed.INDEX_KEY: str(ix)},
                    annotations=indexed.index_annotations(job, ix, ctx.delayed_deletion.get(ix)),
                    hostname=f"{name}-{ix}"))
            else:
                bodies.append(template.pod())
        errors: list[Exception] = []
        active += diff
        pos = 0
        batch = min(diff, SLOW_START_INITIAL_BATCH)
        while pos < diff:
            results = await asyncio.gather(*(self._create_pod(job, ns, b) for b in bodies[pos:pos + batch]))
            pos += batch
            failed = [r for r in results if r is not None]
            for err in failed:
                self.expectations.creation_observed(key)
                active -= 1
                errors.append(err)
            if failed and pos < diff:
                skipped = diff - pos
                active -= skipped
                for _ in range(skipped):
                    self.expectations.creation_observed(key)
                break
            batch = min(2 * batch, diff - pos)
        return active, (errors[0] if errors else None)

    async def _create_pod(self, job: Obj, ns: str | None, body: Obj) -> Exception | None:
        try:
            created = await self.client.create("pods", body, ns)
        except StatusError as exc:
            if _namespace_terminating(exc):
                return None
            self.recorder.event(job, st.WARNING, st.EV_FAILED_CREATE, f"Error creating: {exc}")
            return exc
        self.recorder.event(job, st.NORMAL, st.EV_SUCCESSFUL_CREATE, f"Created pod: {created['metadata']['name']}")
        return None

    async def _delete_pod_api(self, job: Obj, pod: Obj) -> Exception | None:
        """DELETE; None when done or already gone."""
        m = meta(pod)
        try:
            await self.client.delete("pods", m["name"], m.get("namespace"))
        except StatusError as exc:
            if exc.code == 404:
                return None
            self.recorder.event(job, st.WARNING, st.EV_FAILED_DELETE, f"Error deleting: {exc}")
            return exc
        self.recorder.event(job, st.NORMAL, st.EV_SUCCESSFUL_DELETE, f"Deleted pod: {m['name']}")
        return None

    async def _delete_job_pods(self, job: Obj, key: str, pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """Strip the finalizer (so the pod is never counted) and delete."""

        async def one(pod: Obj) -> Exception | None:
            try:
                await self._remove_pod_finalizer(pod)
            except StatusError as exc:
                self.expectations.deletion_observed(key)
                return None if exc.code == 404 else exc
            err = await self._delete_pod_api(job, pod)
            if err is not None:
                self.expectations.deletion_observed(key)
            return err

        results = await asyncio.gather(*(one(p) for p in pods))
        errors = [r for r in results if r is not None]
        ready = sum(1 for p, r in zip(pods, results, strict=True) if r is None and is_ready(p))
        return ready, len(pods) - len(errors), (errors[0] if errors else None)

    async def _delete_active_pods(self, job: Obj, pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """Finishing job: plain DELETE, finalizers kept (the pods get counted)."""
        results = await asyncio.gather(*(self._delete_pod_api(job, p) for p in pods))
        errors = [r for r in results if r is not None]
        ready = sum(1 for p, r in zip(pods, results, strict=True) if r is None and is_ready(p))
        return ready, len(pods) - len(errors), (errors[0] if errors else None)

    # ------------------------------------------------------------------ tracking / status
    async def _track_and_remove_finalizers(self, key: str, ctx: SyncContext, needs_flush: bool) -> None:
        staging = tracking.stage(ctx, needs_flush)
        needs_flush = staging.needs_flush
        now = self.clock.now()
        fc = ctx.finished_condition
        if fc is not None and fc["type"] == COND_FAILURE_TARGET:
            ctx.job["status"].setdefault("conditions", []).append(fc)
            needs_flush = True
            ctx.finished_condition = st.failed_for_target(fc, now)
        elif fc is not None and fc["type"] == COND_SUCCESS_CRITERIA_MET:
            if jobspec.condition_true(ctx.job, COND_SUCCESS_CRITERIA_MET) is None:
                ctx.job["status"].setdefault("conditions", []).append(fc)
                needs_flush = True
            ctx.finished_condition = st.new_condition(COND_COMPLETE, "True", fc.get("reason", ""),
                                                      fc.get("message", ""), now)
        if needs_flush:
            await self._write_status(key, ctx)
            self.backoff.update(key, ctx.new_backoff)
            needs_flush = False

        removed, rm_err = await self._remove_finalizers(key, staging.to_remove)
        staging.uids_with_finalizer -= removed
        if tracking.clean_uncounted(ctx.job["status"], staging.uids_with_finalizer):
            needs_flush = True
        if rm_err is not None:
            if needs_flush:
                await self._write_status(key, ctx)
            raise rm_err
        finished = not staging.reached_max and self._enact_finished(ctx)
        if finished:
            needs_flush = True
        if needs_flush:
            await self._write_status(key, ctx)
            if finished:
                for type_, reason, message in st.finished_events(ctx.job, ctx.finished_condition):
                    self.recorder.event(ctx.job, type_, reason, message)
                self.backoff.remove(key)
        if staging.reached_max:
            self.queue.add(key)

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

    async def _write_status(self, key: str, ctx: SyncContext) -> None:
        job = ctx.job
        status = job["status"]
        if not status.get("completedIndexes"):
            status.pop("completedIndexes", None)
        body = {k: v for k, v in job.items() if k != "status"}
        body["status"] = status
        written = await self.client.update("jobs", body, job["metadata"].get("namespace"), subresource="status")
        self._written[key] = written
        # Keep working on our copy of the status, under the new resourceVersion.
        ctx.job = {**written, "status": status}

    async def _remove_finalizers(self, key: str, pods: list[Obj]) -> tuple[set[str], Exception | None]:
        if not pods:
            return set(), None
        uids = [pod_uid(p) for p in pods]
        self.finalizer_expectations.expect_removal(key, uids)

        async def one(pod: Obj) -> Exception | None:
            try:
                await self._remove_pod_finalizer(pod)
            except StatusError as exc:
                self.finalizer_expectations.observed(key, pod_uid(pod))
                return exc
            return None

        results = await asyncio.gather(*(one(p) for p in pods))
        removed = {u for u, r in zip(uids, results, strict=True) if r is None}
        errors = [r for r in results if r is not None]
        return removed, (errors[0] if errors else None)


async def run(ctx: Any) -> None:
    """Controller-manager entry point: run the Job controller until cancelled."""
    await JobController(ctx).run()
