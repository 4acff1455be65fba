"""Job conditions, reasons, messages and the events that go with them (upstream
job_controller.go; exact literals matter: clients and e2e tests compare them)."""

from __future__ import annotations

from typing import Any

from jobplane.api.meta import rfc3339
from jobplane.controllers.job import jobspec
from jobplane.controllers.job.jobspec import (
    COND_COMPLETE,
    COND_FAILED,
    COND_FAILURE_TARGET,
    COND_SUCCESS_CRITERIA_MET,
    COND_SUSPENDED,
)

Obj = dict[str, Any]

COMPONENT = "job-controller"

REASON_POD_FAILURE_POLICY = "PodFailurePolicy"
REASON_BACKOFF_LIMIT = "BackoffLimitExceeded"
REASON_DEADLINE = "DeadlineExceeded"
REASON_MAX_FAILED_INDEXES = "MaxFailedIndexesExceeded"
REASON_FAILED_INDEXES = "FailedIndexes"
REASON_SUCCESS_POLICY = "SuccessPolicy"
REASON_COMPLETIONS_REACHED = "CompletionsReached"

MSG_BACKOFF_LIMIT = "Job has reached the specified backoff limit"
MSG_DEADLINE = "Job was active longer than specified deadline"
MSG_MAX_FAILED_INDEXES = "Job has exceeded the specified maximal number of failed indexes"
MSG_FAILED_INDEXES = "Job has failed indexes"
MSG_COMPLETIONS_REACHED = "Reached expected number of succeeded pods"

# events
NORMAL = "Normal"
WARNING = "Warning"
EV_SUCCESSFUL_CREATE = "SuccessfulCreate"
EV_FAILED_CREATE = "FailedCreate"
EV_SUCCESSFUL_DELETE = "SuccessfulDelete"
EV_FAILED_DELETE = "FailedDelete"
EV_COMPLETED = "Completed"
EV_TOO_MANY_SUCCEEDED = "TooManySucceededPods"
EV_SUSPENDED = "Suspended"
EV_RESUMED = "Resumed"
EV_UNKNOWN_COMPLETION_MODE = "UnknownCompletionMode"
MSG_UNKNOWN_COMPLETION_MODE = "Skipped Job sync because completion mode is unknown"


def new_condition(ctype: str, status: str, reason: str, message: str, now: float) -> Obj:
    ts = rfc3339(now)
    return {"type": ctype, "status": status, "lastProbeTime": ts, "lastTransitionTime": ts,
            "reason": reason, "message": message}


def failure_condition(reason: str, message: str, now: float) -> Obj:
    return new_condition(COND_FAILURE_TARGET, "True", reason, message, now)


def success_condition(reason: str, message: str, now: float) -> Obj:
    return new_condition(COND_SUCCESS_CRITERIA_MET, "True", reason, message, now)


def failed_for_target(target: Obj, now: float) -> Obj:
    return new_condition(COND_FAILED, "True", target.get("reason", ""), target.get("message", ""), now)


def ensure_condition(conditions: list[Obj], ctype: str, status: str, reason: str, message: str,
                     now: float) -> bool:
    """Set/replace the condition in place; a False condition is never added anew.
    Returns whether anything changed (upstream ``ensureJobConditionStatus``)."""
    for i, c in enumerate(conditions):
        if c.get("type") == ctype:
            if c.get("status") != status or c.get("reason") != reason or c.get("message") != message:
                conditions[i] = new_condition(ctype, status, reason, message, now)
                return True
            return False
    if status != "False":
        conditions.append(new_condition(ctype, status, reason, message, now))
        return True
    return False


def ensure_suspended(conditions: list[Obj], suspended: bool, now: float) -> bool:
    if suspended:
        return ensure_condition(conditions, COND_SUSPENDED, "True", "JobSuspended", "Job suspended", now)
    return ensure_condition(conditions, COND_SUSPENDED, "False", "JobResumed", "Job resumed", now)


def is_success(cond: Obj | None) -> bool:
    return cond is not None and cond.get("type") in (COND_SUCCESS_CRITERIA_MET, COND_COMPLETE)


def finished_events(job: Obj, cond: Obj) -> list[tuple[str, str, str]]:
    """Events recorded with the terminal status write."""
    if cond["type"] == COND_COMPLETE:
        events = [(NORMAL, EV_COMPLETED, "Job completed")]
        completions = jobspec.completions(job)
        if completions is not None and int(jobspec.status(job).get("succeeded") or 0) > completions:
            events.append((WARNING, EV_TOO_MANY_SUCCEEDED,
                           "Too many succeeded pods running after completion count reached"))
        return events
    return [(WARNING, cond.get("reason", ""), cond.get("message", ""))]
