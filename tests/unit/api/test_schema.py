"""Unknown-field pruning against the upstream schemas."""

from pathlib import Path

import yaml

from jobplane.api import registry
from jobplane.api.schema import prune_unknown_fields

BOGUS = Path("/work/shared/kubectl-wire/bogus.yaml")


def _job() -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "labels": {"any/key": "v"}, "annotations": {"x": "y"}},
        "spec": {
            "backoffLimit": 4,
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "pi",
                        "image": "perl",
                        "resources": {"limits": {"cpu": "500m", "memory": 1024}},
                        "ports": [{"containerPort": 80}],
                        "livenessProbe": {"httpGet": {"port": "http", "path": "/"}},
                    }],
                },
            },
        },
    }


def test_bogus_manifest_from_kubectl_capture() -> None:
    obj = yaml.safe_load(BOGUS.read_text()) if BOGUS.exists() else {**_job(), "spec": {**_job()["spec"], "bogusField": 1}}
    assert prune_unknown_fields(registry.JOBS, obj) == ["spec.bogusField"]
    assert "bogusField" not in obj["spec"]
    assert obj["spec"]["backoffLimit"] == 4


def test_clean_object_is_untouched() -> None:
    obj = _job()
    assert prune_unknown_fields(registry.JOBS, obj) == []
    assert obj == _job()


def test_nested_list_and_metadata_paths_in_document_order() -> None:
    obj = _job()
    obj["metadata"]["bogus"] = True
    obj["spec"]["template"]["spec"]["containers"][0]["foo"] = 1
    obj["spec"]["template"]["spec"]["containers"].append({"name": "b", "image": "x", "bar": {"deep": 1}})
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["nope"] = 2
    obj["status"] = {"succeeded": 1, "weird": 1}
    assert prune_unknown_fields(registry.JOBS, obj) == [
        "metadata.bogus",
        "spec.template.spec.containers[0].ports[0].nope",
        "spec.template.spec.containers[0].foo",
        "spec.template.spec.containers[1].bar",
        "status.weird",
    ]
    assert obj["spec"]["template"]["spec"]["containers"][1] == {"name": "b", "image": "x"}
    assert obj["status"] == {"succeeded": 1}


def test_leaves_maps_and_free_form_fields() -> None:
    obj = _job()
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:x": {}}}}]
    obj["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/os": "linux"}
    assert prune_unknown_fields(registry.JOBS, obj) == []
    assert obj["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {"f:x": {}}}


def test_other_kinds_and_kinds_without_schema() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i", "x": 1}]}}
    assert prune_unknown_fields(registry.PODS, pod) == ["spec.containers[0].x"]
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]},
          "extra": 1}
    assert prune_unknown_fields(registry.NAMESPACES, ns) == ["extra"]
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
          "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}},
                   "oops": 1}}
    assert prune_unknown_fields(registry.CRONJOBS, cj) == ["spec.oops"]
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
             "spec": {"holderIdentity": "a", "whatever": 1}}
    assert prune_unknown_fields(registry.LEASES, lease) == []
    assert lease["spec"]["whatever"] == 1
