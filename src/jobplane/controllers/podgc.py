"""Pod garbage collector (pkg/controller/podgc): ``gcTerminated`` and ``gcOrphaned``.

Every ``gcCheckPeriod`` (20 s), when more than ``--terminated-pod-gc-threshold`` pods
(default 12,500; <= 0 disables) are Succeeded or Failed, the excess is deleted with grace
period 0: evicted pods first, then the oldest by creationTimestamp (name breaks ties),
exactly upstream's ``byEvictionAndCreationTimestamp``. The terminated set, with each pod's
place in that order, is kept up to date by the shared pod informer's handlers, so a check
costs a length comparison until the threshold is crossed, and a pass past it sorts the kept
keys without reading or parsing the 12,500 cached pods again (it did: about 1 s of the event
loop every 20 s once PodGC deleted, bench/RESULTS.md §17c).

``gcOrphaned``: a pod bound to a node that does not exist is quarantined with its node for
``quarantineTime`` (40 s); if the node is still missing then (checked with a direct GET, not
the cache), the pod is marked Failed with condition ``DisruptionTarget`` (reason
``DeletionByPodGC``, message ``PodGC: node no longer exists``) unless already finished, and
deleted with grace period 0, exactly as upstream's ``markFailedAndDeletePodWithCondition``.
Unscheduled terminating pods (``gcUnscheduledTerminating``) are not collected here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import parse_time, rfc3339
from jobplane.api.pods import FAILED, is_terminal
from jobplane.client.base import Client
from jobplane.client.informer import SharedInformerFactory, object_key
from jobplane.clock import Clock

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]
GC_CHECK_PERIOD = 20.0  # upstream gcCheckPeriod
QUARANTINE_TIME = 40.0  # upstream quarantineTime
NODE_INDEX = "spec.nodeName"
ORPHAN_CONDITION = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                    "message": "PodGC: node no longer exists"}
DELETE_CONCURRENCY = 50


def is_evicted(pod: Obj) -> bool:
    """``eviction.PodIsEvicted``: Failed with reason Evicted."""
    status = pod.get("status") or {}
    return status.get("phase") == FAILED and status.get("reason") == "Evicted"


def gc_order(pod: Obj) -> tuple[bool, float, str]:
    """Sort key of ``byEvictionAndCreationTimestamp``: evicted first, then oldest, then by name."""
    md = pod.get("metadata") or {}
    created = parse_time(md.get("creationTimestamp")) or 0.0
    return (not is_evicted(pod), created, md.get("name") or "")


Order = tuple[bool, float, str]


def keys_to_delete(terminated: Mapping[str, Order], threshold: int) -> list[str]:
    """The keys of the terminated pods (key -> ``gc_order``) beyond ``threshold``, in deletion
    order (empty when within it)."""
    excess = len(terminated) - threshold
    if threshold <= 0 or excess <= 0:
        return []
    return [key for key, _ in sorted(terminated.items(), key=itemgetter(1))[:excess]]


class PodGCController:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory, threshold: int) -> None:
        self.client = client
        self.clock = clock
        self.threshold = threshold
        self.pods = informers.informer("pods")
        self.nodes = informers.informer("nodes")
        self.pods.add_index(NODE_INDEX, lambda p: [(p.get("spec") or {}).get("nodeName") or ""])
        self.quarantine: dict[str, float] = {}  # missing node -> when first seen missing
        # keys of cached pods that are Succeeded/Failed -> their place in the deletion order
        self.terminated: dict[str, Order] = {}
        self.pods.add_handler(on_add=self._track, on_update=lambda old, new: self._track(new),
                              on_delete=lambda pod: self.terminated.pop(object_key(pod), None))

    def _track(self, pod: Obj) -> None:
        if is_terminal(pod):
            self.terminated[object_key(pod)] = gc_order(pod)
        else:
            self.terminated.pop(object_key(pod), None)

    async def _delete(self, pod: Obj, limit: asyncio.Semaphore) -> None:
        md = pod["metadata"]
        async with limit:
            log.debug("PodGC is force deleting Pod: %s/%s", md.get("namespace"), md.get("name"))
            try:
                await self.client.delete("pods", md["name"], md.get("namespace"), grace_period_seconds=0,
                                         preconditions={"uid": md.get("uid")} if md.get("uid") else None)
            except StatusError as exc:
                if exc.code not in (404, 409):
                    log.warning("podgc: failed to delete pod %s/%s: %s", md.get("namespace"), md.get("name"), exc)

    async def gc_once(self) -> int:
        """One ``gcTerminated`` pass; returns how many pods it deleted (or tried to)."""
        if self.threshold <= 0 or len(self.terminated) <= self.threshold:
            return 0
        cached = (self.pods.get_key(k) for k in keys_to_delete(self.terminated, self.threshold))
        victims = [p for p in cached if p is not None and is_terminal(p)]
        if not victims:
            return 0
        log.info("Garbage collecting pods: numPods=%d", len(victims))
        limit = asyncio.Semaphore(DELETE_CONCURRENCY)
        await asyncio.gather(*(self._delete(p, limit) for p in victims))
        return len(victims)

    async def gc_orphaned(self) -> int:
        """One ``gcOrphaned`` pass; returns how many pods it deleted (or tried to)."""
        now = self.clock.now()
        missing = {n for n in self.pods.index_values(NODE_INDEX) if n and self.nodes.get(None, n) is None}
        for name in list(self.quarantine):
            if name not in missing:
                del self.quarantine[name]
        for name in missing:
            self.quarantine.setdefault(name, now)
        deleted_nodes = []
        for name, since in list(self.quarantine.items()):
            if now - since < QUARANTINE_TIME:
                continue
            if await self._node_exists(name):
                del self.quarantine[name]
            else:
                deleted_nodes.append(name)
        count = 0
        for name in deleted_nodes:
            for pod in self.pods.by_index(NODE_INDEX, name):
                md = pod["metadata"]
                log.info("Found orphaned Pod assigned to the Node, deleting: pod=%s/%s node=%s",
                         md.get("namespace"), md.get("name"), name)
                await self._mark_failed_and_delete(pod)
                count += 1
            self.quarantine.pop(name, None)
        return count

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.client.get("nodes", name)
            return True
        except StatusError as exc:
            if exc.code == 404:
                return False
            raise

    async def _mark_failed_and_delete(self, pod: Obj) -> None:
        """upstream ``markFailedAndDeletePodWithCondition``: Failed (+ DisruptionTarget) first,
        so a pod no kubelet will ever finish is not left Running, then delete with grace 0."""
        md = pod["metadata"]
        ns, name = md.get("namespace"), md["name"]
        try:
            if not is_terminal(pod):
                conditions = [c for c in (pod.get("status") or {}).get("conditions") or ()
                              if c.get("type") != ORPHAN_CONDITION["type"]]
                conditions.append({**ORPHAN_CONDITION, "lastProbeTime": None,
                                   "lastTransitionTime": rfc3339(self.clock.now())})
                patch = {"metadata": {"uid": md.get("uid")},
                         "status": {"phase": "Failed", "conditions": conditions}}
                await self.client.patch("pods", name, patch, ns, subresource="status")
            await self.client.delete("pods", name, ns, grace_period_seconds=0,
                                     preconditions={"uid": md.get("uid")} if md.get("uid") else None)
        except StatusError as exc:
            if exc.code not in (404, 409):
                log.warning("podgc: failed to delete orphaned pod %s/%s: %s", ns, name, exc)

    async def run(self) -> None:
        await self.pods.start()
        await self.nodes.start()
        while True:
            for gc_pass, what in ((self.gc_orphaned, "orphaned pass"), (self.gc_once, "pass")):
                try:
                    await gc_pass()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the next period tries again
                    log.exception("podgc: %s failed", what)
            await self.clock.sleep(GC_CHECK_PERIOD)


async def run(ctx: ControllerContext) -> None:
    threshold = int(getattr(ctx.settings, "terminated_pod_gc_threshold", 12500))
    if threshold <= 0:  # upstream still collects orphaned pods
        log.info("podgc: terminated pod GC disabled (--terminated-pod-gc-threshold=%d)", threshold)
    await PodGCController(ctx.client, ctx.clock, ctx.informers, threshold).run()
