"""ConfigMap and Secret references as the agent resolves them for env and envFrom, and the
retryable errors that keep a container waiting."""

from __future__ import annotations

import base64

import pytest

from jobplane.agent import podconfig
from jobplane.agent.spec import ContainerConfigError, build_env

POD = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": []}}
CM = {"data": {"greeting": "hi", "bad key": "x"}, "binaryData": {"blob": base64.b64encode(b"\x00\x01").decode()}}
SECRET = {"data": {"user": base64.b64encode(b"ada").decode()}}


def test_env_and_env_from_resolve_from_sources() -> None:
    container = {"envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}, {"secretRef": {"name": "s"}}],
                 "env": [{"name": "G", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "greeting"}}},
                         {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}},
                         {"name": "MSG", "value": "$(G) $(user)"}]}
    env = build_env(POD, container, sources={("configmap", "cm"): CM, ("secret", "s"): SECRET,
                                             ("secret", "nope"): None})
    assert env["CM_greeting"] == "hi" and env["CM_bad key"] == "x" and env["user"] == "ada"
    assert env["G"] == "hi" and "OPT" not in env and env["MSG"] == "hi ada"


@pytest.mark.parametrize(("container", "message"), [
    ({"envFrom": [{"configMapRef": {"name": "cm"}}]}, 'configmap "cm" not found'),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}, 'secret "s" not found'),
])
def test_missing_objects_are_retryable(container, message) -> None:
    with pytest.raises(ContainerConfigError) as info:
        build_env(POD, container, sources={("configmap", "cm"): None, ("secret", "s"): None})
    assert info.value.retry and info.value.reason == "CreateContainerConfigError" and info.value.message == message


def test_missing_key_names_the_object() -> None:
    container = {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope"}}}]}
    with pytest.raises(ContainerConfigError) as info:
        build_env(POD, container, sources={("configmap", "cm"): CM})
    assert info.value.message == "couldn't find key nope in ConfigMap ns/cm" and info.value.retry


def test_refs_cover_init_and_app_containers() -> None:
    pod = {"spec": {"initContainers": [{"envFrom": [{"secretRef": {"name": "a"}}]}],
                    "containers": [{"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "b"}}}]}],
                    "volumes": [{"name": "v", "configMap": {"name": "c"}}]}}
    assert podconfig.refs(pod) == {("secret", "a"), ("configmap", "b")}
