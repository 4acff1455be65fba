"""spec.podFailurePolicy matching (upstream pod_failure_policy.go): the first matching
rule decides whether a failed pod fails the job, fails its index, is ignored or counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

FAIL_JOB = "FailJob"
FAIL_INDEX = "FailIndex"
IGNORE = "Ignore"
COUNT = "Count"


@dataclass(frozen=True)
class Match:
    """``message`` is set for FailJob; ``count_failed`` is False only for Ignore;
    ``action`` is None when no rule matched."""

    message: str | None = None
    count_failed: bool = True
    action: str | None = None


NO_MATCH = Match()


def _exit_code_matches(code: int, req: Obj) -> bool:
    values = req.get("values") or ()
    op = req.get("operator")
    if op == "In":
        return code in values
    if op == "NotIn":
        return code not in values
    return False


def _matching_container(statuses: list[Obj], req: Obj) -> Obj | None:
    name = req.get("containerName")
    for cs in statuses:
        term = (cs.get("state") or {}).get("terminated")
        if term is None:
            continue
        if name is not None and name != cs.get("name"):
            continue
        code = int(term.get("exitCode") or 0)
        if code != 0 and _exit_code_matches(code, req):
            return cs
    return None


def match_on_exit_codes(pod: Obj, req: Obj) -> Obj | None:
    status = pod.get("status") or {}
    return (_matching_container(status.get("containerStatuses") or [], req)
            or _matching_container(status.get("initContainerStatuses") or [], req))


def match_on_pod_conditions(pod: Obj, patterns: list[Obj]) -> Obj | None:
    conditions: list[Obj] = (pod.get("status") or {}).get("conditions") or []
    for cond in conditions:
        for pat in patterns:
            if cond.get("type") == pat.get("type") and cond.get("status") == (pat.get("status") or "True"):
                return cond
    return None


def match(policy: Obj | None, pod: Obj) -> Match:
    """Apply the rules to a failed pod (upstream ``matchPodFailurePolicy``)."""
    if policy is None:
        return NO_MATCH
    m = pod.get("metadata") or {}
    for i, rule in enumerate(policy.get("rules") or ()):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            cs = match_on_exit_codes(pod, rule["onExitCodes"])
            if cs is None:
                continue
            if action == FAIL_JOB:
                code = cs["state"]["terminated"].get("exitCode")
                return Match(f"Container {cs.get('name')} for pod {m.get('namespace')}/{m.get('name')} "
                             f"failed with exit code {code} matching {action} rule at index {i}",
                             True, FAIL_JOB)
        elif rule.get("onPodConditions") is not None:
            cond = match_on_pod_conditions(pod, rule["onPodConditions"])
            if cond is None:
                continue
            if action == FAIL_JOB:
                return Match(f"Pod {m.get('namespace')}/{m.get('name')} has condition {cond.get('type')} "
                             f"matching {action} rule at index {i}", True, FAIL_JOB)
        else:
            continue
        if action == IGNORE:
            return Match(None, False, IGNORE)
        if action == FAIL_INDEX:
            return Match(None, True, FAIL_INDEX)
        if action == COUNT:
            return Match(None, True, COUNT)
        # unknown action: rule skipped
    return NO_MATCH
