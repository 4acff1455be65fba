"""The RuntimeClass admission plugin (upstream ``plugin/pkg/admission/runtimeclass``): a pod
that names a ``runtimeClassName`` gets its class's ``overhead`` and ``scheduling`` (node
selector merged, tolerations added), and is refused when the class does not exist."""

from __future__ import annotations

from typing import Any

from jobplane.api import errors
from jobplane.api.registry import RUNTIMECLASSES
from jobplane.storage.base import KeyNotFound, Store

Obj = dict[str, Any]


def _forbidden(pod: Obj, message: str) -> errors.StatusError:
    name = (pod.get("metadata") or {}).get("name") or ""
    return errors.StatusError(403, "Forbidden", f'pods "{name}" is forbidden: {message}',
                              {"name": name, "kind": "pods"})


async def admit_pod(store: Store, pod: Obj) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict) or not spec.get("runtimeClassName"):
        return
    name = str(spec["runtimeClassName"])
    try:
        rc = await store.get(RUNTIMECLASSES.storage_key(None, name))
    except KeyNotFound:
        raise _forbidden(pod, f'pod rejected: RuntimeClass "{name}" not found') from None
    fixed = (rc.get("overhead") or {}).get("podFixed")
    if fixed:
        if spec.get("overhead") and spec["overhead"] != fixed:
            raise _forbidden(pod, "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
        spec["overhead"] = dict(fixed)
    elif spec.get("overhead"):
        raise _forbidden(pod, "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")
    scheduling = rc.get("scheduling") or {}
    selector = dict(spec.get("nodeSelector") or {})
    for key, value in (scheduling.get("nodeSelector") or {}).items():
        if key in selector and selector[key] != value:
            raise _forbidden(pod, f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = {value}; "
                                  f"pod.spec.nodeSelector[{key}] = {selector[key]}")
        selector[key] = value
    if selector:
        spec["nodeSelector"] = selector
    tolerations = list(spec.get("tolerations") or ())
    for toleration in scheduling.get("tolerations") or ():
        if toleration not in tolerations:
            tolerations.append(toleration)
    if tolerations:
        spec["tolerations"] = tolerations
