"""The ConfigMaps and Secrets a pod's container environments name (``env`` and
``envFrom``), as kubelet reads them before it starts a container: fetched once per attempt,
then used by the pure env builder (``spec.build_env``).

A missing object or key is not a failure: kubelet keeps the container waiting
(``CreateContainerConfigError``) and tries again until it appears. (Volumes are
``projection``'s: they wait with ``FailedMount`` events.)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Any

from jobplane.api.errors import StatusError

Obj = dict[str, Any]
Key = tuple[str, str]  # ("configmap" | "secret", name)
Sources = dict[Key, Obj | None]

_RESOURCE = {"configmap": "configmaps", "secret": "secrets"}


def _container_refs(c: Obj) -> Iterator[Key]:
    for src in c.get("envFrom") or ():
        if src.get("configMapRef"):
            yield "configmap", src["configMapRef"].get("name") or ""
        if src.get("secretRef"):
            yield "secret", src["secretRef"].get("name") or ""
    for item in c.get("env") or ():
        vf = item.get("valueFrom") or {}
        if vf.get("configMapKeyRef"):
            yield "configmap", vf["configMapKeyRef"].get("name") or ""
        if vf.get("secretKeyRef"):
            yield "secret", vf["secretKeyRef"].get("name") or ""


def refs(pod: Obj) -> set[Key]:
    spec = pod.get("spec") or {}
    out: set[Key] = set()
    for c in list(spec.get("initContainers") or ()) + list(spec.get("containers") or ()):
        out.update(_container_refs(c))
    return out


async def fetch(client: Any, pod: Obj) -> Sources:
    """Every ConfigMap and Secret the environments name, None where it does not exist (yet)."""
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    found: Sources = {}
    for kind, name in sorted(refs(pod)):
        try:
            found[(kind, name)] = await client.get(_RESOURCE[kind], name, ns)
        except StatusError as exc:
            if exc.code != 404:
                raise
            found[(kind, name)] = None
    return found


def values(obj: Obj, kind: str) -> dict[str, bytes]:
    """Key -> content of a ConfigMap (data and binaryData) or a Secret (data, base64)."""
    out: dict[str, bytes] = {}
    if kind == "configmap":
        for key, text in (obj.get("data") or {}).items():
            out[key] = str(text if text is not None else "").encode()
        encoded = obj.get("binaryData") or {}
    else:
        encoded = obj.get("data") or {}
    for key, raw in encoded.items():
        try:
            out[key] = base64.b64decode(raw or "")
        except (binascii.Error, ValueError):
            out[key] = b""
    return out


def missing_message(kind: str, name: str) -> str:
    """kubelet's wording: ``configmap "x" not found`` / ``secret "x" not found``."""
    return f'{kind} "{name}" not found'
