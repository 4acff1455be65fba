"""kubectl apply's three-way patch and manifest loading."""

from __future__ import annotations

import json

import pytest

from jobplane.cli import applypatch, manifests
from jobplane.cli.applypatch import LAST_APPLIED

MANIFEST = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "labels": {"a": "1"}},
            "spec": {"backoffLimit": 4, "template": {"spec": {
                "containers": [{"name": "pi", "image": "perl", "command": ["perl", "-e", "1"]}],
                "restartPolicy": "Never"}}}}


def live_from(manifest: dict) -> dict:
    """What the server holds after creating the manifest: defaults added everywhere."""
    live = json.loads(json.dumps(applypatch.with_last_applied(manifest)))
    live["metadata"].update(uid="u", resourceVersion="5", creationTimestamp="2024-01-01T00:00:00Z")
    live["spec"].update(parallelism=1, completions=1, suspend=False)
    c = live["spec"]["template"]["spec"]["containers"][0]
    c.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log", resources={})
    live["status"] = {"succeeded": 1}
    return live


def test_last_applied_annotation_is_sorted_compact_json() -> None:
    obj = applypatch.with_last_applied(MANIFEST)
    text = obj["metadata"]["annotations"][LAST_APPLIED]
    assert text.endswith("\n")
    assert json.loads(text) == MANIFEST
    assert text.startswith('{"apiVersion":"batch/v1","kind":"Job","metadata":')
    assert "annotations" not in MANIFEST["metadata"]  # input untouched


def test_reapply_same_manifest_is_unchanged() -> None:
    assert applypatch.apply_patch(MANIFEST, live_from(MANIFEST)) == {}


def test_changed_field_and_removed_field() -> None:
    live = live_from(MANIFEST)
    new = json.loads(json.dumps(MANIFEST))
    new["spec"]["backoffLimit"] = 6
    del new["metadata"]["labels"]
    patch = applypatch.apply_patch(new, live)
    assert patch["spec"] == {"backoffLimit": 6}
    assert patch["metadata"]["labels"] is None
    assert json.loads(patch["metadata"]["annotations"][LAST_APPLIED]) == new
    assert "template" not in patch["spec"]


def test_changed_list_is_sent_whole_and_dropped_named_element_deleted() -> None:
    two = json.loads(json.dumps(MANIFEST))
    two["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    live = live_from(two)
    one = json.loads(json.dumps(MANIFEST))
    one["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:2"
    containers = applypatch.apply_patch(one, live)["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "pi", "image": "perl:2", "command": ["perl", "-e", "1"]},
                          {"$patch": "delete", "name": "side"}]


def test_contained_numbers_and_bools() -> None:
    assert applypatch.contained({"a": 1}, {"a": 1.0, "b": 2})
    assert not applypatch.contained({"a": True}, {"a": 1})
    assert not applypatch.contained([1, 2], [1])


def test_manifests_multi_document_and_list(tmp_path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\n---\n"
                 "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n")
    (tmp_path / "j.json").write_text(json.dumps(MANIFEST))
    (tmp_path / "ignored.txt").write_text("nope")
    docs = manifests.load([str(tmp_path)])
    assert [d["metadata"]["name"] for _, d in docs] == ["pi", "a", "b"]
    assert docs[0][0].endswith("j.json")


def test_manifest_errors(tmp_path) -> None:
    with pytest.raises(manifests.ManifestError, match="does not exist"):
        manifests.load([str(tmp_path / "missing.yaml")])
    with pytest.raises(manifests.ManifestError, match="kind not set"):
        manifests.parse_documents("apiVersion: v1\nmetadata: {name: x}\n", "x.yaml")
    with pytest.raises(manifests.ManifestError):
        manifests.parse_documents("a: [\n", "bad.yaml")
