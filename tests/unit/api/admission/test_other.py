"""Namespace, Node, Event and Lease admission; intervals and quantities."""

from __future__ import annotations

import pytest
from _admission_helpers import clone, created, invalid_message, meta

from jobplane.api import admission, intervals
from jobplane.api.quantity import QuantityError, cpu_millis, memory_bytes, parse_quantity
from jobplane.api.registry import EVENTS, LEASES, NAMESPACES, NODES


def test_namespace_create_and_status() -> None:
    ns = created(NAMESPACES, {"metadata": meta("team-a", namespace=None)})
    assert ns["status"] == {"phase": "Active"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    msg = invalid_message(admission.admit_create, NAMESPACES, {"metadata": meta("Team", namespace=None)})
    assert msg.startswith('Namespace "Team" is invalid: metadata.name: Invalid value: "Team": a lowercase RFC 1123 label')
    new = clone(ns)
    new["spec"]["finalizers"] = []
    new["status"] = {"phase": "Terminating"}
    admission.admit_update(NAMESPACES, new, ns)
    assert new["spec"]["finalizers"] == ["kubernetes"] and new["status"]["phase"] == "Active"
    bad = clone(ns)
    bad["status"] = {"phase": "Terminating"}
    msg = invalid_message(admission.admit_status_update, NAMESPACES, bad, ns)
    assert msg == ('Namespace "team-a" is invalid: status.Phase: Invalid value: "Terminating": '
                   "may only be 'Active' if `deletionTimestamp` is empty")
    fin = clone(ns)
    fin["spec"]["finalizers"] = []
    admission.admit_namespace_finalize(NAMESPACES, fin, ns)
    assert fin["spec"]["finalizers"] == []


def test_node() -> None:
    node = created(NODES, {"metadata": meta("n1", namespace=None), "status": {"capacity": {"cpu": "4"}}})
    assert node["status"]["allocatable"] == {"cpu": "4"}
    msg = invalid_message(admission.admit_create, NODES, {"metadata": meta("n1", namespace=None),
                                                         "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}})
    assert msg == ('Node "n1" is invalid: spec.taints[0].effect: Unsupported value: "Sometimes": supported values: '
                   '"NoSchedule", "PreferNoSchedule", "NoExecute"')
    new = clone(node)
    new["status"] = {}
    admission.admit_update(NODES, new, node)
    assert new["status"] == node["status"]


def test_event() -> None:
    ev = {"metadata": meta("e1"), "involvedObject": {"kind": "Job", "namespace": "other", "name": "x"}}
    msg = invalid_message(admission.admit_create, EVENTS, ev)
    assert msg == 'Event "e1" is invalid: involvedObject.namespace: Invalid value: "other": does not match event.namespace'
    ev["involvedObject"]["namespace"] = "default"
    created(EVENTS, ev)


def test_lease() -> None:
    msg = invalid_message(admission.admit_create, LEASES, {"metadata": meta("l"), "spec": {"leaseDurationSeconds": 0}})
    assert msg == 'Lease.coordination.k8s.io "l" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0'


@pytest.mark.parametrize(("text", "error"), [
    ("1,3-5,7", None),
    ("a", 'cannot convert string to integer for index: "a"'),
    ("9", 'too large index: "9"'),
    ("3-1", "non-increasing order, previous: 3, current: 1"),
    ("1,1", "non-increasing order, previous: 1, current: 1"),
    ("1-2-3", "the fragment \"1-2-3\" violates the requirement that an index interval can have at most two parts "
              "separated by '-'"),
])
def test_interval_parse(text: str, error: str | None) -> None:
    if error is None:
        assert intervals.validate_format(text, 8) == 5
    else:
        with pytest.raises(intervals.IntervalError) as exc:
            intervals.validate_format(text, 8)
        assert str(exc.value) == error


def test_interval_format_and_helpers() -> None:
    assert intervals.format_indexes([0, 1]) == "0,1"
    assert intervals.format_indexes([7, 1, 3, 4, 5]) == "1,3-5,7"
    assert intervals.add_index("1,3-5,7", 6) == "1,3-7"
    assert intervals.add_index("", 0) == "0"
    assert intervals.add_index("0", 1) == "0,1"
    assert intervals.count("1,3-5,7") == 5
    assert intervals.index_set("0,2-3") == {0, 2, 3}
    assert intervals.parse_lenient("x,2-9", 5) == [(2, 4)]
    assert intervals.contains("1,3-5", 4) and not intervals.contains("1,3-5", 2)
    assert intervals.overlap_error("0-2", "3", 5) is None


def test_quantity() -> None:
    assert cpu_millis("500m") == 500
    assert cpu_millis("1.5") == 1500
    assert cpu_millis(2) == 2000
    assert memory_bytes("128Mi") == 128 * 2**20
    assert memory_bytes("1G") == 10**9
    assert memory_bytes("1e3") == 1000
    assert parse_quantity("0.1") * 10 == 1
    for bad in ("", "abc", "1.2.3", "5Q", "Mi"):
        with pytest.raises(QuantityError):
            parse_quantity(bad)
