"""EventRecorder: core/v1 Events with upstream's fields and aggregation.

Interface:
* ``EventRecorder(client, component, clock, host="")``
* ``event(obj, type_, reason, message)``: non-blocking (schedules the write); an Event
  with ``involvedObject{kind, namespace, name, uid, apiVersion, resourceVersion}``,
  ``reason``, ``message``, ``type`` (Normal/Warning), ``source.component`` (+host),
  ``firstTimestamp``, ``lastTimestamp``, ``count``, ``reportingComponent``,
  ``metadata.name = <obj name>.<hex unix-nanos>`` in the object's namespace (or
  ``default`` for cluster-scoped). A repeat of the same (object, type, reason, message)
  increments ``count`` and ``lastTimestamp`` of the existing Event instead.
* ``await flush()``: wait for pending writes (tests).

Every event first goes through client-go's ``EventCorrelator`` (``event_correlator``):
similar events about one object (same type and reason, 10 distinct messages within
10 minutes) are combined into one "(combined from similar events): ..." Event, and a
token bucket per source and object (burst 25, one more every 5 minutes) drops the excess.

Writes go through a few background tasks per recorder, each event by its aggregation key
to always the same one, in call order, so a repeat always finds the Event its first
occurrence created, while events of different objects are written side by side (over HTTP,
as the server's agent process writes them, one at a time fell behind a busy node). Failures are logged, never raised: events
are best effort, as in client-go.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import weakref
from typing import Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import rfc3339
from jobplane.client.base import Client
from jobplane.client.event_correlator import EventCorrelator
from jobplane.clock import Clock

log = logging.getLogger(__name__)

Obj = dict[str, Any]
_CACHE_SIZE = 4096
WRITERS = 4  # concurrent writers per recorder (events of one aggregation key share one)


def involved_object(obj: Obj) -> Obj:
    """The ObjectReference upstream's ``ref.GetReference`` builds."""
    meta = obj.get("metadata") or {}
    ref: Obj = {"kind": obj.get("kind", ""), "name": meta.get("name", "")}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    for src, dst in (("uid", "uid"), ("resourceVersion", "resourceVersion")):
        if meta.get(src):
            ref[dst] = meta[src]
    if obj.get("apiVersion"):
        ref["apiVersion"] = obj["apiVersion"]
    return ref


_RECORDERS: weakref.WeakSet[EventRecorder] = weakref.WeakSet()


async def close_all() -> None:
    """Stop every recorder of this process: the server calls it after stopping its
    controllers and before closing the store, so no write is attempted on a closed store."""
    for recorder in list(_RECORDERS):
        await recorder.close()


class EventRecorder:
    def __init__(self, client: Client, component: str, clock: Clock, host: str = "") -> None:
        self.client = client
        self.component = component
        self.clock = clock
        self.host = host
        self._pending: list[collections.deque[tuple[Obj, str, str, str, float, tuple[str, ...]]]] = [
            collections.deque() for _ in range(WRITERS)]
        self._correlator = EventCorrelator()
        self._workers: list[asyncio.Task[None] | None] = [None] * WRITERS
        # aggregation key -> (namespace, event name, count)
        self._seen: collections.OrderedDict[tuple[str, ...], tuple[str, str, int]] = collections.OrderedDict()
        self._closed = False
        _RECORDERS.add(self)

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        if self._closed:
            return
        ref, now = involved_object(obj), self.clock.now()
        verdict = self._correlator.correlate((self.component, self.host), ref, type_, reason, message, now)
        if verdict is None:
            return  # spam filter: this source has said too much about this object lately
        shard = hash(verdict.key) % WRITERS
        self._pending[shard].append((ref, type_, reason, verdict.message, now, verdict.key))
        worker = self._workers[shard]
        if worker is None or worker.done():
            self._workers[shard] = asyncio.get_running_loop().create_task(
                self._drain(self._pending[shard]), name=f"events:{self.component}")

    async def close(self) -> None:
        """Drop what is not written yet and stop; later events are ignored."""
        self._closed = True
        for pending in self._pending:
            pending.clear()
        workers, self._workers = self._workers, [None] * WRITERS
        for worker in workers:
            if worker is not None and not worker.done():
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    async def flush(self) -> None:
        while True:
            busy = [w for w in self._workers if w is not None and not w.done()]
            if not busy:
                return
            await asyncio.shield(busy[0])

    async def _drain(self, pending: collections.deque[tuple[Obj, str, str, str, float, tuple[str, ...]]]) -> None:
        while pending:
            item = pending.popleft()
            try:
                await self._write(*item)
            except Exception as exc:  # noqa: BLE001 - events are best effort
                log.warning("could not record event %s/%s: %s", item[2], item[3], exc)

    async def _write(self, ref: Obj, type_: str, reason: str, message: str, now: float,
                     key: tuple[str, ...]) -> None:
        ns = ref.get("namespace") or "default"
        ts = rfc3339(now)
        seen = self._seen.get(key)
        if seen is not None:
            _, name, count = seen
            try:
                await self.client.patch("events", name, {"count": count + 1, "lastTimestamp": ts,
                                                         "message": message}, ns)
                self._remember(key, ns, name, count + 1)
                return
            except StatusError as exc:
                if exc.code != 404:
                    raise
                self._seen.pop(key, None)
        nanos = int(now * 1_000_000_000)
        for _ in range(16):
            body = self._new_event(ref, ns, f"{ref.get('name', '')}.{nanos:x}", type_, reason, message, ts)
            try:
                created = await self.client.create("events", body, ns)
            except StatusError as exc:
                if exc.code == 409:
                    nanos += 1
                    continue
                raise
            self._remember(key, ns, created["metadata"]["name"], 1)
            return

    def _remember(self, key: tuple[str, ...], ns: str, name: str, count: int) -> None:
        self._seen[key] = (ns, name, count)
        self._seen.move_to_end(key)
        while len(self._seen) > _CACHE_SIZE:
            self._seen.popitem(last=False)

    def _new_event(self, ref: Obj, ns: str, name: str, type_: str, reason: str, message: str, ts: str) -> Obj:
        source: Obj = {"component": self.component}
        if self.host:
            source["host"] = self.host
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": type_,
            "eventTime": None,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
