"""Argument forms, durations, error lines and create manifests of the CLI verbs."""

from __future__ import annotations

import click
import pytest

from jobplane.api import registry
from jobplane.api.errors import FieldError, StatusError, invalid_object, not_found
from jobplane.cli import common, logs_cmd, mutate_cmd


def test_parse_targets_forms() -> None:
    targets, multi = common.parse_targets(("jobs",))
    assert targets == [(registry.JOBS, [])] and not multi
    targets, multi = common.parse_targets(("job", "a", "b"))
    assert targets == [(registry.JOBS, ["a", "b"])] and not multi
    targets, multi = common.parse_targets(("cj,po",))
    assert [t[0] for t in targets] == [registry.CRONJOBS, registry.PODS] and multi
    targets, multi = common.parse_targets(("job/a", "pod/b", "job/c"))
    assert targets == [(registry.JOBS, ["a", "c"]), (registry.PODS, ["b"])] and multi
    targets, multi = common.parse_targets(("all",))
    assert {t[0].kind for t in targets} == {"Pod", "Service", "Job", "CronJob"} and multi


def test_parse_targets_errors() -> None:
    with pytest.raises(common.CliError, match='the server doesn\'t have a resource type "foo"'):
        common.parse_targets(("foo",))
    with pytest.raises(common.CliError):
        common.parse_targets(("job", "job/a"))
    with pytest.raises(common.CliError):
        common.parse_targets(())


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("1m30s", 90), ("2h", 7200), ("500ms", 0.5), ("10", 10)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert common.parse_duration(text) == seconds


def test_parse_duration_invalid() -> None:
    with pytest.raises(common.CliError, match="invalid duration"):
        common.parse_duration("abc")


def test_error_text_shapes() -> None:
    assert common.error_text(not_found("jobs", "batch", "x")) == \
        'Error from server (NotFound): jobs.batch "x" not found'
    err = invalid_object("Job", "batch", "pi", [FieldError("FieldValueInvalid", "spec.template", "x",
                                                           "field is immutable")])
    assert common.error_text(err) == 'The Job "pi" is invalid: spec.template: Invalid value: "x": field is immutable'
    two = invalid_object("Job", "batch", "pi", [FieldError("FieldValueRequired", "a"),
                                                FieldError("FieldValueRequired", "b")])
    assert common.error_text(two) == 'The Job "pi" is invalid: \n* a: Required value\n* b: Required value'
    assert common.error_text(StatusError(500, "", "boom")) == "Error from server: boom"
    assert common.error_text(common.CliError("bad")) == "error: bad"


def test_create_manifests() -> None:
    job = mutate_cmd.job_manifest("hello", "busybox", ["echo", "hi"])
    assert job["spec"]["template"]["spec"] == {
        "containers": [{"name": "hello", "image": "busybox", "resources": {}, "command": ["echo", "hi"]}],
        "restartPolicy": "Never"}
    cj = mutate_cmd.cronjob_manifest("c", "busybox", "*/1 * * * *", [], "OnFailure")
    assert cj["spec"]["schedule"] == "*/1 * * * *"
    assert cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    source = {"metadata": {"name": "cj", "uid": "u"},
              "spec": {"jobTemplate": {"metadata": {"labels": {"l": "1"}, "annotations": {"a": "b"}},
                                       "spec": {"backoffLimit": 1}}}}
    manual = mutate_cmd.job_from_cronjob("m", source)
    assert manual["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual", "a": "b"}
    assert manual["metadata"]["labels"] == {"l": "1"}
    assert manual["metadata"]["ownerReferences"][0] == {"apiVersion": "batch/v1", "kind": "CronJob",
                                                        "name": "cj", "uid": "u", "controller": True}
    assert manual["spec"] == {"backoffLimit": 1}


def test_wait_conditions() -> None:
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}], "phase": "Succeeded"}}
    assert logs_cmd.condition_predicate("jsonpath={.status.phase}")(done)  # no value: the path exists
    assert not logs_cmd.condition_predicate("jsonpath={.status.startTime}")(done)
    assert logs_cmd.condition_predicate("condition=complete")(done)
    assert not logs_cmd.condition_predicate("condition=Complete=False")(done)
    assert not logs_cmd.condition_predicate("condition=Failed")(done)
    assert logs_cmd.condition_predicate("jsonpath={.status.phase}=Succeeded")(done)
    assert not logs_cmd.condition_predicate("jsonpath={.status.phase}=Running")(done)
    with pytest.raises(common.CliError):
        logs_cmd.condition_predicate("bogus")


def test_pick_container_and_logging_rank() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                               "initContainers": [{"name": "i"}]}}
    assert logs_cmd.pick_container(pod, None) == ("a", 'Defaulted container "a" out of: a, b, i (init)')
    assert logs_cmd.pick_container(pod, "b") == ("b", None)
    pod["metadata"]["annotations"] = {logs_cmd.DEFAULT_CONTAINER_ANNOTATION: "b"}
    assert logs_cmd.pick_container(pod, None) == ("b", None)
    pending = {"metadata": {"name": "x"}, "spec": {}, "status": {"phase": "Pending"}}
    running = {"metadata": {"name": "y"}, "spec": {"nodeName": "n"}, "status": {"phase": "Running"}}
    assert sorted([pending, running], key=logs_cmd.logging_rank)[0] is running


@pytest.mark.parametrize(("text", "message"), [
    ("soon", 'time: invalid duration "soon"'),
    ("0s", "must be positive"),
    ("-5", "must be positive"),
])
def test_positive_duration_refuses_with_the_option_named(text, message):
    with pytest.raises(click.BadParameter) as info:
        common.positive_duration(text, "--ttl")
    assert (info.value.param_hint, info.value.message) == ("--ttl", message)


def test_positive_duration_in_seconds():
    assert common.positive_duration("1h30m", "--expires") == 5400.0
