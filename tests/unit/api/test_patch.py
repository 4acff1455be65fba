"""JSON patch, merge patch and strategic merge patch, with kubectl's real patch bodies."""

import copy

import pytest

from jobplane.api import registry
from jobplane.api.errors import StatusError
from jobplane.api.patch import apply_patch

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"


def _job() -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default",
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "old"},
                     "finalizers": ["batch.kubernetes.io/job-tracking"]},
        "spec": {
            "backoffLimit": 4,
            "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "pi", "image": "perl:5.34.0", "command": ["perl", "-e", "1"]}]}},
        },
    }


def _pod() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"team": "a", "tier": "web"}},
        "spec": {"containers": [
            {"name": "a", "image": "busybox:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "b", "image": "busybox:1"},
        ]},
    }


def test_smp_label_add_and_scalar_change_does_not_mutate_input() -> None:
    job = _job()
    before = copy.deepcopy(job)
    patch = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "new"},
                          "labels": {"team": "a"}}, "spec": {"backoffLimit": 5}}
    out = apply_patch(registry.JOBS, job, patch, SMP)
    assert job == before
    assert out["metadata"]["labels"] == {"team": "a"}
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "new"
    assert out["spec"]["backoffLimit"] == 5
    assert out["spec"]["template"] == before["spec"]["template"]


def test_smp_image_change_merges_container_by_name() -> None:
    patch = {"metadata": {"annotations": {"x": "y"}},
             "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "pi"}],
                                            "containers": [{"image": "perl:5.36.0", "name": "pi"}]}}}}
    out = apply_patch(registry.JOBS, _job(), patch, SMP)
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "pi", "image": "perl:5.36.0", "command": ["perl", "-e", "1"]}]
    assert "$setElementOrder/containers" not in out["spec"]["template"]["spec"]


def test_smp_pod_env_and_container_removal_from_kubectl() -> None:
    patch = {"metadata": {"annotations": {"k": "v"}, "labels": {"team": "b", "tier": None}},
             "spec": {"$setElementOrder/containers": [{"name": "a"}],
                      "containers": [{"$setElementOrder/env": [{"name": "B"}, {"name": "C"}],
                                      "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "A"}],
                                      "image": "busybox:2", "name": "a"},
                                     {"$patch": "delete", "name": "b"}]}}
    out = apply_patch(registry.PODS, _pod(), patch, SMP)
    assert out["metadata"]["labels"] == {"team": "b"}
    assert out["metadata"]["annotations"] == {"k": "v"}
    assert out["spec"]["containers"] == [
        {"name": "a", "image": "busybox:2", "env": [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]}]


def test_smp_job_controller_finalizer_removal() -> None:
    job = _job()
    job["metadata"]["finalizers"] = ["a", "batch.kubernetes.io/job-tracking", "b"]
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["batch.kubernetes.io/job-tracking"]}}
    out = apply_patch(registry.JOBS, job, patch, SMP)
    assert out["metadata"]["finalizers"] == ["a", "b"]
    # Same on a Pod (the pod-tracking finalizer), and a no-op when absent.
    pod = _pod()
    pod["metadata"]["finalizers"] = ["batch.kubernetes.io/job-tracking"]
    assert apply_patch(registry.PODS, pod, patch, SMP)["metadata"]["finalizers"] == []
    assert "finalizers" not in apply_patch(registry.PODS, _pod(), patch, SMP)["metadata"]


def test_smp_primitive_merge_list_is_a_union_and_plain_lists_are_replaced() -> None:
    job = _job()
    out = apply_patch(registry.JOBS, job, {"metadata": {"finalizers": ["x", "batch.kubernetes.io/job-tracking"]}}, SMP)
    assert out["metadata"]["finalizers"] == ["x", "batch.kubernetes.io/job-tracking"]
    out = apply_patch(registry.JOBS, job, {"metadata": {"finalizers": ["x"]}}, SMP)
    assert out["metadata"]["finalizers"] == ["x", "batch.kubernetes.io/job-tracking"]
    out = apply_patch(registry.JOBS, job, {"spec": {"template": {"spec": {"containers": [
        {"name": "pi", "command": ["echo"]}]}}}}, SMP)
    assert out["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo"]
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "perl:5.34.0"


def test_smp_new_container_is_appended_and_owner_refs_merge_on_uid() -> None:
    job = _job()
    job["metadata"]["ownerReferences"] = [{"uid": "1", "name": "a", "kind": "CronJob", "apiVersion": "batch/v1"}]
    patch = {"metadata": {"ownerReferences": [{"uid": "2", "name": "b", "kind": "CronJob", "apiVersion": "batch/v1"},
                                              {"uid": "1", "controller": True}]},
             "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "x"}]}}}}
    out = apply_patch(registry.JOBS, job, patch, SMP)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["side", "pi"]
    refs = {r["uid"]: r for r in out["metadata"]["ownerReferences"]}
    assert refs["1"]["controller"] is True and refs["1"]["name"] == "a"
    assert refs["2"]["name"] == "b"


def test_smp_patch_directives_replace_and_delete() -> None:
    out = apply_patch(registry.PODS, _pod(), {"metadata": {"labels": {"$patch": "replace", "only": "x"}}}, SMP)
    assert out["metadata"]["labels"] == {"only": "x"}
    out = apply_patch(registry.PODS, _pod(), {"metadata": {"labels": {"$patch": "delete"}}}, SMP)
    assert out["metadata"]["labels"] == {}
    out = apply_patch(registry.PODS, _pod(), {"spec": {"containers": [{"$patch": "replace"},
                                                                      {"name": "z", "image": "i"}]}}, SMP)
    assert out["spec"]["containers"] == [{"name": "z", "image": "i"}]


def test_smp_retain_keys_clears_other_keys() -> None:
    pod = _pod()
    pod["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    patch = {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}}
    out = apply_patch(registry.PODS, pod, patch, SMP)
    assert out["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/x"}}]
    with pytest.raises(StatusError) as err:
        apply_patch(registry.PODS, pod, {"spec": {"volumes": [
            {"name": "v", "$retainKeys": ["name"], "hostPath": {"path": "/x"}}]}}, SMP)
    assert err.value.code == 400 and err.value.message == "invalid patch format of retainKeys"


def test_smp_nulls_for_absent_keys_are_ignored_and_new_values_lose_directives() -> None:
    out = apply_patch(registry.PODS, _pod(), {"metadata": {"annotations": {"a": None, "b": "1"}, "nope": None}}, SMP)
    assert out["metadata"]["annotations"] == {"b": "1"}
    assert "nope" not in out["metadata"]


def test_smp_kind_without_schema_falls_back_to_merge_semantics() -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "l", "finalizers": ["a", "b"]},
             "spec": {"holderIdentity": "x", "leaseDurationSeconds": 15, "list": [1, 2]}}
    out = apply_patch(registry.LEASES, lease, {"spec": {"holderIdentity": "y", "leaseDurationSeconds": None,
                                                        "list": [3]},
                                               "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, SMP)
    assert out["spec"] == {"holderIdentity": "y", "list": [3]}
    assert out["metadata"]["finalizers"] == ["b"]


def test_smp_rejects_non_object_and_bad_directives() -> None:
    with pytest.raises(StatusError) as err:
        apply_patch(registry.JOBS, _job(), [1], SMP)
    assert err.value.code == 400
    with pytest.raises(StatusError) as err:
        apply_patch(registry.PODS, _pod(), {"metadata": {"labels": {"$patch": "bogus"}}}, SMP)
    assert err.value.code == 500


def test_merge_patch_rfc7386() -> None:
    job = _job()
    patch = {"metadata": {"labels": {"a": "b"}, "finalizers": None},
             "spec": {"backoffLimit": None, "template": {"spec": {"containers": [{"name": "n"}]}},
                      "new": {"x": 1, "y": None}}}
    out = apply_patch(registry.JOBS, job, patch, MERGE)
    assert out["metadata"]["labels"] == {"a": "b"}
    assert "finalizers" not in out["metadata"]
    assert "backoffLimit" not in out["spec"]
    assert out["spec"]["template"]["spec"] == {"restartPolicy": "Never", "containers": [{"name": "n"}]}
    assert out["spec"]["new"] == {"x": 1}
    assert job == _job()
    with pytest.raises(StatusError) as err:
        apply_patch(registry.JOBS, job, [1], MERGE)
    assert err.value.code == 400


def test_json_patch_operations() -> None:
    job = _job()
    ops = [
        {"op": "add", "path": "/metadata/labels", "value": {"a/b": "1"}},
        {"op": "add", "path": "/metadata/labels/c~1d", "value": "2"},
        {"op": "replace", "path": "/spec/backoffLimit", "value": 1},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "last"},
        {"op": "add", "path": "/metadata/finalizers/0", "value": "first"},
        {"op": "remove", "path": "/metadata/finalizers/1"},
        {"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"},
        {"op": "move", "from": "/metadata/labels/a~1b", "path": "/metadata/labels/moved"},
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "pi"},
    ]
    out = apply_patch(registry.JOBS, job, ops, JSONP)
    assert out["metadata"]["labels"] == {"c/d": "2", "name": "pi", "moved": "1"}
    assert out["metadata"]["finalizers"] == ["first", "last"]
    assert out["spec"]["backoffLimit"] == 1
    assert job == _job()


@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/spec/backoffLimit", "value": 5}],
    [{"op": "remove", "path": "/spec/nothing"}],
    [{"op": "replace", "path": "/spec/nothing", "value": 1}],
    [{"op": "add", "path": "/metadata/finalizers/9", "value": "x"}],
    [{"op": "frobnicate", "path": "/spec"}],
])
def test_json_patch_failures_are_422(ops: list) -> None:
    with pytest.raises(StatusError) as err:
        apply_patch(registry.JOBS, _job(), ops, JSONP)
    assert err.value.code == 422 and err.value.reason == "Invalid"
    assert err.value.message == "the server rejected our request due to an error in our request"


def test_json_patch_malformed_body_is_400_and_unknown_type_is_415() -> None:
    with pytest.raises(StatusError) as err:
        apply_patch(registry.JOBS, _job(), {"op": "add"}, JSONP)
    assert err.value.code == 400
    with pytest.raises(StatusError) as err:
        apply_patch(registry.JOBS, _job(), {}, "application/apply-patch+yaml")
    assert err.value.code == 415 and err.value.reason == "UnsupportedMediaType"
