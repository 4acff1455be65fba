"""Pod garbage collector, terminated pods only (pkg/controller/podgc ``gcTerminated``).

Every ``gcCheckPeriod`` (20 s), when more than ``--terminated-pod-gc-threshold`` pods
(default 12,500; <= 0 disables) are Succeeded or Failed, the excess is deleted with grace
period 0: evicted pods first, then the oldest by creationTimestamp (name breaks ties),
exactly upstream's ``byEvictionAndCreationTimestamp``. The terminated set is kept up to
date by the shared pod informer's handlers, so a check costs a length comparison until
the threshold is crossed. Orphaned / unscheduled-terminating pod GC is not done here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import parse_time
from jobplane.api.pods import is_terminal
from jobplane.client.base import Client
from jobplane.client.informer import SharedInformerFactory, object_key
from jobplane.clock import Clock

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]
GC_CHECK_PERIOD = 20.0  # upstream gcCheckPeriod
DELETE_CONCURRENCY = 50


def is_evicted(pod: Obj) -> bool:
    """``eviction.PodIsEvicted``: Failed with reason Evicted."""
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == "Evicted"


def gc_order(pod: Obj) -> tuple[bool, float, str]:
    """Sort key of ``byEvictionAndCreationTimestamp``: evicted first, then oldest, then by name."""
    md = pod.get("metadata") or {}
    created = parse_time(md.get("creationTimestamp")) or 0.0
    return (not is_evicted(pod), created, md.get("name") or "")


def pods_to_delete(terminated: list[Obj], threshold: int) -> list[Obj]:
    """The terminated pods beyond ``threshold``, in deletion order (empty when within it)."""
    excess = len(terminated) - threshold
    if threshold <= 0 or excess <= 0:
        return []
    return sorted(terminated, key=gc_order)[:excess]


class PodGCController:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory, threshold: int) -> None:
        self.client = client
        self.clock = clock
        self.threshold = threshold
        self.pods = informers.informer("pods")
        self.terminated: set[str] = set()  # keys of cached pods that are Succeeded/Failed
        self.pods.add_handler(on_add=self._track, on_update=lambda old, new: self._track(new),
                              on_delete=lambda pod: self.terminated.discard(object_key(pod)))

    def _track(self, pod: Obj) -> None:
        if is_terminal(pod):
            self.terminated.add(object_key(pod))
        else:
            self.terminated.discard(object_key(pod))

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
        cached = (self.pods.get_key(k) for k in self.terminated)
        victims = pods_to_delete([p for p in cached if p is not None and is_terminal(p)], self.threshold)
        if not victims:
            return 0
        log.info("Garbage collecting pods: numPods=%d", len(victims))
        limit = asyncio.Semaphore(DELETE_CONCURRENCY)
        await asyncio.gather(*(self._delete(p, limit) for p in victims))
        return len(victims)

    async def run(self) -> None:
        await self.pods.start()
        while True:
            try:
                await self.gc_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next period tries again
                log.exception("podgc: pass failed")
            await self.clock.sleep(GC_CHECK_PERIOD)


async def run(ctx: ControllerContext) -> None:
    threshold = int(getattr(ctx.settings, "terminated_pod_gc_threshold", 12500))
    if threshold <= 0:
        log.info("podgc: terminated pod GC disabled (--terminated-pod-gc-threshold=%d)", threshold)
        return
    await PodGCController(ctx.client, ctx.clock, ctx.informers, threshold).run()
