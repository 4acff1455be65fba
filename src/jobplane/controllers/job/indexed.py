"""Indexed completion mode: completion indexes on pods, pending-index choice, duplicate
removal, index env/hostname/generateName, per-index failure counts and failed indexes
(upstream indexed_job_utils.go)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jobplane.api.intervals import Intervals, parse
from jobplane.api.pods import SUCCEEDED, phase
from jobplane.controllers.job import jobspec
from jobplane.controllers.job import pod_failure_policy as pfp
from jobplane.controllers.job.pods import (
    MAX_GENERATED_NAME,
    finished_time,
    has_tracking_finalizer,
    is_pod_failed,
    is_terminating,
    meta,
    sort_for_deletion,
)

Obj = dict[str, Any]

UNKNOWN = -1
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-ignored-failure-count"
ENV_NAME = "JOB_COMPLETION_INDEX"

__all__ = ["Intervals", "parse"]


def completion_index(pod: Obj) -> int:
    """The index from the annotation only; missing, non-numeric or negative -> UNKNOWN."""
    value = (meta(pod).get("annotations") or {}).get(INDEX_KEY)
    if value is None:
        return UNKNOWN
    try:
        ix = int(value)
    except ValueError:
        return UNKNOWN
    return ix if ix >= 0 else UNKNOWN


def valid_index(pod: Obj, completions: int) -> int:
    ix = completion_index(pod)
    return ix if ix != UNKNOWN and ix < completions else UNKNOWN


def generate_name(job_name: str, index: int) -> str:
    suffix = f"-{index}-"
    prefix = job_name + suffix
    if len(prefix) > MAX_GENERATED_NAME:
        prefix = prefix[:MAX_GENERATED_NAME - len(suffix)] + suffix
    return prefix


def add_index_env(pod_spec: Obj) -> Obj:
    """Append JOB_COMPLETION_INDEX (fieldRef to the index label) to every container and
    init container that does not define it."""
    for key in ("initContainers", "containers"):
        for c in pod_spec.get(key) or ():
            env = c.setdefault("env", [])
            if any(e.get("name") == ENV_NAME for e in env):
                continue
            env.append({"name": ENV_NAME, "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.labels['{INDEX_KEY}']"}}})
    return pod_spec


def _int_annotation(pod: Obj, key: str) -> int:
    value = (meta(pod).get("annotations") or {}).get(key)
    try:
        n = int(value) if value is not None else 0
    except ValueError:
        return 0
    return n if 0 <= n <= 2147483647 else 0


def failure_count(pod: Obj) -> int:
    return _int_annotation(pod, FAILURE_COUNT_KEY)


def absolute_failure_count(pod: Obj) -> int:
    return _int_annotation(pod, FAILURE_COUNT_KEY) + _int_annotation(pod, IGNORED_FAILURE_COUNT_KEY)


def new_failure_counts(job: Obj, replaced: Obj | None) -> tuple[int, int]:
    """(failure-count, ignored-failure-count) for the pod replacing ``replaced``."""
    if replaced is None:
        return 0, 0
    count = _int_annotation(replaced, FAILURE_COUNT_KEY)
    ignored = _int_annotation(replaced, IGNORED_FAILURE_COUNT_KEY)
    policy = jobspec.pod_failure_policy(job)
    if policy is not None and not pfp.match(policy, replaced).count_failed:
        ignored += 1
    else:
        count += 1
    return count, ignored


def index_annotations(job: Obj, index: int, replaced: Obj | None) -> dict[str, str]:
    ann = {INDEX_KEY: str(index)}
    if jobspec.has_backoff_limit_per_index(job):
        count, ignored = new_failure_counts(job, replaced)
        ann[FAILURE_COUNT_KEY] = str(count)
        if ignored > 0:
            ann[IGNORED_FAILURE_COUNT_KEY] = str(ignored)
    return ann


def indexes_of(pods: Iterable[Obj]) -> set[int]:
    return {ix for ix in (completion_index(p) for p in pods) if ix != UNKNOWN}


def succeeded_indexes(job: Obj, pods: Iterable[Obj]) -> tuple[Intervals, Intervals]:
    """(previous from status, previous + newly succeeded pods that still carry the finalizer)."""
    completions = jobspec.completions(job) or 0
    prev = parse(jobspec.status(job).get("completedIndexes"), completions)
    new = set()
    for p in pods:
        if phase(p) == SUCCEEDED and has_tracking_finalizer(p):
            ix = valid_index(p, completions)
            if ix != UNKNOWN:
                new.add(ix)
    return prev, prev.with_indexes(new)


def is_index_failed(job: Obj, pod: Obj) -> bool:
    counted = False
    if is_pod_failed(pod, job):
        policy = jobspec.pod_failure_policy(job)
        if policy is not None:
            m = pfp.match(policy, pod)
            if m.action == pfp.FAIL_INDEX:
                return True
            counted = m.count_failed
        else:
            counted = True
    return counted and failure_count(pod) >= jobspec.backoff_limit_per_index(job)


def failed_indexes(job: Obj, pods: Iterable[Obj]) -> Intervals:
    completions = jobspec.completions(job) or 0
    prev = parse(jobspec.status(job).get("failedIndexes"), completions)
    new = set()
    for p in pods:
        if not has_tracking_finalizer(p):
            continue
        ix = valid_index(p, completions)
        if ix != UNKNOWN and is_index_failed(job, p):
            new.add(ix)
    return prev.with_indexes(new)


def first_pending_indexes(job: Obj, active: list[Obj], pods: list[Obj], succeeded: Intervals,
                          failed: Intervals | None, count: int) -> list[int]:
    """The ``count`` lowest indexes that are not active, succeeded, failed or (policy
    Failed) terminating."""
    if count <= 0:
        return []
    completions = jobspec.completions(job) or 0
    busy = indexes_of(active)
    if jobspec.only_replace_failed_pods(job):
        busy |= indexes_of(p for p in pods if is_terminating(p))
    non_pending = succeeded.with_indexes(busy)
    if failed is not None:
        non_pending = non_pending.merge(failed)
    result: list[int] = []
    candidate = 0
    for first, last in non_pending:
        while candidate < completions and len(result) < count and candidate < first:
            result.append(candidate)
            candidate += 1
        if candidate < last + 1:
            candidate = last + 1
    while candidate < completions and len(result) < count:
        result.append(candidate)
        candidate += 1
    return result


def duplicated_for_removal(pods: list[Obj], completions: int) -> tuple[list[Obj], list[Obj]]:
    """(remove, keep): all pods without a valid index or with index >= completions, and
    for each repeated index all but the best pod in ActivePods order."""
    by_index: dict[int, list[Obj]] = {}
    rm: list[Obj] = []
    for p in pods:
        ix = completion_index(p)
        if ix == UNKNOWN or ix >= completions:
            rm.append(p)
        else:
            by_index.setdefault(ix, []).append(p)
    keep: list[Obj] = []
    for ix in sorted(by_index):
        group = by_index[ix]
        if len(group) == 1:
            keep.append(group[0])
        else:
            ordered = sort_for_deletion(group)
            rm.extend(ordered[:-1])
            keep.append(ordered[-1])
    return rm, keep


def pods_with_delayed_deletion(job: Obj, pods: list[Obj], active: list[Obj], expected_rm: Any,
                               succeeded: Intervals, failed: Intervals) -> dict[int, Obj]:
    """Per pending index, the latest failed pod whose finalizer is kept until its
    replacement exists (so the replacement can inherit the failure count)."""
    completions = jobspec.completions(job) or 0
    active_ix = indexes_of(active)
    result: dict[int, Obj] = {}
    for p in pods:
        if not has_tracking_finalizer(p) or meta(p).get("uid") in expected_rm:
            continue
        if not is_pod_failed(p, job):
            continue
        ix = valid_index(p, completions)
        if ix == UNKNOWN or succeeded.has(ix) or failed.has(ix) or ix in active_ix:
            continue
        last = result.get(ix)
        if last is None or (absolute_failure_count(last) <= absolute_failure_count(p)
                            and not finished_time(p) < finished_time(last)):
            result[ix] = p
    return result
