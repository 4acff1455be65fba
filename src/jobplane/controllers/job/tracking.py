"""Finalizer-based pod accounting (upstream ``trackJobStatusAndRemoveFinalizers``), pure
part: which finished pods are new, which UIDs get staged in
``status.uncountedTerminatedPods``, and when staged UIDs move into the counters.

Invariant: a pod's outcome is counted exactly once. A finished pod carrying the tracking
finalizer is first staged (its UID written to uncountedTerminatedPods, or for Indexed
successes its index to completedIndexes), then its finalizer is removed, then its UID
moves from uncounted to succeeded/failed. A crash between any two steps is recovered by
the next sync from what the status and the pods say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobplane.api.intervals import Intervals
from jobplane.api.pods import SUCCEEDED, phase
from jobplane.controllers.job import indexed, jobspec
from jobplane.controllers.job import pod_failure_policy as pfp
from jobplane.controllers.job.backoff import EMPTY, BackoffRecord
from jobplane.controllers.job.pods import has_tracking_finalizer, is_pod_failed, pod_uid
from jobplane.controllers.job.status import is_success

Obj = dict[str, Any]

MAX_UNCOUNTED_PODS = 500


@dataclass
class SyncContext:
    """Everything one sync of one job works on; ``job`` is a private working copy."""

    job: Obj
    pods: list[Obj]
    active: list[Obj]
    expected_rm: Any  # set of pod UIDs awaiting finalizer removal
    uncounted_succeeded: set[str] = field(default_factory=set)
    uncounted_failed: set[str] = field(default_factory=set)
    succeeded: int = 0
    failed: int = 0
    ready: int = 0
    terminating: int = 0
    finished_condition: Obj | None = None
    prev_succeeded_indexes: Intervals = field(default_factory=Intervals)
    succeeded_indexes: Intervals = field(default_factory=Intervals)
    failed_indexes: Intervals | None = None
    delayed_deletion: dict[int, Obj] = field(default_factory=dict)
    new_backoff: BackoffRecord = EMPTY


def uncounted(job: Obj) -> Obj:
    status = job.setdefault("status", {})
    u: Obj | None = status.get("uncountedTerminatedPods")
    if u is None:
        u = status["uncountedTerminatedPods"] = {}
    return u


def _valid_for_counting(ctx: SyncContext, pod: Obj, staged: set[str]) -> bool:
    uid = pod_uid(pod)
    if not has_tracking_finalizer(pod) or uid in staged or uid in ctx.expected_rm:
        return False
    if jobspec.is_indexed(ctx.job):
        return indexed.valid_index(pod, jobspec.completions(ctx.job) or 0) != indexed.UNKNOWN
    return True


def new_finished_pods(ctx: SyncContext) -> tuple[list[Obj], list[Obj]]:
    """Finished pods not yet accounted for (upstream ``getNewFinishedPods``)."""
    succeeded = [p for p in ctx.pods
                 if phase(p) == SUCCEEDED and _valid_for_counting(ctx, p, ctx.uncounted_succeeded)]
    failed = [p for p in ctx.pods
              if is_pod_failed(p, ctx.job) and _valid_for_counting(ctx, p, ctx.uncounted_failed)]
    return succeeded, failed


def non_ignored_failed(job: Obj, failed: list[Obj]) -> int:
    policy = jobspec.pod_failure_policy(job)
    if policy is None:
        return len(failed)
    return sum(1 for p in failed if pfp.match(policy, p).count_failed)


def clean_uncounted(status: Obj, uids_with_finalizer: set[str]) -> bool:
    """Move staged UIDs whose pods no longer carry the finalizer into the counters."""
    u = status.get("uncountedTerminatedPods") or {}
    changed = False
    for field_name in ("succeeded", "failed"):
        staged = u.get(field_name) or []
        keep = [uid for uid in staged if uid in uids_with_finalizer]
        if len(keep) != len(staged):
            status[field_name] = int(status.get(field_name) or 0) + len(staged) - len(keep)
            changed = True
            if keep:
                u[field_name] = keep
            else:
                u.pop(field_name, None)
    return changed


def can_remove_finalizer(ctx: SyncContext, pod: Obj, considered_failed: bool) -> bool:
    if ctx.job["metadata"].get("deletionTimestamp") or ctx.finished_condition is not None \
            or phase(pod) == SUCCEEDED:
        return True
    if not considered_failed:
        return False
    if jobspec.has_backoff_limit_per_index(ctx.job):
        ix = indexed.completion_index(pod)
        delayed = ctx.delayed_deletion.get(ix)
        if delayed is not None and pod_uid(delayed) == pod_uid(pod):
            return False
    return True


@dataclass
class Staging:
    to_remove: list[Obj]
    uids_with_finalizer: set[str]
    needs_flush: bool
    reached_max: bool
    ignored: int = 0
    policy_actions: list[str] = field(default_factory=list)  # matched rule per staged failure (metrics)


def stage(ctx: SyncContext, needs_flush: bool) -> Staging:
    """Steps 1-3 of the tracking loop on ``ctx.job.status``: count pods that lost their
    finalizer, stage newly finished pods, recompute the index strings."""
    job = ctx.job
    status = job["status"]
    is_idx = jobspec.is_indexed(job)
    completions = jobspec.completions(job) or 0
    policy = jobspec.pod_failure_policy(job)
    pods = ctx.pods
    if is_idx:
        pods = sorted(pods, key=indexed.completion_index)
    uids_with_finalizer = {pod_uid(p) for p in pods
                           if has_tracking_finalizer(p) and pod_uid(p) not in ctx.expected_rm}
    if clean_uncounted(status, uids_with_finalizer):
        needs_flush = True
    u = uncounted(job)
    staged_succeeded: list[str] = list(u.get("succeeded") or [])
    staged_failed: list[str] = list(u.get("failed") or [])
    new_succeeded_indexes: list[int] = []
    to_remove: list[Obj] = []
    reached_max = False
    ignored = 0
    policy_actions: list[str] = []
    failing = ctx.finished_condition is not None and not is_success(ctx.finished_condition)
    for pod in pods:
        uid = pod_uid(pod)
        if uid not in uids_with_finalizer:
            continue
        considered_failed = is_pod_failed(pod, job)
        if not can_remove_finalizer(ctx, pod, considered_failed):
            continue
        to_remove.append(pod)
        if phase(pod) == SUCCEEDED and uid not in ctx.uncounted_failed:
            if is_idx:
                ix = indexed.completion_index(pod)
                if ix != indexed.UNKNOWN and ix < completions and not ctx.prev_succeeded_indexes.has(ix):
                    new_succeeded_indexes.append(ix)
                    needs_flush = True
            elif uid not in ctx.uncounted_succeeded:
                staged_succeeded.append(uid)
                ctx.uncounted_succeeded.add(uid)
                needs_flush = True
        elif considered_failed or failing:
            ix = indexed.completion_index(pod)
            if uid not in ctx.uncounted_failed and (not is_idx or (ix != indexed.UNKNOWN and ix < completions)):
                matched = pfp.match(policy, pod) if policy is not None else None
                if matched is not None and matched.action is not None:
                    policy_actions.append(matched.action)
                if matched is None or matched.count_failed:
                    staged_failed.append(uid)
                    ctx.uncounted_failed.add(uid)
                    needs_flush = True
                else:
                    ignored += 1
        if len(new_succeeded_indexes) + len(staged_succeeded) + len(staged_failed) >= MAX_UNCOUNTED_PODS:
            reached_max = True
            break
    if staged_succeeded:
        u["succeeded"] = staged_succeeded
    if staged_failed:
        u["failed"] = staged_failed
    if is_idx:
        ctx.succeeded_indexes = ctx.succeeded_indexes.with_indexes(new_succeeded_indexes)
        text = str(ctx.succeeded_indexes)
        if text != (status.get("completedIndexes") or ""):
            needs_flush = True
        status["succeeded"] = ctx.succeeded_indexes.total()
        status["completedIndexes"] = text
        failed_text = str(ctx.failed_indexes) if ctx.failed_indexes is not None else None
        if failed_text != status.get("failedIndexes"):
            if failed_text is None:
                status.pop("failedIndexes", None)
            else:
                status["failedIndexes"] = failed_text
            needs_flush = True
    return Staging(to_remove, uids_with_finalizer, needs_flush, reached_max, ignored, policy_actions)
