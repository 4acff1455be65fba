import pytest

from jobplane.agent.spec import (
    ContainerConfigError,
    build_argv,
    build_env,
    expand,
    field_ref_value,
    resolve_executable,
)
from jobplane.api.pods import qos_class
from jobplane.api.resources import pod_requests

POD = {"metadata": {"name": "pi-0-abc", "namespace": "ns1", "uid": "u-1",
                    "labels": {"app": "pi"},
                    "annotations": {"batch.kubernetes.io/job-completion-index": "3"}},
       "spec": {"nodeName": "n1"}, "status": {}}


@pytest.mark.parametrize("text,want", [
    ("$(A)", "x"),
    ("pre-$(A)-post", "pre-x-post"),
    ("$(MISSING)", "$(MISSING)"),
    ("$$(A)", "$(A)"),
    ("$$", "$"),
    ("a$b", "a$b"),
    ("$(A", "$(A"),
    ("$", "$"),
    ("$(A)$(B)", "xy"),
])
def test_expand(text, want):
    assert expand(text, {"A": "x", "B": "y"}) == want


def test_field_refs():
    assert field_ref_value(POD, "metadata.name") == "pi-0-abc"
    assert field_ref_value(POD, "metadata.namespace") == "ns1"
    assert field_ref_value(POD, "metadata.uid") == "u-1"
    assert field_ref_value(POD, "spec.nodeName") == "n1"
    assert field_ref_value(POD, "metadata.labels['app']") == "pi"
    assert field_ref_value(POD, "metadata.annotations['batch.kubernetes.io/job-completion-index']") == "3"
    assert field_ref_value(POD, "status.podIP") == "127.0.0.1"
    with pytest.raises(ContainerConfigError):
        field_ref_value(POD, "spec.bogus")


def test_env_order_and_expansion():
    container = {"name": "c", "env": [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "$(A)-$(C)"},  # C is defined later: stays literal
        {"name": "C", "value": "3"},
        {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
        {"name": "HOMEX", "value": "$(HOME)/x"},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
    ], "resources": {"limits": {"memory": "64Mi"}}}
    env = build_env(POD, container, {"HOME": "/h"}, {"EXTRA": "e"})
    assert env["B"] == "1-$(C)"
    assert env["C"] == "3"
    assert env["JOB_COMPLETION_INDEX"] == "3"
    assert env["HOMEX"] == "/h/x"
    assert env["EXTRA"] == "e"
    assert env["MEM"] == "64"


def test_env_secret_ref_is_config_error_unless_optional():
    c = {"name": "c", "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    with pytest.raises(ContainerConfigError) as err:
        build_env(POD, c)
    assert err.value.reason == "CreateContainerConfigError"
    c["env"][0]["valueFrom"]["secretKeyRef"]["optional"] = True
    assert "S" not in build_env(POD, c)


def test_argv_expansion_and_missing_command():
    c = {"name": "c", "command": ["echo", "$(A)"], "args": ["$$(A)", "$(A)b"]}
    assert build_argv(c, {"A": "x"}) == ["echo", "x", "$(A)", "xb"]
    # args without command are the command line (an image without ENTRYPOINT runs them)
    assert build_argv({"name": "c", "image": "busybox", "args": ["echo", "$(A)"]}, {"A": "hi"}) == ["echo", "hi"]
    with pytest.raises(ContainerConfigError) as err:
        build_argv({"name": "c", "image": "perl"}, {})
    assert err.value.reason == "StartError"
    assert "command" in err.value.message


def test_resolve_executable(tmp_path):
    assert resolve_executable("sh", {"PATH": "/usr/bin:/bin"}, None).endswith("/sh")
    with pytest.raises(ContainerConfigError) as err:
        resolve_executable("no-such-prog-xyz", {"PATH": "/usr/bin"}, None)
    assert "executable file not found in $PATH" in err.value.message
    prog = tmp_path / "run.sh"
    prog.write_text("#!/bin/sh\n")
    prog.chmod(0o755)
    assert resolve_executable("./run.sh", {}, str(tmp_path)) == str(prog)


def test_pod_requests_and_qos():
    pod = {"spec": {"containers": [
        {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
        {"name": "b", "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}},
    ], "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}]}}
    req = pod_requests(pod)
    assert req["cpu"] == 2.0  # max(init 2, app 1.5)
    assert req["memory"] == 2**30
    assert req["nvidia.com/gpu"] == 1
    assert qos_class(pod) == "Burstable"
    assert qos_class({"spec": {"containers": [{"name": "a"}]}}) == "BestEffort"
    g = {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}
    assert qos_class(g) == "Guaranteed"
