"""Cron schedules with robfig/cron v3's standard-parser semantics, on top of croniter.

Pure: no clock, no I/O. Times are timezone-aware datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_MISSED = 100


class ScheduleError(ValueError):
    """The schedule cannot be parsed; the message is robfig's wording where we know it."""


def parse_go_duration(text: str) -> float:
    """Go ``time.ParseDuration`` subset (``1h30m``, ``90s``) -> seconds."""
    pos, total = 0, 0.0
    if not text:
        raise ScheduleError(f'time: invalid duration "{text}"')
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ScheduleError(f'time: invalid duration "{text}"')
    return total


def load_zone(name: str | None) -> tzinfo | None:
    """IANA zone; None when unset (the controller then uses UTC, as kube-controller-manager
    in a container does). Raises ScheduleError for an unknown zone."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name}") from exc


@dataclass(frozen=True)
class Schedule:
    expr: str  # five-field form, or "" for @every
    every: float = 0.0
    zone: tzinfo = UTC

    def next(self, after: datetime) -> datetime:
        """The first activation strictly after ``after`` (robfig's Schedule.Next)."""
        if self.every:
            # robfig: @every rounds the start down to the second and adds the interval
            base = after.replace(microsecond=0)
            return base + timedelta(seconds=self.every)
        local = after.astimezone(self.zone).replace(microsecond=0)
        try:
            nxt: datetime = croniter(self.expr, local, day_or=True).get_next(datetime)
        except CroniterBadDateError as exc:
            raise ScheduleError("failed to find next date") from exc
        return nxt.astimezone(UTC)


def parse(schedule: str, time_zone: str | None = None) -> Schedule:
    """Parse a CronJob ``spec.schedule`` (+ ``spec.timeZone``). Raises ScheduleError."""
    text = schedule.strip()
    zone = load_zone(time_zone) or UTC
    if text.startswith(("TZ=", "CRON_TZ=")):
        tzspec, _, text = text.partition(" ")
        zone = load_zone(tzspec.split("=", 1)[1]) or UTC
        text = text.strip()
    if text.startswith("@every "):
        seconds = parse_go_duration(text[len("@every "):].strip())
        if seconds < 1:
            seconds = 1.0
        return Schedule("", seconds, zone)
    if text.startswith("@"):
        if text not in _MACROS:
            raise ScheduleError(f"unrecognized descriptor: {text}")
        text = _MACROS[text]
    fields = text.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    expr = " ".join("*" if f == "?" else f for f in fields)
    if not croniter.is_valid(expr):
        raise ScheduleError(f"failed to parse schedule: {text}")
    return Schedule(expr, 0.0, zone)


@dataclass(frozen=True)
class MissedSchedule:
    most_recent: datetime | None
    too_many: bool = False


def most_recent_schedule_time(schedule: Schedule, now: datetime, earliest: datetime) -> MissedSchedule:
    """upstream ``mostRecentScheduleTime``: the latest activation in (earliest, now], and
    whether more than 100 were missed. Raises ScheduleError for schedules that fire less
    than a second apart (e.g. Feb 31)."""
    t1 = schedule.next(earliest)
    if now < t1:
        return MissedSchedule(None)
    t2 = schedule.next(t1)
    if now < t2:
        return MissedSchedule(t1)
    between = round((t2 - t1).total_seconds())
    if between < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    elapsed = int((now - t1).total_seconds())
    missed = elapsed // between + 1
    # Estimate from the interval and snap to a real activation, then walk forward:
    # intervals differ (months, DST), so an estimate past ``now`` falls back to t1.
    start = t1 + timedelta(seconds=max(0, missed - 3) * between)
    most_recent = schedule.next(start - timedelta(seconds=1))
    if most_recent > now:
        most_recent = t1
    while (nxt := schedule.next(most_recent)) <= now:
        most_recent = nxt
    return MissedSchedule(most_recent, missed > MAX_MISSED)


def job_name(cronjob_name: str, scheduled: datetime) -> str:
    """``<cronjob>-<minutes since the epoch>``."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"
