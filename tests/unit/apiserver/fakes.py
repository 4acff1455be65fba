"""A tiny in-memory stand-in for ApiService, enough to drive the HTTP layer in unit tests."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from jobplane.api import errors
from jobplane.api.registry import ResourceInfo


class FakeService:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.rv = 10
        self.calls: list[tuple[str, tuple, dict]] = []
        self.events: asyncio.Queue = asyncio.Queue()
        self.watch_error: errors.StatusError | None = None

    def _key(self, info: ResourceInfo, ns: str | None, name: str) -> tuple[str, str | None, str]:
        return (info.group_resource, ns, name)

    async def create(self, info, namespace, body, *, dry_run=False):
        self.calls.append(("create", (info.plural, namespace), {"dry_run": dry_run, "body": body}))
        name = body["metadata"]["name"]
        key = self._key(info, namespace, name)
        if key in self.objects:
            raise errors.already_exists(info.plural, info.group, name)
        self.rv += 1
        obj = copy.deepcopy(body)
        obj.update(kind=info.kind, apiVersion=info.api_version)
        obj["metadata"].update(namespace=namespace, resourceVersion=str(self.rv), uid=f"uid-{name}")
        if not dry_run:
            self.objects[key] = obj
        return obj

    async def get(self, info, namespace, name):
        try:
            return self.objects[self._key(info, namespace, name)]
        except KeyError:
            raise errors.not_found(info.plural, info.group, name) from None

    async def list(self, info, namespace, *, label_selector=None, field_selector=None, limit=None,
                   continue_=None):
        self.calls.append(("list", (info.plural, namespace), {"label_selector": label_selector,
                                                              "field_selector": field_selector, "limit": limit}))
        items = [o for (gr, ns, _), o in sorted(self.objects.items())
                 if gr == info.group_resource and (namespace is None or ns == namespace)]
        return {"kind": info.kind_list, "apiVersion": info.api_version,
                "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    async def watch(self, info, namespace, *, resource_version=None, label_selector=None, field_selector=None):
        self.calls.append(("watch", (info.plural, namespace), {"resource_version": resource_version,
                                                               "field_selector": field_selector}))
        if self.watch_error is not None:
            raise self.watch_error
        while True:
            item = await self.events.get()
            if item is None:
                return
            yield item

    async def update(self, info, namespace, name, body, subresource=None, *, dry_run=False):
        self.calls.append(("update", (info.plural, namespace, name, subresource), {"body": body}))
        current = await self.get(info, namespace, name)
        rv = body["metadata"].get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(info.plural, info.group, name, errors.STALE_OBJECT)
        self.rv += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[self._key(info, namespace, name)] = obj
        return obj

    async def patch(self, info, namespace, name, patch, patch_type, subresource=None, *, dry_run=False):
        self.calls.append(("patch", (info.plural, namespace, name, subresource),
                           {"patch": patch, "patch_type": patch_type}))
        current = copy.deepcopy(await self.get(info, namespace, name))
        current.setdefault("spec", {}).update((patch or {}).get("spec", {}))
        return current

    async def delete_ex(self, info, namespace, name, *, propagation_policy=None, grace_period_seconds=None,
                        preconditions=None, dry_run=False):
        self.calls.append(("delete", (info.plural, namespace, name),
                           {"propagation_policy": propagation_policy, "grace_period_seconds": grace_period_seconds,
                            "dry_run": dry_run}))
        obj = await self.get(info, namespace, name)
        if propagation_policy == "Foreground":
            obj = copy.deepcopy(obj)
            obj["metadata"].update(deletionTimestamp="2024-01-01T00:00:00Z", finalizers=["foregroundDeletion"])
            return obj, False
        del self.objects[self._key(info, namespace, name)]
        return obj, True

    async def delete(self, *args, **kwargs):
        return (await self.delete_ex(*args, **kwargs))[0]

    async def delete_collection(self, info, namespace, *, label_selector=None, field_selector=None,
                                propagation_policy=None, dry_run=False):
        self.calls.append(("delete_collection", (info.plural, namespace), {"label_selector": label_selector}))
        listed = await self.list(info, namespace)
        for o in listed["items"]:
            del self.objects[self._key(info, namespace, o["metadata"]["name"])]
        return listed
