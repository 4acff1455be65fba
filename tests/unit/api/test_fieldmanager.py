"""Field ownership (api.managedfields, api.fieldmanager): sets, FieldsV1, merge by list
type, conflicts with upstream's message, force, pruning, Update tracking."""

from __future__ import annotations

import pytest

from jobplane.api import errors
from jobplane.api import fieldmanager as fm
from jobplane.api import managedfields as mf

JOB = mf.schema_for("batch", "v1", "Job")
POD = mf.schema_for("", "v1", "Pod")
NOW = "2026-01-01T00:00:00Z"


def job(**spec):
    base = {"parallelism": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}}}
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "labels": {"a": "1"}}, "spec": base}


def apply(live, config, manager, force=False):
    return fm.apply(live, config, JOB, manager=manager, api_version="batch/v1", subresource=None, force=force,
                    now=NOW, has_status=True)


def owners(obj):
    return {(e["manager"], e["operation"]): mf.from_fields_v1(e["fieldsV1"]) for e in obj["metadata"]["managedFields"]}


def test_apply_set_and_fields_v1_shape():
    obj = apply(None, job(), "kubectl")
    [entry] = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == ("kubectl", "Apply", "batch/v1")
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:a": {}}},
        "f:spec": {"f:parallelism": {}, "f:template": {"f:spec": {"f:containers": {'k:{"name":"c"}': {
            ".": {}, "f:image": {}, "f:name": {},
            "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}},
            "f:restartPolicy": {}}}}}
    assert mf.path_string(("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"c"}', "f:image")) == \
        '.spec.template.spec.containers[name="c"].image'


def test_conflict_message_force_and_shared_ownership():
    live = apply(None, job(), "a")
    same = apply(live, job(), "b")  # same values: co-owned, no conflict
    assert ("f:spec", "f:parallelism") in owners(same)[("b", "Apply")]
    with pytest.raises(errors.StatusError) as exc:
        apply(same, job(parallelism=2), "b")
    # b already co-owns parallelism, so the conflict is with a only
    assert exc.value.code == 409
    assert exc.value.message == 'Apply failed with 1 conflict: conflict with "a": .spec.parallelism'
    assert exc.value.details == {"causes": [{"reason": "FieldManagerConflict", "message": 'conflict with "a"',
                                             "field": ".spec.parallelism"}]}
    forced = apply(same, job(parallelism=2), "b", force=True)
    assert forced["spec"]["parallelism"] == 2
    assert ("f:spec", "f:parallelism") not in owners(forced)[("a", "Apply")]


def test_conflicts_with_update_manager_list_every_field():
    created = {**job(), "metadata": {"name": "j", "labels": {"a": "1"}}}
    fm.track_update(None, created, JOB, manager="kubectl-create", api_version="batch/v1", subresource=None,
                    now=NOW, has_status=True)
    with pytest.raises(errors.StatusError) as exc:
        apply(created, job(parallelism=3, completions=2, template={"spec": {"restartPolicy": "Never", "containers": [
            {"name": "c", "image": "alpine", "ports": [{"containerPort": 80}]}]}}), "kubectl")
    assert exc.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-create" using batch/v1:\n'
        "- .spec.parallelism\n"
        '- .spec.template.spec.containers[name="c"].image')


def test_list_map_merge_keeps_other_managers_items_and_prunes_own():
    live = apply(None, job(), "a")
    two = job()
    two["metadata"].pop("labels")
    two["spec"]["template"]["spec"]["containers"] = [{"name": "side", "image": "busybox"}]
    merged = apply(live, two, "b")
    names = [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]]
    assert names == ["c", "side"]  # granular list-map: both managers' items
    # a stops applying its container: it goes (nobody else owns it); b's stays
    one = job()
    one["spec"]["template"]["spec"]["containers"] = []
    pruned = apply(merged, one, "a")
    assert [c["name"] for c in pruned["spec"]["template"]["spec"]["containers"]] == ["side"]
    # labels: a drops label "a", nobody else owns it -> removed from the object (and a label
    # another manager co-owns would stay: see the e2e test)
    nolabel = job()
    nolabel["metadata"]["labels"] = {"z": "9"}
    assert apply(pruned, nolabel, "a")["metadata"]["labels"] == {"z": "9"}


def test_atomic_and_set_lists():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["x"]},
           "spec": {"containers": [{"name": "c", "image": "i", "command": ["a", "b"]}]}}
    fields = mf.to_set(pod, POD)
    assert ("f:metadata", "f:finalizers", 'v:"x"') in fields  # merge strategy without key: a set
    # command is atomic: owned as one leaf
    assert ("f:spec", "f:containers", 'k:{"name":"c"}', "f:command") in fields
    merged = mf.merge({"spec": {"containers": [{"name": "c", "command": ["old"]}]}},
                      {"spec": {"containers": [{"name": "c", "command": ["new"]}]}}, POD)
    assert merged["spec"]["containers"][0]["command"] == ["new"]


def test_update_tracking_transfers_ownership_and_keeps_trees_shared():
    obj = apply(None, job(), "kubectl")
    new = {**obj, "spec": {**obj["spec"], "parallelism": 5}, "metadata": dict(obj["metadata"])}
    fm.track_update(obj, new, JOB, manager="kube-controller-manager", api_version="batch/v1",
                    subresource=None, now="2026-01-02T00:00:00Z", has_status=True)
    got = owners(new)
    assert got[("kube-controller-manager", "Update")] == {("f:spec", "f:parallelism")}
    assert ("f:spec", "f:parallelism") not in got[("kubectl", "Apply")]
    # the stored object's entries were not changed in place
    assert ("f:spec", "f:parallelism") in owners(obj)[("kubectl", "Apply")]
    # a status write owns only status; main-resource fields in it are not tracked
    st = {**new, "status": {"active": 1}, "metadata": dict(new["metadata"])}
    fm.track_update(new, st, JOB, manager="kube-controller-manager", api_version="batch/v1",
                    subresource="status", now=NOW, has_status=True)
    entry = next(e for e in st["metadata"]["managedFields"] if e.get("subresource") == "status")
    assert entry["fieldsV1"] == {"f:status": {"f:active": {}}}
    # an unchanged write keeps the entries as they are (no new time)
    again = {**st, "metadata": dict(st["metadata"])}
    fm.track_update(st, again, JOB, manager="x", api_version="batch/v1", subresource=None, now="later",
                    has_status=True)
    assert again["metadata"]["managedFields"] == st["metadata"]["managedFields"]


def test_tree_edits_match_set_algebra():
    paths = {("f:a",), ("f:b", "f:c"), ("f:b",), ("f:d", 'k:{"n":1}'), ("f:d", 'k:{"n":1}', "f:x")}
    tree = mf.to_fields_v1(paths)
    assert mf.from_fields_v1(tree) == paths
    shared = mf.to_fields_v1(paths)
    work, copied = dict(shared), set()
    mf.tree_remove(work, ("f:d", 'k:{"n":1}', "f:x"), copied)
    mf.tree_remove(work, ("f:b", "f:c"), copied)
    mf.tree_add(work, ("f:e", "f:f"), copied)
    assert mf.from_fields_v1(work) == (paths - {("f:d", 'k:{"n":1}', "f:x"), ("f:b", "f:c")}) | {("f:e", "f:f")}
    assert mf.from_fields_v1(shared) == paths  # copy on write


def test_manager_defaults_and_validation():
    assert fm.default_manager("kubectl/v1.32.4 (linux/amd64) kubernetes/abc") == "kubectl"
    assert fm.default_manager("OpenAPI-Generator/31.0.0/python") == "OpenAPI-Generator"
    with pytest.raises(errors.StatusError) as exc:
        fm.validate_manager("x" * 129)
    assert exc.value.code == 422
