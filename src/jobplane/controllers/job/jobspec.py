"""Read-only accessors on a batch/v1 Job dict (defaults applied as the apiserver would),
so the rest of the controller never repeats ``.get(...) or`` chains."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

JOB_CONTROLLER_NAME = "kubernetes.io/job-controller"
INDEXED = "Indexed"
NON_INDEXED = "NonIndexed"

COND_SUSPENDED = "Suspended"
COND_COMPLETE = "Complete"
COND_FAILED = "Failed"
COND_FAILURE_TARGET = "FailureTarget"
COND_SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"


def spec(job: Obj) -> Obj:
    return job.get("spec") or {}


def status(job: Obj) -> Obj:
    return job.get("status") or {}


def is_indexed(job: Obj) -> bool:
    return spec(job).get("completionMode") == INDEXED


def completion_mode(job: Obj) -> str:
    return spec(job).get("completionMode") or NON_INDEXED


def completions(job: Obj) -> int | None:
    return spec(job).get("completions")


def parallelism(job: Obj) -> int:
    value = spec(job).get("parallelism")
    return 1 if value is None else int(value)


def backoff_limit(job: Obj) -> int:
    value = spec(job).get("backoffLimit")
    if value is None:
        return 2147483647 if has_backoff_limit_per_index(job) else 6
    return int(value)


def has_backoff_limit_per_index(job: Obj) -> bool:
    return is_indexed(job) and spec(job).get("backoffLimitPerIndex") is not None


def backoff_limit_per_index(job: Obj) -> int:
    return int(spec(job).get("backoffLimitPerIndex") or 0)


def max_failed_indexes(job: Obj) -> int | None:
    return spec(job).get("maxFailedIndexes")


def pod_failure_policy(job: Obj) -> Obj | None:
    return spec(job).get("podFailurePolicy")


def success_policy(job: Obj) -> Obj | None:
    return spec(job).get("successPolicy")


def is_suspended(job: Obj) -> bool:
    return bool(spec(job).get("suspend"))


def restart_policy(job: Obj) -> str:
    return ((spec(job).get("template") or {}).get("spec") or {}).get("restartPolicy") or ""


def only_replace_failed_pods(job: Obj) -> bool:
    """podReplacementPolicy Failed (forced by a podFailurePolicy): terminating pods are
    neither counted as failed nor replaced until they finish."""
    s = spec(job)
    return s.get("podReplacementPolicy") == "Failed" or s.get("podFailurePolicy") is not None


def managed_by_external(job: Obj) -> str | None:
    value = spec(job).get("managedBy")
    if value and value != JOB_CONTROLLER_NAME:
        return str(value)
    return None


def uid(job: Obj) -> str:
    return str(job["metadata"]["uid"])


def find_condition(job: Obj, ctype: str) -> Obj | None:
    conditions: list[Obj] = status(job).get("conditions") or []
    for c in conditions:
        if c.get("type") == ctype:
            return c
    return None


def true_condition(job: Obj, ctype: str) -> Obj | None:
    """The condition of type ``ctype`` when its status is True (``api.meta.condition_true`` answers yes/no on a status)."""
    c = find_condition(job, ctype)
    return c if c is not None and c.get("status") == "True" else None


def is_finished(job: Obj) -> bool:
    """Complete=True or Failed=True (upstream ``util.IsJobFinished``)."""
    return bool(true_condition(job, COND_COMPLETE) or true_condition(job, COND_FAILED))
