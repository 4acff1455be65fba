"""Event TTL (kube-apiserver ``--event-ttl``, default 1 h): Events are deleted once their
last timestamp is older than the TTL.

Upstream gives every Event write an etcd lease; here a controller does it. It does not
use an informer, whose cache would hold every Event decoded: it watches Events and keeps
only ``namespace/name -> (expiry, resourceVersion)`` plus a heap of expiries, and sleeps on
the injected clock until the earliest one (woken early when a nearer one arrives), so no
tick ever walks all Events. Deletes carry a resourceVersion precondition: an Event bumped
meanwhile (count/lastTimestamp) is rescheduled by its watch event instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import parse_time
from jobplane.client.base import Client
from jobplane.client.informer import object_key
from jobplane.clock import Clock

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RETRY_DELAY = 5.0  # seconds before a failed delete is tried again
LIST_PAGE = 500  # Events per list request when (re)listing
_WATCH_BASE, _WATCH_MAX = 0.8, 30.0  # back-off between failed watches (client-go's)


def event_time(event: Obj) -> float | None:
    """When the Event last happened: lastTimestamp, series.lastObservedTime, eventTime, else
    creationTimestamp (epoch seconds; None when it has none of them or they do not parse)."""
    series = event.get("series") or {}
    for value in (event.get("lastTimestamp"), series.get("lastObservedTime"), event.get("eventTime"),
                  (event.get("metadata") or {}).get("creationTimestamp")):
        if value:
            try:
                return parse_time(value)
            except ValueError:
                continue
    return None


class ExpiryTracker:
    """Which Events expire when (pure bookkeeping, no I/O): the current entry per key and a
    min-heap of entries, outdated ones (another expiry than the key's current one) skipped
    when popped. One ``(expiry, key, rv)`` tuple serves both (a 100,000-pod run keeps about
    400,000 Events for the hour, so a second tuple and a string resourceVersion per Event
    were tens of MB)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._current: dict[str, _Entry] = {}
        self._heap: list[_Entry] = []

    def __len__(self) -> int:
        return len(self._current)

    def reset(self) -> None:
        self._current.clear()
        self._heap.clear()

    def observe(self, event: Obj, now: float) -> bool:
        """Track an added or modified Event; True when it is now the earliest to expire."""
        key = object_key(event)
        at = event_time(event)
        expiry = (now if at is None else at) + self.ttl
        rv = _compact_rv((event.get("metadata") or {}).get("resourceVersion") or "")
        old = self._current.get(key)
        if old is not None and old[0] == expiry:
            self._current[key] = (expiry, old[1], rv)  # its heap entry stands (same expiry)
            return False
        entry = (expiry, key, rv)
        self._current[key] = entry
        heapq.heappush(self._heap, entry)
        if len(self._heap) > 2 * len(self._current) + 1024:  # many reschedules: drop stale entries
            self._heap = list(self._current.values())
            heapq.heapify(self._heap)
        return self._heap[0] is entry

    def forget(self, event: Obj) -> None:
        self._current.pop(object_key(event), None)

    def retry(self, key: str, at: float) -> None:
        """Look at ``key`` again at ``at`` (after a failed delete)."""
        cur = self._current.get(key)
        if cur is not None:
            self._current[key] = entry = (at, cur[1], cur[2])
            heapq.heappush(self._heap, entry)

    def next_expiry(self) -> float | None:
        heap, current = self._heap, self._current
        while heap and ((cur := current.get(heap[0][1])) is None or cur[0] != heap[0][0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> list[tuple[str, str]]:
        """(key, resourceVersion) of every tracked Event expired at ``now``."""
        due = []
        while (nxt := self.next_expiry()) is not None and nxt <= now:
            key = heapq.heappop(self._heap)[1]
            due.append((key, str(self._current[key][2])))  # the heap's entry may hold an older rv
        return due


_Entry = tuple[float, str, "int | str"]  # (expiry, key, resourceVersion)


def _compact_rv(rv: str) -> int | str:
    """A resourceVersion as an int when it is the decimal this store writes (28 bytes
    against 50-odd for the string); anything else is kept as it is."""
    return int(rv) if rv.isdigit() and rv == str(int(rv)) else rv


class EventTTLController:
    def __init__(self, client: Client, clock: Clock, ttl: float) -> None:
        self.client = client
        self.clock = clock
        self.tracker = ExpiryTracker(ttl)
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ watching

    def _on_event(self, etype: str, obj: Obj) -> None:
        if etype in ("ADDED", "MODIFIED"):
            if self.tracker.observe(obj, self.clock.now()):
                self._wake.set()
        elif etype == "DELETED":
            self.tracker.forget(obj)

    async def _relist(self) -> str:
        """Track every live Event afresh (paged, so no huge list is held); returns the list's
        resourceVersion to watch from."""
        self.tracker.reset()
        rv, token = "", None
        while True:
            page = await self.client.list("events", None, limit=LIST_PAGE, continue_=token)
            meta = page.get("metadata") or {}
            rv = rv or meta.get("resourceVersion") or ""
            for obj in page.get("items") or ():
                self._on_event("ADDED", obj)
            token = meta.get("continue")
            if not token:
                return rv

    async def _watch_once(self, rv: str) -> str:
        """Watch from ``rv`` until the stream ends; returns the last resourceVersion seen."""
        timeout_fn = getattr(self.client, "informer_watch_timeout", None)
        stream = self.client.watch("events", None, resource_version=rv, allow_bookmarks=True,
                                   timeout_seconds=timeout_fn() if timeout_fn else None)
        try:
            async for etype, obj in stream:
                if etype == "ERROR":
                    raise StatusError.from_status(obj)
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if etype != "BOOKMARK":
                    self._on_event(etype, obj)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()
        return rv

    async def watch_loop(self) -> None:
        """List, then watch forever; on 410 or a failure list again (client-go's reflector)."""
        rv, delay = "", _WATCH_BASE
        while True:
            try:
                if not rv:
                    rv = await self._relist()
                new_rv = await self._watch_once(rv)
                if new_rv == rv:  # ended at once with nothing: do not spin
                    await self.clock.sleep(delay)
                    delay = min(delay * 2, _WATCH_MAX)
                else:
                    delay = _WATCH_BASE
                rv = new_rv
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep watching whatever happens
                rv = ""
                if isinstance(exc, StatusError) and exc.code == 410:
                    continue
                log.warning("event-ttl: list/watch failed: %s", exc)
                await self.clock.sleep(delay)
                delay = min(delay * 2, _WATCH_MAX)

    # ------------------------------------------------------------------ expiring

    async def _delete(self, key: str, rv: str) -> None:
        ns, _, name = key.rpartition("/")
        try:
            await self.client.delete("events", name, ns or None, preconditions={"resourceVersion": rv})
        except StatusError as exc:
            if exc.code not in (404, 409):  # gone, or changed since (its watch event reschedules it)
                log.warning("event-ttl: deleting event %s: %s", key, exc)
                self.tracker.retry(key, self.clock.now() + RETRY_DELAY)
        else:
            self.tracker.forget({"metadata": {"namespace": ns, "name": name}})

    async def expire_once(self) -> int:
        """Delete every Event expired now; returns how many were due."""
        due = self.tracker.pop_due(self.clock.now())
        for key, rv in due:
            await self._delete(key, rv)
        return len(due)

    async def _sleep_until(self, deadline: float | None) -> None:
        """Sleep on the clock until ``deadline`` (forever if None) or until woken."""
        waker = asyncio.ensure_future(self._wake.wait())
        sleeper = None
        if deadline is not None:
            sleeper = asyncio.ensure_future(self.clock.sleep(deadline - self.clock.now()))
        try:
            await asyncio.wait([t for t in (waker, sleeper) if t is not None], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
            if sleeper is not None:
                sleeper.cancel()

    async def expire_loop(self) -> None:
        while True:
            self._wake.clear()
            await self.expire_once()
            await self._sleep_until(self.tracker.next_expiry())

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.watch_loop(), name="event-ttl-watch"),
                 asyncio.create_task(self.expire_loop(), name="event-ttl-expire")]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def run(ctx: ControllerContext) -> None:
    ttl = float(getattr(ctx.settings, "event_ttl", 3600.0))
    if ttl <= 0:
        log.info("event-ttl: disabled (--event-ttl=%s)", ttl)
        return
    await EventTTLController(ctx.client, ctx.clock, ttl).run()
