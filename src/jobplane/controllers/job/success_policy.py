"""spec.successPolicy matching (upstream success_policy.go)."""

from __future__ import annotations

from typing import Any

from jobplane.api.intervals import Intervals, parse

Obj = dict[str, Any]

MESSAGE = "Matched rules at index {}"


def _rule_met(rule_indexes: Intervals, succeeded: Intervals, succeeded_count: int | None) -> bool:
    contains = 0
    r = s = 0
    ri, si = rule_indexes.items, succeeded.items
    while r < len(ri) and s < len(si):
        overlap = min(ri[r][1], si[s][1]) - max(ri[r][0], si[s][0]) + 1
        if overlap > 0:
            contains += overlap
        if si[s][1] < ri[r][1]:
            s += 1
        else:
            r += 1
    return contains == rule_indexes.total() or (succeeded_count is not None and contains >= succeeded_count)


def match(policy: Obj | None, completions: int, succeeded: Intervals) -> str | None:
    """The condition message of the first met rule, or None."""
    if policy is None or not len(succeeded):
        return None
    for i, rule in enumerate(policy.get("rules") or ()):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse(rule["succeededIndexes"], completions)
            if not len(required):
                continue
            if _rule_met(required, succeeded, count):
                return MESSAGE.format(i)
        elif count is not None and succeeded.total() >= count:
            return MESSAGE.format(i)
    return None
