"""manageJob (upstream job_controller.go): how many pods a running Job should have, and
which to create or delete to get there.

Why a module of its own: the arithmetic of parallelism, completions, suspension,
terminating pods, pod back-off and per-index back-off is the heart of the controller;
it decides, and PodControl performs the writes.
"""

from __future__ import annotations

from typing import Any

from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.job import indexed, jobspec
from jobplane.controllers.job.backoff import BackoffStore
from jobplane.controllers.job.pod_control import PodControl
from jobplane.controllers.job.pods import PodTemplate, sort_for_deletion
from jobplane.controllers.job.tracking import SyncContext

Obj = dict[str, Any]

MAX_POD_CREATE_DELETE_PER_SYNC = 500
MIN_BACKOFF_REQUEUE = 1.0


def active_pods_for_removal(job: Obj, active: list[Obj], rm_at_least: int) -> list[Obj]:
    """Duplicated indexes first (Indexed jobs), then the cheapest pods to lose."""
    if jobspec.is_indexed(job):
        rm, left = indexed.duplicated_for_removal(active, jobspec.completions(job) or 0)
    else:
        rm, left = [], active
    if len(rm) < rm_at_least:
        rm += sort_for_deletion(left)[:rm_at_least - len(rm)]
    return rm


def pod_bodies(job: Obj, ctx: SyncContext, diff: int, indexes: list[int] | None) -> list[Obj]:
    """The ``diff`` pods to create from the template, one per index for Indexed jobs."""
    template = PodTemplate(job, indexed.add_index_env if indexes is not None else None)
    name = job["metadata"]["name"]
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
    return bodies


class PodManager:
    """Runs manageJob for one sync: returns the new active count and the first error."""

    def __init__(self, *, clock: Clock, queue: WorkQueue, backoff: BackoffStore, pod_control: PodControl) -> None:
        self.clock = clock
        self.queue = queue
        self.backoff = backoff
        self.pod_control = pod_control

    async def _delete(self, key: str, job: Obj, ctx: SyncContext, to_delete: list[Obj],
                      active: int) -> tuple[int, Exception | None]:
        removed_ready, removed, err = await self.pod_control.delete_job_pods(job, key, to_delete)
        ctx.terminating += removed
        ctx.ready -= removed_ready
        return active - removed, err

    async def manage_job(self, key: str, job: Obj, ctx: SyncContext) -> tuple[int, Exception | None]:
        active = len(ctx.active)
        if jobspec.is_suspended(job):
            return await self._delete(key, job, ctx, active_pods_for_removal(job, ctx.active, active), active)

        parallelism = jobspec.parallelism(job)
        completions = jobspec.completions(job)
        if completions is None:
            want = active if ctx.succeeded > 0 else parallelism
        else:
            want = max(0, min(completions - ctx.succeeded, parallelism))
        rm_at_least = max(active - want, 0)
        to_delete = active_pods_for_removal(job, ctx.active, rm_at_least)[:MAX_POD_CREATE_DELETE_PER_SYNC]
        if to_delete:
            return await self._delete(key, job, ctx, to_delete, active)

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
        created, err = await self.pod_control.create_pods(key, job, pod_bodies(job, ctx, diff, indexes))
        return active + created, err
