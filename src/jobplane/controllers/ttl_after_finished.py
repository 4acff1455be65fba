"""TTL-after-finished controller (pkg/controller/ttlafterfinished).

A finished Job (Complete or Failed condition True) with ``spec.ttlSecondsAfterFinished``
is deleted, with Foreground propagation and a uid precondition, once
``lastTransitionTime + ttl`` has passed. Keys wait in the work queue on the injected
clock (``add_after``) until they expire, so nothing polls. Before deleting, the live Job
is read again: its TTL may have been changed or removed since the cache saw it.
No events are emitted (as upstream).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import parse_time
from jobplane.client.base import Client
from jobplane.client.informer import SharedInformerFactory
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.base import enqueue_handlers, run_workers

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def finish_time(job: Obj) -> float | None:
    """lastTransitionTime of the True Complete/Failed condition; None when not finished."""
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def is_finished(job: Obj) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or ())


def needs_cleanup(job: Obj) -> bool:
    """upstream ``needsCleanup``: TTL set, finished, and not already being deleted."""
    return ((job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None
            and not (job.get("metadata") or {}).get("deletionTimestamp")
            and is_finished(job))


def time_left(job: Obj, now: float) -> float | None:
    """Seconds until the Job expires (<= 0: expired); None if it cannot be computed."""
    finished = finish_time(job)
    if finished is None:
        log.warning("job %s/%s: finished but its condition has no lastTransitionTime",
                    job["metadata"].get("namespace"), job["metadata"].get("name"))
        return None
    if finished > now:
        log.info("job %s/%s: found Job finished in the future, likely clock skew; cleanup deferred",
                 job["metadata"].get("namespace"), job["metadata"].get("name"))
    ttl = float(job["spec"]["ttlSecondsAfterFinished"])
    return finished + ttl - now


class TTLAfterFinishedController:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory) -> None:
        self.client = client
        self.clock = clock
        self.jobs = informers.informer("jobs")
        self.queue = WorkQueue(clock, name="ttl-after-finished")
        self.jobs.add_handler(**enqueue_handlers(self.queue, accept=needs_cleanup))

    async def reconcile(self, key: str) -> float | None:
        job = self.jobs.get_key(key)
        if job is None or not needs_cleanup(job):
            return None
        left = time_left(job, self.clock.now())
        if left is None:
            return None
        if left > 0:
            log.debug("job %s: expires in %.3fs", key, left)
            return left
        # Expired according to the cache: confirm against the live object.
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        try:
            live = await self.client.get("jobs", name, ns)
        except StatusError as exc:
            if exc.code == 404:
                return None
            raise
        if not needs_cleanup(live):
            return None
        left = time_left(live, self.clock.now())
        if left is None:
            return None
        if left > 0:
            return left
        log.debug("job %s: TTL expired, deleting (Foreground)", key)
        try:
            await self.client.delete("jobs", name, ns, propagation_policy="Foreground",
                                     preconditions={"uid": live["metadata"]["uid"]})
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise
        return None

    async def run(self, workers: int = 2) -> None:
        await self.jobs.start()
        await run_workers(self.queue, self.reconcile, workers, "ttl-after-finished")


async def run(ctx: ControllerContext) -> None:
    await TTLAfterFinishedController(ctx.client, ctx.clock, ctx.informers).run()
