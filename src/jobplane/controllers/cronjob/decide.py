"""Pure scheduling decision for one CronJob sync (upstream syncCronJob's decision half).

``decide`` reads only the CronJob (spec, status.active, lastScheduleTime) and ``now``;
it returns a ``Plan`` that the controller acts on. Keeping it free of I/O lets the
policy table (concurrency x missed start x deadline x suspend) be tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import format_datetime
from typing import Any

from jobplane.api import meta
from jobplane.controllers.cronjob import schedule as sched

Obj = dict[str, Any]
NEXT_SCHEDULE_DELTA = 0.1


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass
class Plan:
    """What one sync should do: events first, then replace/delete, then create."""

    events: list[Event] = field(default_factory=list)
    requeue: float | None = None
    create_for: datetime | None = None  # scheduled time to create a Job for
    replace: list[Obj] = field(default_factory=list)  # status.active refs to delete first (Replace)
    zone: tzinfo | None = None


def _dt(value: str | None) -> datetime | None:
    ts = meta.parse_time(value)
    return datetime.fromtimestamp(ts, tz=UTC) if ts is not None else None


def next_delay(schedule: sched.Schedule, now: datetime) -> float | None:
    """Seconds until the next scheduled time (+100 ms), or None when there is none."""
    try:
        nxt = schedule.next(now)
    except sched.ScheduleError:
        return None
    return max(0.0, (nxt - now).total_seconds()) + NEXT_SCHEDULE_DELTA


def decide(cj: Obj, now: datetime) -> Plan:
    """The scheduling decision for ``cj`` at ``now``; never touches the API."""
    md, spec = cj["metadata"], cj.get("spec") or {}
    status = cj.get("status") or {}
    plan = Plan()
    if md.get("deletionTimestamp"):
        return plan
    try:
        plan.zone = sched.load_zone(spec.get("timeZone"))
    except sched.ScheduleError as exc:
        plan.events.append(Event("Warning", "UnknownTimeZone", f'invalid timeZone: "{spec.get("timeZone")}": {exc}'))
        return plan
    if spec.get("suspend"):
        return plan
    try:
        schedule = sched.parse(spec.get("schedule", ""), spec.get("timeZone"))
    except sched.ScheduleError as exc:
        plan.events.append(Event("Warning", "UnparseableSchedule",
                                 f'unparseable schedule: "{spec.get("schedule")}" : {exc}'))
        return plan
    if "TZ" in spec.get("schedule", ""):
        plan.events.append(Event("Warning", "UnsupportedSchedule",
                                 "CRON_TZ or TZ used in schedule \"" + spec.get("schedule", "") +
                                 "\" is not officially supported, see https://kubernetes.io/docs/concepts/"
                                 "workloads/controllers/cron-jobs/ for more details"))
    earliest = _dt(status.get("lastScheduleTime")) or _dt(md.get("creationTimestamp")) or now
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None:
        floor = now - timedelta(seconds=deadline)
        if floor > earliest:
            earliest = floor
    try:
        missed = sched.most_recent_schedule_time(schedule, now, earliest)
    except sched.ScheduleError as exc:
        plan.events.append(Event("Warning", "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {exc}"))
        return plan
    if missed.too_many:
        plan.events.append(Event("Warning", "TooManyMissedTimes",
                                 "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                                 "or check clock skew"))
    scheduled = missed.most_recent
    plan.requeue = next_delay(schedule, now)
    if scheduled is None:
        return plan
    if deadline is not None and scheduled.timestamp() + deadline < now.timestamp():
        plan.events.append(Event("Warning", "MissSchedule",
                                 f"Missed scheduled time to start a job: {format_datetime(scheduled, usegmt=False)}"))
        return plan
    active = list(status.get("active") or ())
    name = sched.job_name(md["name"], scheduled)
    if any(r.get("name") == name for r in active) or \
            status.get("lastScheduleTime") == meta.rfc3339(scheduled.timestamp()):
        return plan
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active:
        plan.events.append(Event("Normal", "JobAlreadyActive",
                                 "Not starting job because prior execution is running and concurrency policy "
                                 "is Forbid"))
        return plan
    if policy == "Replace":
        plan.replace = active
    plan.create_for = scheduled
    return plan
