"""Event TTL (kube-apiserver ``--event-ttl``, default 1 h): Events are deleted once their
last timestamp is older than the TTL.

Upstream gives every Event write an etcd lease; here a controller does it. It does not
use an informer, whose cache would hold every Event decoded: it watches Events and keeps
only a heap of (expiry, resourceVersion, namespace/name) as bytes, and sleeps on
the injected clock until the earliest one (woken early when a nearer one arrives), so no
tick ever walks all Events. Deletes carry a resourceVersion precondition: an Event bumped
meanwhile (count/lastTimestamp) is rescheduled by its watch event instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import struct
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
DELETE_BATCH = 500  # expired entries taken from the tracker at a time
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


class _Run:
    """Entries in expiry order packed into one bytearray, each ``length (2 bytes) + entry``."""

    __slots__ = ("buf", "pos", "last")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0  # the next entry to take
        self.last = b""  # expiry bytes of the last entry added

    def __bool__(self) -> bool:
        return self.pos < len(self.buf)

    def head(self) -> bytes:
        return bytes(self.buf[self.pos + 2:self.pos + 2 + _EXPIRY.size])

    def add(self, entry: bytes) -> None:
        self.buf += len(entry).to_bytes(2, "big")
        self.buf += entry
        self.last = entry[:_EXPIRY.size]

    def take(self) -> bytes:
        size = int.from_bytes(self.buf[self.pos:self.pos + 2], "big")
        entry = bytes(self.buf[self.pos + 2:self.pos + 2 + size])
        self.pos += 2 + size
        return entry


class ExpiryTracker:
    """Which Events expire when (pure bookkeeping, no I/O). An entry per Event state seen is
    ``expiry + resourceVersion + NUL + namespace/name`` as bytes, the expiry a big-endian
    double so that byte order is time order. Events mostly arrive in expiry order (one TTL
    after their last timestamp), so entries are appended to packed runs of ``RUN_BYTES``
    (about 64 bytes an Event), merged by a heap of the runs' heads; one that arrives out of
    order waits in a heap of single entries (about 100 bytes), which is packed into runs
    whenever it reaches ``LOOSE_MAX`` (a relist adds Events in key order). A 100,000-pod
    run keeps about 400,000 Events for the hour; a dict of each key's current entry beside
    tuples in a heap took about 260 bytes each (100 MB). Without that index an entry made
    outdated by a later change or a delete stays until due; its delete then fails on the
    resourceVersion precondition (409) or finds nothing (404), and both are ignored."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._runs: list[tuple[bytes, int, _Run]] = []  # heap by each run's next expiry
        self._tail: _Run | None = None  # the run in-order entries are appended to
        self._loose: list[bytes] = []  # heap of entries that came out of order
        self._seq = itertools.count()
        self._count = 0

    def __len__(self) -> int:
        """Entries held (outdated ones included)."""
        return self._count

    def reset(self) -> None:
        self._runs.clear()
        self._loose.clear()
        self._tail = None
        self._count = 0

    def observe(self, event: Obj, now: float) -> bool:
        """Track an added or modified Event; True when it is now the earliest to expire."""
        at = event_time(event)
        rv = (event.get("metadata") or {}).get("resourceVersion") or ""
        return self._push((now if at is None else at) + self.ttl, rv, object_key(event))

    def retry(self, key: str, rv: str, at: float) -> None:
        """Look at ``key`` again at ``at`` (after a failed delete)."""
        self._push(at, rv, key)

    def _push(self, expiry: float, rv: str, key: str) -> bool:
        entry = _EXPIRY.pack(max(0.0, expiry)) + f"{rv}\0{key}".encode()  # >= 0: bytes order is time order
        head = entry[:_EXPIRY.size]
        first = self._first()
        tail = self._tail
        if tail is not None and head >= tail.last and len(tail.buf) < RUN_BYTES:
            tail.add(entry)
        elif tail is None or head >= tail.last:
            self._tail = self._new_run(entry)
        else:
            heapq.heappush(self._loose, entry)
            if len(self._loose) >= LOOSE_MAX:
                self._pack_loose()
        self._count += 1
        return first is None or head < first

    def _new_run(self, entry: bytes) -> _Run:
        run = _Run()
        run.add(entry)
        heapq.heappush(self._runs, (entry[:_EXPIRY.size], next(self._seq), run))
        return run

    def _pack_loose(self) -> None:
        """Move the out-of-order entries into runs of their own (they come out sorted)."""
        run: _Run | None = None
        while self._loose:
            entry = heapq.heappop(self._loose)
            if run is not None and len(run.buf) < RUN_BYTES:
                run.add(entry)
            else:
                run = self._new_run(entry)

    def _first(self) -> bytes | None:
        """Expiry bytes of the earliest entry."""
        run_head = self._runs[0][0] if self._runs else None
        loose_head = self._loose[0][:_EXPIRY.size] if self._loose else None
        if run_head is None or (loose_head is not None and loose_head < run_head):
            return loose_head
        return run_head

    def _pop(self) -> bytes:
        if self._runs and (not self._loose or self._runs[0][0] <= self._loose[0][:_EXPIRY.size]):
            _, seq, run = self._runs[0]
            entry = run.take()
            if run:
                heapq.heapreplace(self._runs, (run.head(), seq, run))
            else:
                heapq.heappop(self._runs)
                if run is self._tail:
                    self._tail = None
        else:
            entry = heapq.heappop(self._loose)
        self._count -= 1
        return entry

    def next_expiry(self) -> float | None:
        first = self._first()
        return None if first is None else float(_EXPIRY.unpack(first)[0])

    def pop_due(self, now: float, limit: int | None = None) -> list[tuple[str, str]]:
        """(key, resourceVersion) of the entries expired at ``now``, at most ``limit``."""
        due: list[tuple[str, str]] = []
        while (limit is None or len(due) < limit) and (nxt := self.next_expiry()) is not None and nxt <= now:
            rv, _, key = self._pop()[_EXPIRY.size:].decode().partition("\0")
            due.append((key, rv))
        return due


RUN_BYTES = 1 << 16  # bytes of entries per run
LOOSE_MAX = 4096  # out-of-order entries held singly before they are packed into runs
_EXPIRY = struct.Struct(">d")


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
                self.tracker.retry(key, rv, self.clock.now() + RETRY_DELAY)

    async def expire_once(self) -> int:
        """Delete every Event expired now; returns how many were due. Taken ``DELETE_BATCH``
        at a time: after a long downtime the whole backlog is due at once, and its keys
        (~200 B each) need not all be held while they are deleted one by one."""
        total = 0
        while due := self.tracker.pop_due(self.clock.now(), DELETE_BATCH):
            for key, rv in due:
                await self._delete(key, rv)
            total += len(due)
        return total

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
