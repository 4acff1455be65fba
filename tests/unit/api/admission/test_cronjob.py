"""CronJob admission: defaults, schedule/timeZone validation, jobTemplate rules, strategies."""

from __future__ import annotations

import pytest
from _admission_helpers import clone, created, invalid_message, meta

from jobplane.api import admission
from jobplane.api.registry import CRONJOBS
from jobplane.api.validation.cronjob import parse_error, parse_go_duration


def cronjob(name: str = "cj", schedule: str = "*/1 * * * ?", **spec) -> dict:
    template = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                               "restartPolicy": "OnFailure"}}}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta(name),
            "spec": {"schedule": schedule, "jobTemplate": template, **spec}}


def test_defaults() -> None:
    cj = created(CRONJOBS, cronjob())
    spec = cj["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    pod_spec = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod_spec["terminationGracePeriodSeconds"] == 30
    assert "selector" not in spec["jobTemplate"]["spec"]
    assert cj["status"] == {}


@pytest.mark.parametrize("schedule", ["*/1 * * * ?", "0 0 * * MON-FRI", "@hourly", "@every 1h30m",
                                      "5,10-20/5 * 1 JAN,dec *", "@midnight"])
def test_valid_schedules(schedule: str) -> None:
    assert parse_error(schedule) is None


@pytest.mark.parametrize(("schedule", "error"), [
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("* * * * * *", "expected exactly 6 fields, found 6: [* * * * * *]".replace("6 fields", "5 fields")),
    ("@every x", 'failed to parse duration @every x: time: invalid duration "x"'),
    ("@every 5", 'failed to parse duration @every 5: time: missing unit in duration "5"'),
    ("@foo", "unrecognized descriptor: @foo"),
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("1/2/3 * * * *", "too many slashes: 1/2/3"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
])
def test_schedule_errors(schedule: str, error: str) -> None:
    assert parse_error(schedule) == error


def test_go_duration() -> None:
    assert parse_go_duration("1h30m") == 5400 * 10**9
    assert parse_go_duration("1.5s") == 1_500_000_000


def test_invalid_schedule_message() -> None:
    msg = invalid_message(admission.admit_create, CRONJOBS, cronjob(schedule="* * * *"))
    assert msg == ('CronJob.batch "cj" is invalid: spec.schedule: Invalid value: "* * * *": '
                   "expected exactly 5 fields, found 4: [* * * *]")
    msg = invalid_message(admission.admit_create, CRONJOBS, cronjob(schedule=""))
    assert msg == 'CronJob.batch "cj" is invalid: spec.schedule: Required value'


def test_tz_in_schedule() -> None:
    msg = invalid_message(admission.admit_create, CRONJOBS, cronjob(schedule="TZ=UTC 0 * * * *"))
    assert msg == ('CronJob.batch "cj" is invalid: spec.schedule: Invalid value: "TZ=UTC 0 * * * *": '
                   "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")


def test_time_zone() -> None:
    msg = invalid_message(admission.admit_create, CRONJOBS, cronjob(timeZone="bad-time-zone"))
    assert msg == ('CronJob.batch "cj" is invalid: spec.timeZone: Invalid value: "bad-time-zone": '
                   "unknown time zone bad-time-zone")
    msg = invalid_message(admission.admit_create, CRONJOBS, cronjob(timeZone=""))
    assert msg == ('CronJob.batch "cj" is invalid: spec.timeZone: Invalid value: "": '
                   "timeZone must be nil or non-empty string")
    msg = invalid_message(admission.admit_create, CRONJOBS, cronjob(timeZone="Local"))
    assert msg == ('CronJob.batch "cj" is invalid: spec.timeZone: Invalid value: "Local": '
                   "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")
    # Go's LoadLocation only special-cases "Local"; other casings are also unknown zones.
    msg = invalid_message(admission.admit_create, CRONJOBS, cronjob(timeZone="local"))
    assert msg.endswith('spec.timeZone: Invalid value: "local": unknown time zone local]')
    created(CRONJOBS, cronjob(timeZone="Europe/Berlin"))
    created(CRONJOBS, cronjob(timeZone="UTC"))


def test_name_length_only_on_create() -> None:
    name = "c" * 53
    msg = invalid_message(admission.admit_create, CRONJOBS, cronjob(name))
    assert msg == (f'CronJob.batch "{name}" is invalid: metadata.name: Invalid value: "{name}": '
                   "must be no more than 52 characters")
    old = created(CRONJOBS, cronjob("c" * 52))
    old["metadata"]["name"] = name
    new = clone(old)
    new["spec"]["suspend"] = True
    admission.admit_update(CRONJOBS, new, old)


def test_job_template_rules() -> None:
    body = cronjob(concurrencyPolicy="Sometimes")
    jspec = body["spec"]["jobTemplate"]["spec"]
    jspec["selector"] = {"matchLabels": {"a": "b"}}
    jspec["manualSelector"] = True
    jspec["template"]["spec"]["restartPolicy"] = "Always"
    msg = invalid_message(admission.admit_create, CRONJOBS, body)
    assert msg == (
        'CronJob.batch "cj" is invalid: [spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: '
        '"Allow", "Forbid", "Replace", spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid '
        'values: "OnFailure", "Never", spec.jobTemplate.spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
        'map[string]string{"a":"b"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be '
        'auto-generated, spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: "nil", '
        '"false"]')


def test_negative_limits() -> None:
    msg = invalid_message(admission.admit_create, CRONJOBS, cronjob(startingDeadlineSeconds=-1))
    assert msg == ('CronJob.batch "cj" is invalid: spec.startingDeadlineSeconds: Invalid value: -1: '
                   "must be greater than or equal to 0")


def test_update_and_status_strategies() -> None:
    old = created(CRONJOBS, cronjob())
    old["status"] = {"lastScheduleTime": "2024-01-01T00:00:00Z"}
    new = clone(old)
    new["spec"]["suspend"] = True
    new["status"] = {}
    admission.admit_update(CRONJOBS, new, old)
    assert new["status"] == old["status"] and new["metadata"]["generation"] == 2
    st = clone(old)
    st["spec"]["suspend"] = True
    st["status"] = {"active": [{"name": "x"}]}
    admission.admit_status_update(CRONJOBS, st, old)
    assert st["spec"]["suspend"] is False and st["status"]["active"] == [{"name": "x"}]
