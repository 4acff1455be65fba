"""Label and field selectors (``api.selectors``), table-style. Label cases follow upstream's
``TestSelectorMatches`` / ``TestSelectorParse`` (apimachinery pkg/labels/selector_test.go)."""

from __future__ import annotations

import pytest

from jobplane.api import errors
from jobplane.api.selectors import (
    from_label_selector_dict,
    label_selector_string,
    parse_field_selector,
    parse_label_selector,
    predicate,
)


@pytest.mark.parametrize(("selector", "labels", "want"), [
    pytest.param("", {"x": "y"}, True, id="empty-matches-everything"),
    pytest.param("x=y", {"x": "y"}, True, id="equals"),
    pytest.param("x==y", {"x": "y"}, True, id="double-equals"),
    pytest.param("x=y", {"x": "z"}, False, id="equals-other-value"),
    pytest.param("x=y,z=w", {"x": "y", "z": "w"}, True, id="and"),
    pytest.param("x=y,z=w", {"x": "y"}, False, id="and-missing"),
    pytest.param("x!=y", {"x": "z"}, True, id="not-equals"),
    pytest.param("x!=y", {}, True, id="not-equals-absent-matches"),
    pytest.param("x!=y", {"x": "y"}, False, id="not-equals-same"),
    pytest.param("x in (y,z)", {"x": "z"}, True, id="in"),
    pytest.param("x in (y,z)", {"x": "w"}, False, id="in-other"),
    pytest.param("x in (y,z)", {}, False, id="in-absent"),
    pytest.param("x notin (y,z)", {"x": "w"}, True, id="notin"),
    pytest.param("x notin (y,z)", {}, True, id="notin-absent-matches"),
    pytest.param("x notin (y,z)", {"x": "y"}, False, id="notin-listed"),
    pytest.param("x", {"x": ""}, True, id="exists"),
    pytest.param("x", {"y": "1"}, False, id="exists-absent"),
    pytest.param("!x", {"y": "1"}, True, id="does-not-exist"),
    pytest.param("!x", {"x": "1"}, False, id="does-not-exist-present"),
    pytest.param("x in (y,z),w", {"x": "y", "w": "1"}, True, id="set-then-exists"),
])
def test_label_selector_matches(selector, labels, want):
    assert parse_label_selector(selector).matches(labels) is want


@pytest.mark.parametrize("selector", [
    pytest.param("x=a,", id="trailing-comma"),
    pytest.param(",x=a", id="leading-comma"),
    pytest.param("!x=a", id="not-with-value"),
])
def test_label_selector_parse_errors(selector):
    with pytest.raises(errors.StatusError) as exc:
        parse_label_selector(selector)
    assert exc.value.code == 400
    assert exc.value.message.startswith("unable to parse requirement")


@pytest.mark.parametrize(("sel", "labels", "want"), [
    pytest.param({"matchLabels": {"a": "b"}}, {"a": "b", "c": "d"}, True, id="match-labels"),
    pytest.param({"matchLabels": {"a": "b"}}, {"a": "c"}, False, id="match-labels-other"),
    pytest.param({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b", "c"]}]}, {"a": "c"}, True,
                 id="expression-in"),
    pytest.param({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "c"}, False,
                 id="expression-does-not-exist"),
    pytest.param({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True,
                 id="expression-exists"),
])
def test_label_selector_from_dict(sel, labels, want):
    assert from_label_selector_dict(sel).matches(labels) is want


def test_label_selector_string_round_trips():
    sel = {"matchLabels": {"job-name": "pi"}}
    text = label_selector_string(sel)
    assert text == "job-name=pi"
    assert parse_label_selector(text).matches({"job-name": "pi"})


POD = {"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"}},
       "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}


@pytest.mark.parametrize(("selector", "want"), [
    pytest.param("metadata.name=p", True, id="name"),
    pytest.param("metadata.name==p", True, id="name-double-equals"),
    pytest.param("metadata.name=q", False, id="name-other"),
    pytest.param("metadata.namespace=ns,status.phase!=Succeeded", True, id="and-not-equals"),
    pytest.param("status.phase!=Running", False, id="not-equals-same"),
    pytest.param("spec.nodeName=n1", True, id="node-name"),
    pytest.param("spec.nodeName=", False, id="unbound"),
])
def test_field_selector_on_pods(selector, want):
    assert parse_field_selector(selector, "Pod").matches(POD) is want


def test_field_selector_errors_name_the_field():
    with pytest.raises(errors.StatusError) as exc:
        parse_field_selector("spec.bogus=1", "Pod")
    assert (exc.value.code, exc.value.message) == (400, "field label not supported: spec.bogus")
    with pytest.raises(errors.StatusError) as exc:
        parse_field_selector("metadata.name", "Pod")
    assert exc.value.message == "invalid selector: 'metadata.name'; can't understand 'metadata.name'"


def test_predicate_combines_both_and_none_when_empty():
    assert predicate(None, None, "Pod") is None
    keep = predicate("app=a", "spec.nodeName=n1", "Pod")
    assert keep is not None and keep(POD)
    assert not keep({**POD, "spec": {"nodeName": "n2"}})
