"""Pure checks that decide a Job has failed (upstream job_controller.go: getFailJobMessage,
pastBackoffLimitOnFailure, pastActiveDeadline).

Why a module of its own: these read only the Job and its pods, so they are tested and
reasoned about apart from the sync that calls them.
"""

from __future__ import annotations

from typing import Any

from jobplane.api.meta import parse_time
from jobplane.api.pods import PENDING, RUNNING, phase
from jobplane.controllers.job import jobspec
from jobplane.controllers.job import pod_failure_policy as pfp
from jobplane.controllers.job.pods import is_pod_failed

Obj = dict[str, Any]


def fail_job_message(job: Obj, pods: list[Obj]) -> str | None:
    """The message of the first FailJob rule of the pod failure policy a failed pod matches."""
    policy = jobspec.pod_failure_policy(job)
    if policy is None:
        return None
    for p in pods:
        if is_pod_failed(p, job):
            msg = pfp.match(policy, p).message
            if msg is not None:
                return msg
    return None


def past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
    """restartPolicy OnFailure: container restarts of live pods count against backoffLimit."""
    if jobspec.restart_policy(job) != "OnFailure":
        return False
    restarts = 0
    for p in pods:
        if phase(p) in (RUNNING, PENDING):
            s = p.get("status") or {}
            for cs in (s.get("initContainerStatuses") or []) + (s.get("containerStatuses") or []):
                restarts += int(cs.get("restartCount") or 0)
    limit = jobspec.backoff_limit(job)
    return restarts > 0 if limit == 0 else restarts >= limit


def past_active_deadline(job: Obj, now: float) -> bool:
    ads = jobspec.spec(job).get("activeDeadlineSeconds")
    start = parse_time(jobspec.status(job).get("startTime"))
    if ads is None or start is None or jobspec.is_suspended(job):
        return False
    return bool(now - start >= ads)
