"""Builders shared by the admission tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from jobplane.api import admission
from jobplane.api.errors import StatusError
from jobplane.api.registry import ResourceInfo


def meta(name: str, namespace: str | None = "default", uid: str = "uid-1") -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "uid": uid, "generation": 1,
                         "creationTimestamp": "2024-01-01T00:00:00Z", "resourceVersion": "1"}
    if namespace:
        m["namespace"] = namespace
    return m


def job(name: str = "pi", template_labels: dict[str, str] | None = None, restart: str | None = "Never",
        **spec: Any) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if restart is not None:
        pod_spec["restartPolicy"] = restart
    template: dict[str, Any] = {"spec": pod_spec}
    if template_labels is not None:
        template["metadata"] = {"labels": template_labels}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(name),
            "spec": {"template": template, **spec}}


def pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name), "spec": body}


def invalid_message(fn: Any, *args: Any) -> str:
    with pytest.raises(StatusError) as exc:
        fn(*args)
    assert exc.value.code == 422
    assert exc.value.reason == "Invalid"
    return exc.value.message


def created(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    admission.admit_create(info, obj)
    return obj


def clone(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)
