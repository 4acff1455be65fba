"""kubectl JSONPath templates."""

from __future__ import annotations

import pytest

from jobplane.cli.jsonpath import JSONPathError, execute, find_results, relaxed

DATA = {
    "kind": "List",
    "items": [
        {"metadata": {"name": "a", "labels": {"app": "x"}}, "status": {"phase": "Running", "restarts": 2},
         "spec": {"containers": [{"name": "c1", "image": "i1"}, {"name": "c2", "image": "i2"}]}},
        {"metadata": {"name": "b", "labels": {"app": "y"}}, "status": {"phase": "Succeeded", "restarts": 0},
         "spec": {"containers": [{"name": "c3", "image": "i3"}]}},
    ],
}


@pytest.mark.parametrize("template,expected", [
    ("{.items[*].metadata.name}", "a b"),
    ("{.kind}", "List"),
    ("kind={.kind}!", "kind=List!"),
    ('{range .items[*]}{.metadata.name}{"\\n"}{end}', "a\nb\n"),
    ('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}', "a\tRunning\nb\tSucceeded\n"),
    ('{.items[?(@.status.phase=="Running")].metadata.name}', "a"),
    ("{.items[?(@.status.restarts>1)].metadata.name}", "a"),
    ("{.items[?(@.status.restarts<=0)].metadata.name}", "b"),
    ("{.items[?(@.metadata.labels.app!='x')].metadata.name}", "b"),
    ("{.items[0].metadata.name}", "a"),
    ("{.items[-1].metadata.name}", "b"),
    ("{.items[0:1].metadata.name}", "a"),
    ("{..image}", "i1 i2 i3"),
    ("{.items[*].spec.containers[*].name}", "c1 c2 c3"),
    ("{.items[0].metadata.labels}", '{"app":"x"}'),
    ("{.items[0].spec.containers[0]}", '{"name":"c1","image":"i1"}'),
    ("{.items[0].metadata['name']}", "a"),
    ("{.items[0].metadata.labels.app}", "x"),
    ("{.missing}", ""),
    ("{.items[*].metadata.missing}", ""),
    ("{.items[?(@.metadata.labels.app)].metadata.name}", "a b"),
    ("{$.kind}", "List"),
    ("{.items[0].status.restarts}", "2"),
])
def test_templates(template: str, expected: str) -> None:
    assert execute(template, DATA) == expected


def test_missing_key_error_when_not_allowed() -> None:
    with pytest.raises(JSONPathError, match="missing is not found"):
        execute("{.missing}", DATA, allow_missing=False)


def test_unclosed_range_and_bad_end() -> None:
    with pytest.raises(JSONPathError):
        execute("{range .items[*]}{.x}", DATA)
    with pytest.raises(JSONPathError):
        execute("{end}", DATA)


def test_relaxed_and_find_results() -> None:
    assert relaxed(".metadata.name") == "{.metadata.name}"
    assert relaxed("metadata.name") == "{.metadata.name}"
    assert relaxed("{.metadata.name}") == "{.metadata.name}"
    assert find_results("{.items[*].metadata.name}", DATA) == ["a", "b"]
