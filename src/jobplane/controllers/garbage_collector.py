"""Garbage collector (pkg/controller/garbagecollector): ownerReferences and cascading deletion.

Informers on the monitored kinds give an ownership graph through two indices (an
object's uid, and the uids its ownerReferences name). Two kinds of work items:

* ``dep|<resource>|<key>`` — *attempt to delete* a dependent (upstream's
  ``attemptToDeleteItem``). Each owner is classified as solid (exists), dangling (gone,
  confirmed by a live GET when the cache does not know it) or waiting (being deleted
  with ``foregroundDeletion``). With a solid owner, dangling and waiting references are
  removed from the dependent; otherwise the dependent is deleted (uid precondition), with
  Foreground when an owner waits and the dependent has dependents of its own,
  else with the policy its own finalizers imply, else Background.
* ``own|<resource>|<key>`` — an owner being deleted with a finalizer:
  ``orphan``: strip its uid from every dependent's ownerReferences, then drop the
  finalizer; ``foregroundDeletion``: delete its dependents and, once none with
  ``blockOwnerDeletion: true`` remains, drop the finalizer (the API then removes it).

Owners of kinds the registry does not know are treated as existing (never collected).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.registry import for_kind, resolve
from jobplane.client.base import Client
from jobplane.client.informer import Informer, SharedInformerFactory, object_key
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.base import remove_finalizer, run_workers, update_with_retry

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
# Kinds whose objects are owners or dependents in practice.
MONITORED = ("namespaces", "nodes", "pods", "jobs", "cronjobs")
UID_INDEX = "gc-uid"
OWNER_INDEX = "gc-owner-uid"

SOLID, DANGLING, WAITING = "solid", "dangling", "waiting"


def owner_refs(obj: Obj) -> list[Obj]:
    return (obj.get("metadata") or {}).get("ownerReferences") or []


def _uid_of(obj: Obj) -> list[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [uid] if uid else []


def _owner_uids(obj: Obj) -> list[str]:
    return [r["uid"] for r in owner_refs(obj) if r.get("uid")]


def _finalizers(obj: Obj) -> list[str]:
    return (obj.get("metadata") or {}).get("finalizers") or []


def _deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def waiting_for_dependents(obj: Obj) -> bool:
    return _deleting(obj) and FOREGROUND in _finalizers(obj)


def policy_from_finalizers(obj: Obj) -> str:
    finalizers = _finalizers(obj)
    if ORPHAN in finalizers:
        return "Orphan"
    if FOREGROUND in finalizers:
        return "Foreground"
    return "Background"


class GarbageCollector:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory, resources: tuple[str, ...] = MONITORED) -> None:
        self.client = client
        self.clock = clock
        self.queue = WorkQueue(clock, name="garbage-collector")
        self.informers: dict[str, Informer] = {}
        for name in resources:
            resource = resolve(name).group_resource
            inf = informers.informer(name)
            inf.add_index(UID_INDEX, _uid_of)
            inf.add_index(OWNER_INDEX, _owner_uids)
            inf.add_handler(on_add=functools.partial(self._on_change, resource),
                            on_update=functools.partial(self._on_update, resource),
                            on_delete=functools.partial(self._on_delete, resource))
            self.informers[resource] = inf

    # -- graph lookups -----------------------------------------------------------------
    def find_uid(self, uid: str) -> tuple[str, Obj] | None:
        for resource, inf in self.informers.items():
            found = inf.by_index(UID_INDEX, uid)
            if found:
                return resource, found[0]
        return None

    def dependents(self, uid: str) -> list[tuple[str, Obj]]:
        return [(resource, obj) for resource, inf in self.informers.items()
                for obj in inf.by_index(OWNER_INDEX, uid)]

    # -- event handlers ----------------------------------------------------------------
    def _on_change(self, resource: str, obj: Obj) -> None:
        if _deleting(obj) and (ORPHAN in _finalizers(obj) or FOREGROUND in _finalizers(obj)):
            self.queue.add(f"own|{resource}|{object_key(obj)}")
        for ref in owner_refs(obj):
            owner = self.find_uid(ref.get("uid", ""))
            if owner is None or waiting_for_dependents(owner[1]):
                self.queue.add(f"dep|{resource}|{object_key(obj)}")
                break

    def _on_update(self, resource: str, old: Obj, new: Obj) -> None:
        self._on_change(resource, new)
        # A dependent that dropped a reference or started terminating may unblock an owner.
        self._requeue_waiting_owners(old)

    def _on_delete(self, resource: str, obj: Obj) -> None:
        for uid in _uid_of(obj):
            for dep_resource, dep in self.dependents(uid):
                self.queue.add(f"dep|{dep_resource}|{object_key(dep)}")
        self._requeue_waiting_owners(obj)

    def _requeue_waiting_owners(self, dependent: Obj) -> None:
        for ref in owner_refs(dependent):
            owner = self.find_uid(ref.get("uid", ""))
            if owner is not None and waiting_for_dependents(owner[1]):
                self.queue.add(f"own|{owner[0]}|{object_key(owner[1])}")

    # -- reconcile ---------------------------------------------------------------------
    async def reconcile(self, item: str) -> None:
        kind, resource, key = item.split("|", 2)
        obj = self.informers[resource].get_key(key)
        if obj is None:
            return
        if kind == "dep":
            await self.attempt_to_delete(resource, obj)
        else:
            await self.process_deleting_owner(resource, obj)

    async def owner_state(self, ref: Obj, namespace: str | None) -> str:
        uid = ref.get("uid", "")
        found = self.find_uid(uid)
        if found is not None:
            owner = found[1]
        else:
            try:
                info = for_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
            except KeyError:
                return SOLID  # a kind we do not serve: cannot tell, keep the dependent
            try:
                owner = await self.client.get(info.group_resource, ref.get("name", ""),
                                              namespace if info.namespaced else None)
            except StatusError as exc:
                if exc.code == 404:
                    return DANGLING
                raise
            if owner.get("metadata", {}).get("uid") != uid:
                return DANGLING
        return WAITING if waiting_for_dependents(owner) else SOLID

    async def attempt_to_delete(self, resource: str, obj: Obj) -> None:
        md = obj["metadata"]
        refs = owner_refs(obj)
        if not refs or (_deleting(obj) and FOREGROUND not in _finalizers(obj)):
            return
        states: dict[str, list[Obj]] = {SOLID: [], DANGLING: [], WAITING: []}
        for ref in refs:
            states[await self.owner_state(ref, md.get("namespace"))].append(ref)
        if states[SOLID]:
            drop = {r["uid"] for r in states[DANGLING] + states[WAITING]}
            if drop:
                log.debug("gc: %s %s: removing owner references %s", resource, object_key(obj), sorted(drop))
                await self.remove_owner_refs(resource, obj, drop)
            return
        if states[WAITING] and self.dependents(md["uid"]):
            policy = "Foreground"
        else:
            policy = policy_from_finalizers(obj)
        if _deleting(obj):
            return
        log.debug("gc: deleting %s %s (owners gone or deleting), propagation %s", resource, object_key(obj), policy)
        try:
            await self.client.delete(resource, md["name"], md.get("namespace"), propagation_policy=policy,
                                     preconditions={"uid": md["uid"]})
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def remove_owner_refs(self, resource: str, obj: Obj, uids: set[str]) -> None:
        md = obj["metadata"]

        def mutate(live: Obj) -> bool:
            refs = owner_refs(live)
            kept = [r for r in refs if r.get("uid") not in uids]
            if len(kept) == len(refs):
                return False
            if kept:
                live["metadata"]["ownerReferences"] = kept
            else:
                live["metadata"].pop("ownerReferences", None)
            return True

        await update_with_retry(self.client, resource, md.get("namespace"), md["name"], mutate, uid=md["uid"])

    async def process_deleting_owner(self, resource: str, obj: Obj) -> None:
        md = obj["metadata"]
        if not _deleting(obj):
            return
        uid = md["uid"]
        finalizers = _finalizers(obj)
        if ORPHAN in finalizers:
            for dep_resource, dep in self.dependents(uid):
                await self.remove_owner_refs(dep_resource, dep, {uid})
            log.debug("gc: %s %s: dependents orphaned, removing finalizer", resource, object_key(obj))
            await remove_finalizer(self.client, resource, md.get("namespace"), md["name"], ORPHAN, uid)
            return
        if FOREGROUND not in finalizers:
            return
        for dep_resource, dep in self.dependents(uid):
            await self.attempt_to_delete(dep_resource, dep)
        blocking = [object_key(dep) for _, dep in self.dependents(uid)
                    if any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in owner_refs(dep))]
        if blocking:
            log.debug("gc: %s %s: waiting for %d blocking dependents", resource, object_key(obj), len(blocking))
            return
        log.debug("gc: %s %s: no blocking dependents left, removing finalizer", resource, object_key(obj))
        await remove_finalizer(self.client, resource, md.get("namespace"), md["name"], FOREGROUND, uid)

    async def run(self, workers: int = 4) -> None:
        for inf in self.informers.values():
            await inf.start()
        await run_workers(self.queue, self.reconcile, workers, "garbage-collector")


async def run(ctx: ControllerContext) -> None:
    await GarbageCollector(ctx.client, ctx.clock, ctx.informers).run()
