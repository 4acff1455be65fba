"""Namespace controller (pkg/controller/namespace): empties a terminating namespace, then
lets it go.

A namespace with a deletionTimestamp (phase Terminating) gets every namespaced kind of
the registry deleted in it (read-only views excluded). Once nothing is left, the
``kubernetes`` finalizer is removed from ``spec.finalizers``; the API service then
removes the namespace. Deletions of objects in a terminating namespace re-queue it, so
it goes within moments of its last object; a slow fallback re-check covers kinds no
informer watches.

A namespace that vanished with content still in it (no ``kubernetes`` finalizer) has
its leftovers deleted the same way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.registry import NAMESPACES, RESOURCES, ResourceInfo
from jobplane.client.base import Client
from jobplane.client.informer import SharedInformerFactory
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.base import run_workers, update_with_retry

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]

FINALIZER = "kubernetes"
# Re-check a namespace whose content is still going after this long, even without a trigger.
RECHECK_SECONDS = 5.0
# Delete controllers' objects before what they create (CronJob -> Job -> Pod).
_ORDER = ("cronjobs.batch", "jobs.batch", "pods")


def content_kinds() -> list[ResourceInfo]:
    kinds = [r for r in RESOURCES if r.namespaced and not r.read_only and "delete" in r.verbs]
    return sorted(kinds, key=lambda r: (_ORDER.index(r.group_resource) if r.group_resource in _ORDER
                                        else len(_ORDER)))


def _terminating(ns: Obj | None) -> bool:
    return bool(ns and (ns.get("metadata") or {}).get("deletionTimestamp"))


class NamespaceController:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory) -> None:
        self.client = client
        self.clock = clock
        self.namespaces = informers.informer("namespaces")
        self.queue = WorkQueue(clock, name="namespace")
        self.namespaces.add_handler(on_add=self._on_namespace, on_update=lambda _, new: self._on_namespace(new),
                                    on_delete=self._on_namespace_deleted)
        # Content going away in a terminating namespace brings it back to the queue.
        self.watched = [informers.informer("pods"), informers.informer("jobs")]
        for inf in self.watched:
            inf.add_handler(on_delete=self._on_content_deleted)

    def _on_namespace(self, ns: Obj) -> None:
        if _terminating(ns):
            self.queue.add(ns["metadata"]["name"])

    def _on_namespace_deleted(self, ns: Obj) -> None:
        self.queue.add(ns["metadata"]["name"])

    def _on_content_deleted(self, obj: Obj) -> None:
        ns_name = (obj.get("metadata") or {}).get("namespace")
        if ns_name and _terminating(self.namespaces.get(None, ns_name)):
            self.queue.add(ns_name)

    async def reconcile(self, name: str) -> float | None:
        try:
            ns = await self.client.get("namespaces", name)
        except StatusError as exc:
            if exc.code != 404:
                raise
            ns = None
        if ns is not None and not _terminating(ns):
            return None
        remaining = await self.delete_content(name)
        if remaining:
            log.debug("namespace %s: %d objects remaining", name, remaining)
            return RECHECK_SECONDS
        if ns is not None:
            await self.finalize(ns)
        return None

    async def delete_content(self, namespace: str) -> int:
        """Delete every namespaced object in ``namespace``; returns how many still exist."""
        remaining = 0
        for info in content_kinds():
            resource = info.group_resource
            listed = await self.client.list(resource, namespace)
            items = listed.get("items") or []
            for item in items:
                md = item["metadata"]
                if md.get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(resource, md["name"], namespace, propagation_policy="Background",
                                             preconditions={"uid": md["uid"]})
                except StatusError as exc:
                    if exc.code not in (404, 409):
                        raise
            if items:
                left = await self.client.list(resource, namespace)
                remaining += len(left.get("items") or [])
        return remaining

    async def finalize(self, ns: Obj) -> None:
        """Remove the ``kubernetes`` finalizer from spec.finalizers (the namespace then goes)."""
        name, uid = ns["metadata"]["name"], ns["metadata"]["uid"]

        def mutate(obj: Obj) -> bool:
            finalizers = (obj.get("spec") or {}).get("finalizers") or []
            if FINALIZER not in finalizers:
                return False
            obj.setdefault("spec", {})["finalizers"] = [f for f in finalizers if f != FINALIZER]
            return True

        # Upstream's path is PUT .../namespaces/NAME/finalize; use it where the registry has it.
        sub = "finalize" if "finalize" in NAMESPACES.subresources else None
        result = await update_with_retry(self.client, "namespaces", None, name, mutate, uid=uid, subresource=sub)
        if result is not None and FINALIZER in ((result.get("spec") or {}).get("finalizers") or []):
            log.error("namespace %s: the API kept spec.finalizers %s on update", name,
                      result["spec"]["finalizers"])

    async def run(self, workers: int = 2) -> None:
        await self.namespaces.start()
        for inf in self.watched:
            await inf.start()
        await run_workers(self.queue, self.reconcile, workers, "namespace")


async def run(ctx: ControllerContext) -> None:
    await NamespaceController(ctx.client, ctx.clock, ctx.informers).run()
