"""Informer event handlers of the Job controller (upstream addJob/updateJob/deleteJob and
addPod/updatePod/deletePod).

Why a module of its own: turning watch events into work — which Job key to queue, now or
after the batch period, which pods go to the orphan queue, and which creations, deletions
and finalizer removals the event proves happened (expectations). Nothing here calls the
API.
"""

from __future__ import annotations

from typing import Any

from jobplane.api.meta import controller_ref, parse_time
from jobplane.api.pods import is_terminal
from jobplane.client.informer import Informer
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.job import jobspec
from jobplane.controllers.job.claim import IDX_BY_OWNER
from jobplane.controllers.job.pods import (
    Expectations,
    FinalizerExpectations,
    has_tracking_finalizer,
    meta,
    pod_uid,
)
from jobplane.controllers.job.view import JobView, queue_key

Obj = dict[str, Any]


class JobEventHandlers:
    """Job and pod informer handlers feeding the job queue and the orphan-pod queue."""

    def __init__(self, *, view: JobView, pods: Informer, queue: WorkQueue, orphan_queue: WorkQueue, clock: Clock,
                 batch_period: float, expectations: Expectations,
                 finalizer_expectations: FinalizerExpectations, metrics: Any = None) -> None:
        self.metrics = metrics
        self.view = view
        self.pods = pods
        self.queue = queue
        self.orphan_queue = orphan_queue
        self.clock = clock
        self.batch_period = batch_period
        self.expectations = expectations
        self.finalizer_expectations = finalizer_expectations

    def register(self) -> None:
        """Subscribe to the job and pod informers."""
        self.view.jobs.add_handler(self.add_job, self.update_job, self.delete_job)
        self.pods.add_handler(self.add_pod, self.update_pod, lambda pod: self.delete_pod(pod, final=True))

    # ------------------------------------------------------------------ enqueueing
    def enqueue(self, job: Obj, delay: float = 0.0) -> None:
        if delay <= 0:
            self.queue.add(queue_key(job))
        else:
            self.queue.add_after(queue_key(job), delay)

    def _enqueue_batched(self, job: Obj) -> None:
        self.enqueue(job, self.batch_period)

    def _enqueue_orphan(self, pod: Obj) -> None:
        self.orphan_queue.add(queue_key(pod))

    def _cleanup_pod_finalizers(self, job: Obj) -> None:
        for pod in self.pods.by_index(IDX_BY_OWNER, jobspec.uid(job)):
            if has_tracking_finalizer(pod):
                self._enqueue_orphan(pod)

    # ------------------------------------------------------------------ job handlers
    def add_job(self, job: Obj) -> None:
        external = jobspec.managed_by_external(job)
        if external:
            if self.metrics is not None:
                self.metrics.by_external_controller(external).inc()
            return
        self.enqueue(job)
        if jobspec.is_finished(job):
            self._cleanup_pod_finalizers(job)

    def update_job(self, old: Obj, cur: Obj) -> None:
        if jobspec.managed_by_external(cur):
            return
        if old["metadata"].get("uid") != cur["metadata"].get("uid"):
            self.delete_job(old)
            self.add_job(cur)
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

    def delete_job(self, job: Obj) -> None:
        key = queue_key(job)
        self.queue.add(key)
        self.view.forget(key)
        if not jobspec.managed_by_external(job):
            self._cleanup_pod_finalizers(job)

    # ------------------------------------------------------------------ pod handlers
    def _record_tracked_terminated(self, old: Obj | None, cur: Obj | None) -> None:
        """job_controller_terminated_pods_tracking_finalizer_total: a terminated pod that
        carries the tracking finalizer appeared ("add") or stopped being one ("delete")."""
        if self.metrics is None:
            return
        was = old is not None and _terminated_with_finalizer(old)
        now = cur is not None and _terminated_with_finalizer(cur)
        if now and not was:
            self.metrics.tracking_finalizer("add").inc()
        elif was and not now:
            self.metrics.tracking_finalizer("delete").inc()

    def add_pod(self, pod: Obj) -> None:
        self._record_tracked_terminated(None, pod)
        if meta(pod).get("deletionTimestamp"):
            self.delete_pod(pod, final=False)
            return
        ref = controller_ref(pod)
        if ref is not None:
            job = self.view.resolve_controller_ref(meta(pod).get("namespace") or "", ref)
            if job is None:
                if has_tracking_finalizer(pod):
                    self._enqueue_orphan(pod)
                return
            self.expectations.creation_observed(queue_key(job))
            self._enqueue_batched(job)
            return
        if has_tracking_finalizer(pod):
            self._enqueue_orphan(pod)
        for job in self.view.matching(pod):
            self._enqueue_batched(job)

    def update_pod(self, old: Obj, cur: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(cur).get("resourceVersion"):
            return
        self._record_tracked_terminated(old, cur)
        if meta(cur).get("deletionTimestamp"):
            self.delete_pod(cur, final=False)
        finalizer_removed = not has_tracking_finalizer(cur)
        ns = meta(cur).get("namespace") or ""
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            job = self.view.resolve_controller_ref(ns, old_ref)
            if job is not None:
                if finalizer_removed:
                    self.finalizer_expectations.observed(queue_key(job), pod_uid(cur))
                self._enqueue_batched(job)
        if cur_ref is not None:
            job = self.view.resolve_controller_ref(ns, cur_ref)
            if job is None:
                if has_tracking_finalizer(cur):
                    self._enqueue_orphan(cur)
                return
            if finalizer_removed:
                self.finalizer_expectations.observed(queue_key(job), pod_uid(cur))
            self._enqueue_batched(job)
            return
        if has_tracking_finalizer(cur):
            self._enqueue_orphan(cur)
        if ref_changed or (meta(cur).get("labels") != meta(old).get("labels")):
            for job in self.view.matching(cur):
                self._enqueue_batched(job)

    def delete_pod(self, pod: Obj, final: bool) -> None:
        if final:
            self._record_tracked_terminated(pod, None)
        ref = controller_ref(pod)
        has_fin = has_tracking_finalizer(pod)
        if ref is None:
            if has_fin:
                self._enqueue_orphan(pod)
            return
        job = self.view.resolve_controller_ref(meta(pod).get("namespace") or "", ref)
        if job is None or jobspec.is_finished(job):
            if has_fin:
                self._enqueue_orphan(pod)
            return
        key = queue_key(job)
        self.expectations.deletion_observed(key)
        if final or not has_fin:
            self.finalizer_expectations.observed(key, pod_uid(pod))
        self._enqueue_batched(job)


def _terminated_with_finalizer(pod: Obj) -> bool:
    return is_terminal(pod) and has_tracking_finalizer(pod)
