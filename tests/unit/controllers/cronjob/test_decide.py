"""The pure CronJob scheduling decision, table-style.

Rows port the facts of upstream's TestControllerV2SyncCronJob table
(pkg/controller/cronjob/cronjob_controllerv2_test.go): previous-run state (never ran,
prior run done, prior run still active) x now (not time yet, just after the hour, a week
overdue) x startingDeadlineSeconds x suspend, each under Allow/Forbid/Replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from jobplane.api import meta
from jobplane.controllers.cronjob import schedule as sched
from jobplane.controllers.cronjob.decide import decide

HOUR = datetime(2016, 5, 19, 10, 0, tzinfo=UTC)  # schedule "0 * * * *" fires on the hour
PRIOR_HOUR = HOUR - timedelta(hours=1)
CREATED_NEW = HOUR - timedelta(minutes=1)  # upstream justBeforeTheHour: a never-run CronJob
CREATED_OLD = PRIOR_HOUR - timedelta(minutes=1)  # upstream justBeforeThePriorHour: one that ran
NOT_TIME = HOUR - timedelta(seconds=30)
IS_TIME = HOUR + timedelta(minutes=1)  # upstream justAfterTheHour
WEEK_LATE = IS_TIME + timedelta(days=7)  # upstream weekAfterTheHour: > 100 missed starts

SHORT, MEDIUM, LONG = 10, 2 * 60 * 60, 1_000_000  # upstream shortDead/mediumDead/longDead
R_NOT_TIME = 30.1  # until 10:00 (+100 ms)
R_HOUR = 59 * 60 + 0.1  # from hh:01 until the next hour (+100 ms)

NEVER, DONE, ACTIVE = "never ran", "prev ran but done", "still active"
TOO_MANY = ("Warning", "TooManyMissedTimes")
ALREADY = ("Normal", "JobAlreadyActive")


@dataclass(frozen=True)
class Want:
    create: bool
    requeue: float | None
    events: tuple[tuple[str, str], ...] = ()
    replace: int = 0
    at: datetime | None = None  # scheduled time when it differs from the last hour before now


def cronjob(state: str, policy: str, deadline: int | None, suspend: bool) -> dict:
    spec: dict = {"schedule": "0 * * * *", "concurrencyPolicy": policy, "suspend": suspend,
                  "jobTemplate": {"spec": {}}}
    if deadline is not None:
        spec["startingDeadlineSeconds"] = deadline
    status: dict = {}
    created = CREATED_NEW if state == NEVER else CREATED_OLD
    if state != NEVER:
        status["lastScheduleTime"] = meta.rfc3339(PRIOR_HOUR.timestamp())
    if state == ACTIVE:
        status["active"] = [{"kind": "Job", "name": sched.job_name("hello", PRIOR_HOUR), "uid": "u-prior"}]
    return {"metadata": {"name": "hello", "namespace": "default", "uid": "u-cj",
                         "creationTimestamp": meta.rfc3339(created.timestamp())},
            "spec": spec, "status": status}


NOTHING = Want(False, R_NOT_TIME)
CREATE = Want(True, R_HOUR)
SKIP = Want(False, R_HOUR)  # time passed but beyond the deadline: no start, no event
SUSPENDED = Want(False, None)
ALL = ("Allow", "Forbid", "Replace")

# (case, state, now, deadline, suspend, {policy: Want}); a Want for all three when not a dict
TABLE: list[tuple[str, str, datetime, int | None, bool, Want | dict[str, Want]]] = [
    ("not time", NEVER, NOT_TIME, None, False, NOTHING),
    ("not time, suspended", NEVER, NOT_TIME, None, True, SUSPENDED),
    ("is time", NEVER, IS_TIME, None, False, CREATE),
    ("is time, suspended", NEVER, IS_TIME, None, True, SUSPENDED),
    ("is time, past deadline", NEVER, IS_TIME, SHORT, False, SKIP),
    ("is time, not past deadline", NEVER, IS_TIME, MEDIUM, False, CREATE),
    ("long overdue, no deadline", NEVER, WEEK_LATE, None, False, Want(True, R_HOUR, (TOO_MANY,))),
    ("long overdue, long deadline", NEVER, WEEK_LATE, LONG, False, Want(True, R_HOUR, (TOO_MANY,))),
    ("long overdue, medium deadline", NEVER, WEEK_LATE, MEDIUM, False, CREATE),
    ("long overdue, short deadline", NEVER, WEEK_LATE, SHORT, False, SKIP),
    ("not time", DONE, NOT_TIME, None, False, NOTHING),
    ("not time, suspended", DONE, NOT_TIME, None, True, SUSPENDED),
    ("is time", DONE, IS_TIME, None, False, CREATE),
    ("is time, suspended", DONE, IS_TIME, None, True, SUSPENDED),
    ("is time, past deadline", DONE, IS_TIME, SHORT, False, SKIP),
    ("is time, not past deadline", DONE, IS_TIME, MEDIUM, False, CREATE),
    ("long overdue, no deadline", DONE, WEEK_LATE, None, False, Want(True, R_HOUR, (TOO_MANY,))),
    ("long overdue, medium deadline", DONE, WEEK_LATE, MEDIUM, False, CREATE),
    ("long overdue, short deadline", DONE, WEEK_LATE, SHORT, False, SKIP),
    ("not time", ACTIVE, NOT_TIME, None, False, NOTHING),
    ("not time, suspended", ACTIVE, NOT_TIME, None, True, SUSPENDED),
    ("is time", ACTIVE, IS_TIME, None, False, {
        "Allow": CREATE, "Forbid": Want(False, R_HOUR, (ALREADY,)), "Replace": Want(True, R_HOUR, replace=1)}),
    ("is time, suspended", ACTIVE, IS_TIME, None, True, SUSPENDED),
    ("is time, past deadline", ACTIVE, IS_TIME, SHORT, False, SKIP),
    ("is time, not past deadline", ACTIVE, IS_TIME, MEDIUM, False, {
        "Allow": CREATE, "Forbid": Want(False, R_HOUR, (ALREADY,)), "Replace": Want(True, R_HOUR, replace=1)}),
    ("long overdue, no deadline", ACTIVE, WEEK_LATE, None, False, {
        "Allow": Want(True, R_HOUR, (TOO_MANY,)), "Forbid": Want(False, R_HOUR, (TOO_MANY, ALREADY)),
        "Replace": Want(True, R_HOUR, (TOO_MANY,), replace=1)}),
    ("long overdue, medium deadline", ACTIVE, WEEK_LATE, MEDIUM, False, {
        "Allow": CREATE, "Forbid": Want(False, R_HOUR, (ALREADY,)), "Replace": Want(True, R_HOUR, replace=1)}),
    ("long overdue, short deadline", ACTIVE, WEEK_LATE, SHORT, False, SKIP),
]


def _rows() -> list[object]:
    rows = []
    for case, state, now, deadline, suspend, want in TABLE:
        for policy in ALL:
            w = want[policy] if isinstance(want, dict) else want
            rows.append(pytest.param(state, policy, now, deadline, suspend, w,
                                     id=f"{state}, {case}, {policy[0]}"))
    return rows


@pytest.mark.parametrize(("state", "policy", "now", "deadline", "suspend", "want"), _rows())
def test_decide_table(state: str, policy: str, now: datetime, deadline: int | None, suspend: bool,
                      want: Want) -> None:
    plan = decide(cronjob(state, policy, deadline, suspend), now)
    assert [(e.type, e.reason) for e in plan.events] == list(want.events)
    assert plan.requeue == pytest.approx(want.requeue) if want.requeue is not None else plan.requeue is None
    last_hour = now.replace(minute=0, second=0, microsecond=0)
    assert plan.create_for == ((want.at or last_hour) if want.create else None)
    assert len(plan.replace) == want.replace


def _with(**changes: object) -> dict:
    cj = cronjob(NEVER, "Allow", None, False)
    for path, value in changes.items():
        section, _, key = path.partition("__")
        cj[section][key] = value
    return cj


@pytest.mark.parametrize(("cj", "reasons", "requeue", "create"), [
    pytest.param(_with(metadata__deletionTimestamp="2016-05-19T09:00:00Z"), [], None, False, id="being deleted"),
    pytest.param(_with(spec__timeZone="Mars/Olympus"), [("Warning", "UnknownTimeZone")], None, False,
                 id="unknown time zone"),
    pytest.param(_with(spec__schedule="not a schedule"), [("Warning", "UnparseableSchedule")], None, False,
                 id="unparseable schedule"),
    pytest.param(_with(spec__schedule="TZ=UTC 0 * * * *"), [("Warning", "UnsupportedSchedule")], R_HOUR, True,
                 id="TZ in schedule warns and still runs"),
    pytest.param(_with(status__active=[{"name": sched.job_name("hello", HOUR), "uid": "u"}]), [], R_HOUR, False,
                 id="job for this time already active"),
    pytest.param(_with(status__lastScheduleTime=meta.rfc3339(HOUR.timestamp())), [], R_HOUR, False,
                 id="this time already scheduled"),
])
def test_decide_edges(cj: dict, reasons: list[tuple[str, str]], requeue: float | None, create: bool) -> None:
    plan = decide(cj, IS_TIME)
    assert [(e.type, e.reason) for e in plan.events] == reasons
    assert plan.requeue == pytest.approx(requeue) if requeue is not None else plan.requeue is None
    assert plan.create_for == (HOUR if create else None)
