"""Pod admission: defaults, strategy, validation, updates and binding."""

from __future__ import annotations

from _admission_helpers import clone, created, invalid_message, pod

from jobplane.api import admission
from jobplane.api.defaults import image_tag
from jobplane.api.registry import PODS


def test_defaults_and_status() -> None:
    p = created(PODS, pod(containers=[{"name": "c", "image": "busybox",
                                       "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}]))
    spec = p["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["enableServiceLinks"] is True
    assert spec["serviceAccountName"] == "default"
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert c["resources"]["requests"] == {"cpu": "500m", "memory": "64Mi"}
    assert p["status"] == {"phase": "Pending", "qosClass": "Guaranteed"}
    assert created(PODS, pod())["status"]["qosClass"] == "BestEffort"


def test_image_tags() -> None:
    assert image_tag("busybox") == "latest"
    assert image_tag("busybox:1.36") == "1.36"
    assert image_tag("localhost:5000/x") == "latest"
    assert image_tag("x@sha256:abc") == ""


def test_containers_required_and_names() -> None:
    msg = invalid_message(admission.admit_create, PODS, pod(containers=[]))
    assert msg == 'Pod "p" is invalid: spec.containers: Required value'
    msg = invalid_message(admission.admit_create, PODS,
                          pod(containers=[{"name": "c", "image": "a"}, {"name": "c"}]))
    assert msg == ('Pod "p" is invalid: [spec.containers[1].image: Required value, '
                   'spec.containers[1].name: Duplicate value: "c"]')
    msg = invalid_message(admission.admit_create, PODS, pod(containers=[{"name": "C_1", "image": "a"}]))
    assert msg.startswith('Pod "p" is invalid: spec.containers[0].name: Invalid value: "C_1": a lowercase RFC 1123')


def test_volumes_and_mounts() -> None:
    body = pod(volumes=[{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}},
                        {"name": "b", "emptyDir": {}, "hostPath": {"path": "/x"}}],
               containers=[{"name": "c", "image": "x",
                            "volumeMounts": [{"name": "a", "mountPath": "/d"}, {"name": "z", "mountPath": "/d"}]}])
    msg = invalid_message(admission.admit_create, PODS, body)
    assert msg == (
        'Pod "p" is invalid: [spec.volumes[1].name: Duplicate value: "a", '
        "spec.volumes[2].hostPath: Forbidden: may not specify more than 1 volume type, "
        'spec.containers[0].volumeMounts[1].name: Not found: "z", '
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/d": must be unique]')


def test_volume_without_source_defaults_to_empty_dir() -> None:
    p = created(PODS, pod(volumes=[{"name": "data"}]))
    assert p["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_resources() -> None:
    body = pod(containers=[{"name": "c", "image": "x", "resources": {
        "limits": {"cpu": "1", "foo": "1"}, "requests": {"cpu": "2", "memory": "abc"}}}])
    msg = invalid_message(admission.admit_create, PODS, body)
    assert msg == (
        'Pod "p" is invalid: [spec.containers[0].resources.limits[foo]: Invalid value: "foo": must be a standard '
        'resource for containers, spec.containers[0].resources.requests: Invalid value: "2": must be less than or '
        'equal to cpu limit of 1, spec.containers[0].resources.requests[memory]: Invalid value: "abc": quantities '
        "must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', "
        # requests default from limits (SetDefaults_Pod), so the bad name is reported twice.
        'spec.containers[0].resources.requests[foo]: Invalid value: "foo": must be a standard resource for containers]')


def test_restart_policy_and_deadline() -> None:
    msg = invalid_message(admission.admit_create, PODS, pod(restartPolicy="Sometimes", activeDeadlineSeconds=0))
    assert msg == ('Pod "p" is invalid: [spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
                   '"Always", "OnFailure", "Never", spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 '
                   "and 2147483647, inclusive]")


def test_env() -> None:
    body = pod(containers=[{"name": "c", "image": "x", "env": [
        {"name": ""}, {"name": "A=B"}, {"name": "X", "value": "v", "valueFrom": {"fieldRef": {"fieldPath": "spec.foo"}}},
        {"name": "IDX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}},
    ]}])
    msg = invalid_message(admission.admit_create, PODS, body)
    assert msg == (
        'Pod "p" is invalid: [spec.containers[0].env[0].name: Required value, '
        'spec.containers[0].env[1].name: Invalid value: "A=B": a valid environment variable name must consist only '
        "of printable ASCII characters other than '=', "
        'spec.containers[0].env[2].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.foo": supported values: '
        '"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", '
        '"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs", '
        'spec.containers[0].env[2].valueFrom: Invalid value: "": may not be specified when `value` is not empty]')


def test_metadata_rules() -> None:
    body = pod()
    body["metadata"]["labels"] = {"bad key!": "v", "k": "-bad-"}
    body["metadata"]["finalizers"] = ["custom"]
    body["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": "", "uid": "u"}]
    msg = invalid_message(admission.admit_create, PODS, body)
    assert 'metadata.labels: Invalid value: "bad key!": name part must consist of' in msg
    assert 'metadata.labels: Invalid value: "-bad-": a valid label must be an empty string' in msg
    assert 'metadata.ownerReferences.name: Invalid value: "": name must not be empty' in msg
    assert ('metadata.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it '
            "fully qualified") in msg


def test_update_rules_and_binding() -> None:
    old = created(PODS, pod())
    bound = clone(old)
    bound["spec"]["nodeName"] = "node-1"
    admission.admit_update(PODS, bound, old)
    assert bound["metadata"]["generation"] == 1  # binding is not a spec change the user made
    rebind = clone(bound)
    rebind["spec"]["nodeName"] = "node-2"
    msg = invalid_message(admission.admit_update, PODS, rebind, bound)
    assert msg.startswith('Pod "p" is invalid: spec: Forbidden: pod updates may not change fields other than '
                          "`spec.containers[*].image`")
    img = clone(bound)
    img["spec"]["containers"][0]["image"] = "busybox:2"
    img["spec"]["activeDeadlineSeconds"] = 10
    admission.admit_update(PODS, img, bound)
    assert img["metadata"]["generation"] == 2
    up = clone(img)
    up["spec"]["activeDeadlineSeconds"] = 20
    msg = invalid_message(admission.admit_update, PODS, up, img)
    assert msg == ('Pod "p" is invalid: spec.activeDeadlineSeconds: Invalid value: 20: '
                   "must be less than or equal to previous value")


def test_status_update_keeps_spec_and_terminated_state() -> None:
    old = created(PODS, pod(restartPolicy="Never"))
    old["status"] = {"phase": "Running", "qosClass": "BestEffort",
                     "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 1}}}]}
    new = clone(old)
    new["spec"]["nodeName"] = "elsewhere"
    new["status"] = {"phase": "Failed", "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 1}}}]}
    admission.admit_status_update(PODS, new, old)
    assert "nodeName" not in new["spec"]
    assert new["status"]["qosClass"] == "BestEffort"
    back = clone(old)
    back["status"]["containerStatuses"][0]["state"] = {"running": {}}
    msg = invalid_message(admission.admit_status_update, PODS, back, old)
    assert msg == ('Pod "p" is invalid: status.containerStatuses[0].state: Forbidden: '
                   "may not be transitioned to non-terminated state")


def test_probe_defaults() -> None:
    p = created(PODS, pod(containers=[{"name": "c", "image": "busybox",
                                       "readinessProbe": {"grpc": {"port": 9090}},
                                       "livenessProbe": {"httpGet": {"port": 80}}}]))
    c = p["spec"]["containers"][0]
    # the service defaults to "" (+default=""): kubectl describe dereferences it
    assert c["readinessProbe"]["grpc"] == {"port": 9090, "service": ""}
    assert c["readinessProbe"]["periodSeconds"] == 10 and c["readinessProbe"]["failureThreshold"] == 3
    assert c["livenessProbe"]["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}
