"""Pod re-creation back-off (upstream backoff_utils.go): ``base * 2**(n-1)`` capped, minus
the time since the last failure, where n counts failures after the newest success. The
record is per job, in memory; per index it is derived from the last failed pod's
failure-count annotations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobplane.controllers.job.indexed import absolute_failure_count
from jobplane.controllers.job.pods import finished_time

Obj = dict[str, Any]


@dataclass(frozen=True)
class BackoffRecord:
    failures_after_last_success: int = 0
    last_failure_time: float | None = None


EMPTY = BackoffRecord()


def delay_for(failures: int, base: float, cap: float) -> float:
    """The full back-off after ``failures`` consecutive failures (0 -> no delay)."""
    if failures <= 0:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            return cap
    return min(delay, cap)


def remaining(now: float, failures: int, last_failure: float | None, base: float, cap: float) -> float:
    if failures <= 0 or last_failure is None:
        return 0.0
    full = delay_for(failures, base, cap)
    elapsed = now - last_failure
    return 0.0 if full < elapsed else full - elapsed


class BackoffStore:
    """Per-job records keyed by ``namespace/name``."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        self._records: dict[str, BackoffRecord] = {}

    def get(self, key: str) -> BackoffRecord:
        return self._records.get(key, EMPTY)

    def new_record(self, key: str, new_succeeded: list[Obj], new_failed: list[Obj]) -> BackoffRecord:
        """The record after this sync's newly finished pods (not stored until ``update``)."""
        old = self.get(key)
        if not new_succeeded:
            if not new_failed:
                return old
            last = max(finished_time(p) for p in new_failed)
            return BackoffRecord(old.failures_after_last_success + len(new_failed), last)
        if not new_failed:
            return EMPTY
        last_success = max(finished_time(p) for p in new_succeeded)
        after = sorted(t for t in (finished_time(p) for p in new_failed) if t > last_success)
        if not after:
            return EMPTY
        return BackoffRecord(len(after), after[-1])

    def update(self, key: str, record: BackoffRecord) -> None:
        if record == EMPTY:
            self._records.pop(key, None)
        else:
            self._records[key] = record

    def remove(self, key: str) -> None:
        self._records.pop(key, None)

    def remaining(self, record: BackoffRecord, now: float) -> float:
        return remaining(now, record.failures_after_last_success, record.last_failure_time,
                         self.base, self.cap)

    def remaining_for_index(self, last_failed_pod: Obj | None, now: float) -> float:
        if last_failed_pod is None:
            return 0.0
        return remaining(now, absolute_failure_count(last_failed_pod) + 1, finished_time(last_failed_pod),
                         self.base, self.cap)
