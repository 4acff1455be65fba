"""``patch.touched`` and ``decode.check_touched``: a patched object is type-checked only where
the patch changed it, with the same error a whole-object check gives."""

from __future__ import annotations

import copy

import pytest

from jobplane.api import decode
from jobplane.api.patch import JSON_PATCH, MERGE_PATCH, apply_patch, touched
from jobplane.api.registry import JOBS

JOB = {"apiVersion": "batch/v1", "kind": "Job",
       "metadata": {"name": "j", "namespace": "ns", "resourceVersion": "7", "labels": {"a": "b"},
                    "finalizers": ["x", "y"],
                    "managedFields": [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1",
                                       "fieldsV1": {"f:spec": {"f:parallelism": {}}}}]},
       "spec": {"parallelism": 2, "completions": 4,
                "template": {"spec": {"restartPolicy": "Never",
                                      "containers": [{"name": "c", "image": "i", "args": ["1"]}]}}},
       "status": {"active": 1, "conditions": [{"type": "Complete", "status": "False"}]}}


def outcome(fn, *args) -> str | None:
    try:
        fn(*args)
    except decode.DecodeError as exc:
        return f"{exc.field_path} {exc.struct} {exc}"
    return None


PATCHES = [
    (MERGE_PATCH, {"status": {"active": "1"}}),
    (MERGE_PATCH, {"status": {"conditions": [{"type": "Failed", "status": 3}]}}),
    (MERGE_PATCH, {"spec": {"parallelism": 1.5, "completions": "x"}}),
    (MERGE_PATCH, {"metadata": {"labels": {"c": 1}}}),
    (MERGE_PATCH, {"spec": {"template": {"spec": {"containers": [{"name": "c", "args": [1]}]}}}}),
    (MERGE_PATCH, {"status": {"active": 2, "succeeded": 1}}),
    (MERGE_PATCH, {"spec": "oops"}),
    (JSON_PATCH, [{"op": "replace", "path": "/spec/parallelism", "value": "5"}]),
    (JSON_PATCH, [{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": 2}]),
    (JSON_PATCH, [{"op": "test", "path": "/metadata/finalizers/0", "value": "x"},
                  {"op": "remove", "path": "/metadata/finalizers/0"}]),
    (JSON_PATCH, [{"op": "add", "path": "/metadata/annotations", "value": {"k": 5}}]),
    (JSON_PATCH, [{"op": "move", "from": "/status/active", "path": "/status/failed"}]),
    (JSON_PATCH, [{"op": "copy", "from": "/metadata/name", "path": "/status/ready"}]),
    (JSON_PATCH, [{"op": "remove", "path": "/status"}]),
]


@pytest.mark.parametrize(("patch_type", "patch"), PATCHES)
def test_touched_check_fails_exactly_as_the_whole_object_check(patch_type, patch):
    new = apply_patch(JOBS, JOB, patch, patch_type)
    tree = touched(patch, patch_type, new)
    if tree is None:  # the service checks the whole object
        assert patch == [{"op": "remove", "path": "/status"}]
        return
    whole = outcome(decode.check, "batch", "v1", "Job", copy.deepcopy(new))
    part = outcome(decode.check_touched, "batch", "v1", "Job", copy.deepcopy(new), tree)
    assert part == whole


def test_touched_trees():
    assert touched({"status": {"phase": "x"}, "metadata": None}, MERGE_PATCH, {}) == \
        {"status": {"phase": True}, "metadata": True}
    new = apply_patch(JOBS, JOB, [{"op": "remove", "path": "/metadata/finalizers/0"}], JSON_PATCH)
    assert touched([{"op": "remove", "path": "/metadata/finalizers/0"}], JSON_PATCH, new) == \
        {"metadata": {"finalizers": True}}
    # a key that is gone: its object is checked whole; the whole object replaced: unknown
    assert touched([{"op": "remove", "path": "/spec/completions"}], JSON_PATCH, {"spec": {}}) == {"spec": True}
    assert touched([{"op": "replace", "path": "", "value": {}}], JSON_PATCH, {}) is None
    assert touched({"spec": {}}, "application/strategic-merge-patch+json", {}) is None
