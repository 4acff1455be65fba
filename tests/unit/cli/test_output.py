"""kubectl's table layout (Go tabwriter, minwidth 6, padding 3) and -o printers."""

from __future__ import annotations

import json

import pytest
import yaml

from jobplane.api import registry
from jobplane.cli import output
from jobplane.cli.tabwriter import TabWriter, tabify

TABLE = {
    "kind": "Table",
    "columnDefinitions": [
        {"name": "Name", "format": "name", "priority": 0}, {"name": "Status", "priority": 0},
        {"name": "Completions", "priority": 0}, {"name": "Duration", "priority": 0},
        {"name": "Age", "priority": 0}, {"name": "Containers", "priority": 1},
        {"name": "Images", "priority": 1}, {"name": "Selector", "priority": 1}],
    "rows": [{"cells": ["pi", "Complete", "1/1", "2s", "3s", "pi", "perl:5.34.0", "uid=1"],
              "object": {"metadata": {"name": "pi", "namespace": "default", "labels": {"b": "2", "a": "1"}}}}],
}


def render(lines: list[str]) -> str:
    w = output.new_table_writer()
    w.write("\n".join(lines) + "\n")
    return w.flush()


def test_job_table_matches_kubectl() -> None:
    assert render(output.table_lines(TABLE)) == (
        "NAME   STATUS     COMPLETIONS   DURATION   AGE\n"
        "pi     Complete   1/1           2s         3s\n")


def test_wide_namespace_labels_and_kind() -> None:
    text = render(output.table_lines(TABLE, wide=True, with_namespace=True, show_labels=True,
                                     kind_prefix="job.batch"))
    assert text == (
        "NAMESPACE   NAME           STATUS     COMPLETIONS   DURATION   AGE   CONTAINERS   IMAGES        "
        "SELECTOR   LABELS\n"
        "default     job.batch/pi   Complete   1/1           2s         3s    pi           perl:5.34.0   "
        "uid=1      a=1,b=2\n")


def test_pod_table_from_capture() -> None:
    table = {"columnDefinitions": [{"name": n, "priority": p} for n, p in (
        ("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1), ("Node", 1),
        ("Nominated Node", 1), ("Readiness Gates", 1))],
        "rows": [{"cells": ["pi-8c4hq", "0/1", "Completed", 0, "3s", "127.0.0.1", "local", "<none>", "<none>"]}]}
    assert render(output.table_lines(table, wide=True)) == (
        "NAME       READY   STATUS      RESTARTS   AGE   IP          NODE    NOMINATED NODE   READINESS GATES\n"
        "pi-8c4hq   0/1     Completed   0          3s    127.0.0.1   local   <none>           <none>\n")


def test_cell_text_truncates_at_newline_and_formats_values() -> None:
    table = {"columnDefinitions": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
             "rows": [{"cells": ["x\ny", True, None]}]}
    assert output.table_lines(table, header=False) == ["x...\ttrue\t"]


def test_tabwriter_blocks_and_minwidth() -> None:
    # a line without tabs ends the column block, as in Go
    assert tabify("a\tb\nlonger\tc\nno tabs\nx\ty\n", minwidth=6, padding=3) == (
        "a        b\nlonger   c\nno tabs\nx     y\n")
    # describe-style: padding 2, minwidth 0; the trailing cell is never padded
    assert tabify("Name:\tpi\nNamespace:\tdefault\n", padding=2) == "Name:       pi\nNamespace:  default\n"
    # empty cells still take padding
    assert tabify("\tx\nab\ty\n", padding=2) == "    x\nab  y\n"


def test_tabwriter_remember_widths_for_watch() -> None:
    w = TabWriter(minwidth=6, padding=3, remember_widths=True)
    w.write("NAME\tAGE\nlong-name\t1s\n")
    assert w.flush() == "NAME        AGE\nlong-name   1s\n"
    w.write("a\t2s\n")
    assert w.flush() == "a           2s\n"


def test_json_yaml_name_outputs() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "annotations": {"x": "<&>"}}}
    text = output.print_objects("json", "", [(registry.JOBS, job)], single=True)
    assert text.startswith('{\n    "apiVersion": "batch/v1",')
    assert "\\u003c\\u0026\\u003e" in text
    assert json.loads(text)["metadata"]["annotations"]["x"] == "<&>"
    listed = yaml.safe_load(output.print_objects("yaml", "", [(registry.JOBS, job)], single=False))
    assert listed == {"apiVersion": "v1", "kind": "List", "items": [job], "metadata": {"resourceVersion": ""}}
    assert output.print_objects("name", "", [(registry.JOBS, job), (registry.PODS, {"metadata": {"name": "p"}})],
                                single=False) == "job.batch/pi\npod/p\n"
    assert output.to_yaml({"b": 1, "a": [{"x": "long " * 40 + "end"}]}).startswith("a:\n- x: long long")


def test_jsonpath_and_custom_columns_outputs() -> None:
    pods = [(registry.PODS, {"metadata": {"name": n}, "status": {"phase": "Running"}}) for n in ("a", "b")]
    assert output.print_objects("jsonpath", "{.items[*].metadata.name}", pods, single=False) == "a b"
    assert output.print_objects("custom-columns", "NAME:.metadata.name,IP:.status.podIP", pods,
                                single=False) == "NAME   IP\na      <none>\nb      <none>\n"


def test_parse_output() -> None:
    assert output.parse_output(None) == ("table", "")
    assert output.parse_output("jsonpath={.a}") == ("jsonpath", "{.a}")
    assert output.parse_output("wide") == ("wide", "")
    try:
        output.parse_output("bogus")
    except ValueError as exc:
        assert "bogus" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_watch_event_column_is_as_wide_as_modified_from_the_start() -> None:
    """kubectl's formatEventType pads ADDED/DELETED/ERROR to MODIFIED's width."""
    w = output.new_table_writer(watch=True)
    w.write("\n".join(output.table_lines(TABLE, event_type="ADDED")) + "\n")
    first = w.flush()
    w.write("\n".join(output.table_lines(TABLE, header=False, event_type="MODIFIED")) + "\n")
    assert first + w.flush() == (
        "EVENT      NAME   STATUS     COMPLETIONS   DURATION   AGE\n"
        "ADDED      pi     Complete   1/1           2s         3s\n"
        "MODIFIED   pi     Complete   1/1           2s         3s\n")


def test_yaml_quotes_what_go_yaml_reads_as_a_boolean() -> None:
    assert output.to_yaml({"a": "y", "b": "N", "c": "yes", "d": "x"}) == 'a: "y"\nb: "N"\nc: "yes"\nd: x\n'


def test_object_stream_prints_as_kubectl_get_watch() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "resourceVersion": "7",
                                                                  "managedFields": [{"manager": "m"}]}}
    info = registry.resolve("jobs")
    names = output.ObjectStream("name", "")
    assert names.text(info, job) + names.text(info, job, "MODIFIED") == "job.batch/pi\njob.batch/pi\n"
    docs = output.ObjectStream("yaml", "")
    assert docs.text(info, job) == "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: pi\n  resourceVersion: \"7\"\n"
    assert docs.text(info, job).startswith("---\napiVersion: batch/v1\n")
    events = output.ObjectStream("json", "", event_types=True)
    assert events.text(info, job, "DELETED") == (
        '{"type":"DELETED","object":{"apiVersion":"batch/v1","kind":"Job","metadata":{"managedFields":'
        '[{"manager":"m"}],"name":"pi","resourceVersion":"7"}}}\n')
    paths = output.ObjectStream("jsonpath", "{.metadata.name}")
    assert paths.text(info, job) + paths.text(info, job) == "pipi"
    columns = output.ObjectStream("custom-columns", "NAME:.metadata.name,RV:.metadata.resourceVersion")
    assert columns.text(info, job) + columns.text(info, job) == "NAME   RV\npi     7\npi     7\n"


@pytest.mark.parametrize("keys, ordered", [
    (["k20266", "k3253", "b", "a"], ["a", "b", "k3253", "k20266"]),
    (["x10", "x9", "x09"], ["x9", "x09", "x10"]),
    (["a-b", "a.b", "aa", "a1"], ["a-b", "a.b", "a1", "aa"]),
    (["f:k20266", "f:k3253", "f:x", "."], [".", "f:k3253", "f:k20266", "f:x"]),
], ids=["digits-as-numbers", "leading-zero", "non-letters-first", "managed-fields"])
def test_yaml_keys_in_go_yaml_order(keys, ordered) -> None:
    assert list(yaml.safe_load(output.to_yaml({k: 1 for k in keys}))) == ordered
