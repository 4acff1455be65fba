"""A minimal in-memory Client for agent tests (merge patches, 404s, delete with grace 0)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from jobplane.api.errors import StatusError

Obj = dict[str, Any]


def merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


class FakeClient:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], Obj] = {}
        self.calls: list[tuple[str, str, str, Any]] = []
        self._rv = itertools.count(1)
        self._uid = itertools.count(1)

    def _nf(self, resource: str, name: str) -> StatusError:
        return StatusError(404, "NotFound", f'{resource} "{name}" not found')

    def add(self, resource: str, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        md.setdefault("uid", f"uid-{next(self._uid)}")
        md["resourceVersion"] = str(next(self._rv))
        self.objects[(resource, md.get("namespace"), md["name"])] = obj
        return copy.deepcopy(obj)

    async def get(self, resource: str, name: str, namespace: str | None = None, subresource: str | None = None) -> Obj:
        try:
            return copy.deepcopy(self.objects[(resource, namespace, name)])
        except KeyError:
            raise self._nf(resource, name) from None

    async def create(self, resource: str, body: Obj, namespace: str | None = None) -> Obj:
        body = copy.deepcopy(body)
        if namespace:
            body["metadata"]["namespace"] = namespace
        key = (resource, body["metadata"].get("namespace"), body["metadata"]["name"])
        if key in self.objects:
            raise StatusError(409, "AlreadyExists", "exists")
        self.calls.append(("create", resource, body["metadata"]["name"], body))
        return self.add(resource, body)

    async def update(self, resource: str, body: Obj, namespace: str | None = None,
                     subresource: str | None = None) -> Obj:
        name = body["metadata"]["name"]
        await self.get(resource, name, namespace)
        self.calls.append(("update", resource, name, body))
        return self.add(resource, body)

    async def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None,
                    patch_type: str = "", subresource: str | None = None) -> Obj:
        current = await self.get(resource, name, namespace)
        self.calls.append(("patch:" + (subresource or ""), resource, name, copy.deepcopy(patch)))
        return self.add(resource, merge(current, patch))

    async def delete(self, resource: str, name: str, namespace: str | None = None, **kw: Any) -> Obj:
        obj = await self.get(resource, name, namespace)
        self.calls.append(("delete", resource, name, kw))
        del self.objects[(resource, namespace, name)]
        return obj

    def status_patches(self, name: str) -> list[Obj]:
        return [c[3]["status"] for c in self.calls if c[0] == "patch:status" and c[2] == name]


def make_pod(name: str = "p", containers: list[Obj] | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"nodeName": "n1", "restartPolicy": "Never",
                     "containers": containers or [{"name": "main", "image": "busybox", "command": ["true"]}],
                     **spec},
            "status": {"phase": "Pending"}}
