"""``jobplane get``'s plan, table-style: kubectl get's options -> what is fetched, how it is
printed, what is said when nothing is found and what is watched."""

from __future__ import annotations

from typing import Any

import pytest

from jobplane.api import registry
from jobplane.cli.common import CliError
from jobplane.cli.get_plan import Fetch, GetOptions, WatchPlan, parse_get, plan_get

JOBS = registry.resolve("jobs")
PODS = registry.resolve("pods")
NODES = registry.resolve("nodes")
CRONJOBS = registry.resolve("cronjobs")


def plan(*args: str, namespace: str = "default", **opts: Any):
    return plan_get(parse_get(GetOptions(tuple(args), **opts)), namespace)


@pytest.mark.parametrize("args, opts, fetches", [
    (("jobs",), {}, [Fetch(JOBS, "default", (), None, None)]),
    (("jobs",), {"all_namespaces": True}, [Fetch(JOBS, None, (), None, None)]),
    (("nodes",), {}, [Fetch(NODES, None, (), None, None)]),
    (("job", "pi", "e"), {}, [Fetch(JOBS, "default", ("pi", "e"), None, None)]),
    (("job/pi", "pod/p1", "job/e"), {}, [Fetch(JOBS, "default", ("pi", "e"), None, None),
                                         Fetch(PODS, "default", ("p1",), None, None)]),
    (("jobs,pods",), {"selector": "app=x", "field_selector": "metadata.name=pi"},
     [Fetch(JOBS, "default", (), "app=x", "metadata.name=pi"), Fetch(PODS, "default", (), "app=x",
                                                                     "metadata.name=pi")]),
    (("pods",), {"watch_only": True}, [Fetch(PODS, "default", (), None, None)]),
    (("pod", "p"), {"watch_only": True}, [Fetch(PODS, "default", ("p",), None, None)]),
    (("jobs,pods",), {"watch_only": True}, [Fetch(JOBS, "default", (), None, None)]),
    (("pods",), {"watch_only": True, "output": "name"}, [Fetch(PODS, "default", (), None, None)]),
    (("pods,jobs",), {"watch_only": True, "output": "name"}, [Fetch(PODS, "default", (), None, None)]),
], ids=["collection", "all-namespaces", "cluster-scoped", "names", "kind-slash-name-grouped",
        "several-kinds-with-selectors", "watch-only-lists-for-the-rv", "watch-only-named",
        "watch-only-first-kind",
        "watch-only-with-an-object-printer", "watch-only-first-kind-with-an-object-printer"])
def test_fetches(args, opts, fetches) -> None:
    assert list(plan(*args, **opts).fetches) == fetches


def test_namespace_comes_from_the_connection() -> None:
    assert plan("jobs", namespace="team").fetches[0].namespace == "team"


@pytest.mark.parametrize("output, printer, arg, tables", [
    (None, "table", "", True),
    ("wide", "wide", "", True),
    ("name", "name", "", False),
    ("json", "json", "", False),
    ("yaml", "yaml", "", False),
    ("jsonpath={.items[*].metadata.name}", "jsonpath", "{.items[*].metadata.name}", False),
    ("jsonpath-as-json={.items}", "jsonpath-as-json", "{.items}", False),
    ("custom-columns=NAME:.metadata.name", "custom-columns", "NAME:.metadata.name", False),
], ids=["default", "wide", "name", "json", "yaml", "jsonpath", "jsonpath-as-json", "custom-columns"])
def test_printer(output, printer, arg, tables) -> None:
    p = plan("jobs", output=output)
    assert (p.printer, p.printer_arg, p.tables, p.wide) == (printer, arg, tables, output == "wide")


@pytest.mark.parametrize("args, exc, message", [
    ((), CliError, "you must specify the type of resource to get"),
    (("foo",), CliError, "the server doesn't have a resource type \"foo\""),
    (("job", "job/pi"), CliError, "there is no need to specify a resource type"),
    (("jobs,pods", "pi"), CliError, "must have a single resource and name"),
    (("job", "pi"), CliError, "a resource cannot be retrieved by name across all namespaces"),
    (("job/pi",), CliError, "a resource cannot be retrieved by name across all namespaces"),
], ids=["no-type", "unknown-type", "mixed-forms", "names-with-several-kinds", "name-across-namespaces",
        "slash-name-across-namespaces"])
def test_argument_errors(args, exc, message) -> None:
    with pytest.raises(exc, match=message):
        plan(*args, all_namespaces="across" in message)


def test_cluster_scoped_names_across_namespaces() -> None:
    assert plan("node", "n1", all_namespaces=True).fetches == (Fetch(NODES, None, ("n1",), None, None),)


def test_unknown_output_format() -> None:
    with pytest.raises(ValueError, match='unable to match a printer suitable for the output format "xml"'):
        plan("jobs", output="xml")


@pytest.mark.parametrize("args, opts, with_kind, with_namespace, header, prefix", [
    (("jobs",), {}, False, False, True, ""),
    (("jobs,pods",), {}, True, False, True, "job.batch"),
    (("all",), {}, True, False, True, "job.batch"),
    (("jobs",), {"show_kind": True}, True, False, True, "job.batch"),
    (("jobs",), {"all_namespaces": True, "no_headers": True}, False, True, False, ""),
    (("job/pi", "pod/p"), {}, True, False, True, "job.batch"),
    (("jobs,pods",), {"output": "name"}, False, False, True, ""),
], ids=["one-kind", "several-kinds", "all", "show-kind", "all-namespaces-no-headers", "slash-forms-of-two-kinds",
        "name-printer-names-kinds-itself"])
def test_table_layout(args, opts, with_kind, with_namespace, header, prefix) -> None:
    p = plan(*args, **opts)
    assert (p.with_kind, p.with_namespace, p.header, p.kind_prefix(JOBS)) == \
        (with_kind, with_namespace, header, prefix)


@pytest.mark.parametrize("args, opts, message, empty_list", [
    (("jobs",), {}, "No resources found in default namespace.", False),
    (("jobs",), {"all_namespaces": True}, "No resources found", False),
    (("nodes",), {}, "No resources found", False),
    (("jobs,nodes",), {}, "No resources found", False),
    (("job", "pi"), {}, None, False),
    (("jobs",), {"watch": True}, None, False),
    (("jobs",), {"watch": True, "output": "json"}, None, False),
    (("jobs",), {"output": "json"}, "No resources found in default namespace.", True),
    (("jobs",), {"output": "yaml"}, "No resources found in default namespace.", True),
    (("jobs",), {"output": "jsonpath={.items}"}, "No resources found in default namespace.", False),
    (("jobs",), {"output": "name"}, None, False),
    (("job", "pi"), {"output": "json"}, None, False),
    (("job", "a", "b"), {"output": "json", "ignore_not_found": True}, "No resources found in default namespace.",
     True),
], ids=["namespaced", "all-namespaces", "cluster-scoped", "mixed-scope", "named-table", "watch", "watch-json", "json-list",
        "yaml-list", "jsonpath", "name-silent", "single-named-object", "several-named-objects"])
def test_nothing_found(args, opts, message, empty_list) -> None:
    p = plan(*args, **opts)
    assert (p.empty_message, p.empty_list) == (message, empty_list)


@pytest.mark.parametrize("args, opts, single", [
    (("job", "pi"), {"output": "yaml"}, True),
    (("job/pi",), {"output": "yaml"}, True),
    (("job", "pi", "e"), {"output": "yaml"}, False),
    (("jobs",), {"output": "yaml"}, False),
], ids=["type-name", "type-slash-name", "two-names", "collection"])
def test_single_object_is_printed_alone(args, opts, single) -> None:
    assert plan(*args, **opts).single is single


@pytest.mark.parametrize("args, opts, watch", [
    (("jobs",), {}, None),
    (("jobs",), {"watch": True}, WatchPlan(JOBS, "default", None, None)),
    (("jobs",), {"watch_only": True}, WatchPlan(JOBS, "default", None, None)),
    (("job", "pi"), {"watch_only": True}, WatchPlan(JOBS, "default", None, "metadata.name=pi")),
    (("job", "pi"), {"watch": True, "field_selector": "status.successful=1"},
     WatchPlan(JOBS, "default", None, "status.successful=1,metadata.name=pi")),
    (("job/pi",), {"watch": True}, WatchPlan(JOBS, "default", None, "metadata.name=pi")),
    (("pods",), {"watch": True, "all_namespaces": True, "selector": "job-name=pi"},
     WatchPlan(PODS, None, "job-name=pi", None)),
    (("nodes",), {"watch": True}, WatchPlan(NODES, None, None, None)),
    (("cronjobs,jobs",), {"watch": True}, WatchPlan(CRONJOBS, "default", None, None)),
    (("jobs",), {"watch": True, "output": "name"}, WatchPlan(JOBS, "default", None, None)),
    (("job", "pi"), {"watch": True, "output": "yaml"}, WatchPlan(JOBS, "default", None, "metadata.name=pi")),
], ids=["no-watch", "watch", "watch-only", "watch-only-named", "named-with-field-selector", "slash-name", "all-namespaces-selector",
        "cluster-scoped", "first-kind", "with-an-object-printer",
        "named-with-an-object-printer"])
def test_watch(args, opts, watch) -> None:
    assert plan(*args, **opts).watch == watch


def test_event_column_and_labels() -> None:
    p = plan("jobs", watch=True, output_watch_events=True, show_labels=True)
    assert (p.event_column, p.show_labels) == (True, True)
    assert plan("jobs").event_column is False


@pytest.mark.parametrize("opts, print_list", [
    ({}, True), ({"watch": True}, True), ({"watch_only": True}, False),
    ({"watch_only": True, "output": "name"}, False), ({"watch": True, "output": "json"}, True),
], ids=["list", "watch", "watch-only", "watch-only-name", "watch-json"])
def test_list_printed(opts, print_list) -> None:
    assert plan("jobs", **opts).print_list is print_list
