"""WorkQueue (client-go's rate-limited delaying queue) on an injected Clock.

Interface:
* ``WorkQueue(clock, *, base_delay=0.005, max_delay=1000.0, name="")``
* ``add(key)``: de-duplicated; a key being processed is re-queued after ``done``.
* ``add_after(key, seconds)``: delayed add (earliest deadline wins).
* ``add_rate_limited(key)``: exponential per-key back-off (base_delay * 2**failures, capped).
* ``forget(key)``: reset the key's failure count. ``num_requeues(key)``.
* ``await get() -> str`` (waits; raises ``asyncio.CancelledError``/``QueueShutDown`` after
  ``shutdown()``), ``done(key)``, ``shutdown()``, ``len(q)``.

Semantics as client-go's: a key is never handed to two workers at once (``processing``),
and adds while it is processed are remembered (``dirty``) and delivered after ``done``.
Delays sleep on the injected clock, one task per waiting key (an earlier deadline replaces
a later one), so ``FakeClock.advance`` fires them in tests.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Iterable
from time import perf_counter

from jobplane import metrics
from jobplane.clock import Clock

log = logging.getLogger(__name__)


class QueueShutDown(Exception):
    """``get`` on a queue that was shut down."""


class WorkQueue:
    def __init__(self, clock: Clock, *, base_delay: float = 0.005, max_delay: float = 1000.0,
                 name: str = "") -> None:
        self.clock = clock
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.name = name
        self._queue: collections.deque[str] = collections.deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._failures: dict[str, int] = {}
        # key -> (deadline, sleeping task)
        self._delayed: dict[str, tuple[float, asyncio.Task[None]]] = {}
        self._shutting_down = False
        # client-go's workqueue metrics: when each queued key was added / taken (wall time,
        # not the injected clock: these measure this process, not the simulated world).
        m = metrics.current().workqueue
        m.register(self)
        label = name or "unnamed"
        self._m_adds = m.adds(label)
        self._m_retries = m.retries(label)
        self._m_queue = m.queue_duration(label)
        self._m_work = m.work_duration(label)
        self._added_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}

    # -- plain queue -------------------------------------------------------------------
    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        self._m_adds.inc()
        if key in self._processing:
            return
        self._added_at.setdefault(key, perf_counter())
        self._queue.append(key)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    async def get(self) -> str:
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                # Pass a wake-up we may have consumed on to another waiter.
                if fut.done() and not fut.cancelled():
                    self._wake_one()
                raise
        if self._shutting_down:
            raise QueueShutDown(self.name)
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        now = perf_counter()
        added = self._added_at.pop(key, None)
        if added is not None:
            self._m_queue.observe(now - added)
        self._started_at[key] = now
        if self._queue:
            self._wake_one()
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if started is not None:
            self._m_work.observe(perf_counter() - started)
        if key in self._dirty and not self._shutting_down:
            self._added_at.setdefault(key, perf_counter())
            self._queue.append(key)
            self._wake_one()

    def __len__(self) -> int:
        return len(self._queue)

    def processing_since(self) -> Iterable[float]:
        """When each key being processed was taken (``perf_counter``), for the scrape."""
        return self._started_at.values()

    def shutdown(self) -> None:
        self._shutting_down = True
        for _, task in self._delayed.values():
            task.cancel()
        self._delayed.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    # -- delays ------------------------------------------------------------------------
    def add_after(self, key: str, seconds: float) -> None:
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(key)
            return
        deadline = self.clock.now() + seconds
        current = self._delayed.get(key)
        if current is not None:
            if current[0] <= deadline:
                return
            current[1].cancel()
        task = asyncio.get_running_loop().create_task(self._fire_after(key, deadline))
        self._delayed[key] = (deadline, task)

    async def _fire_after(self, key: str, deadline: float) -> None:
        # Sleep to the absolute deadline: the task may start after the clock has moved.
        remaining = deadline - self.clock.now()
        if remaining > 0:
            await self.clock.sleep(remaining)
        current = self._delayed.get(key)
        if current is not None and current[0] == deadline:
            del self._delayed[key]
            self.add(key)

    def pending_delays(self) -> dict[str, float]:
        """Key -> deadline (clock seconds) of each delayed add not yet due (for tests/debug)."""
        return {k: d for k, (d, _) in self._delayed.items()}

    # -- rate limiting -----------------------------------------------------------------
    def add_rate_limited(self, key: str) -> None:
        exp = self._failures.get(key, 0)
        self._failures[key] = exp + 1
        self._m_retries.inc()
        delay = min(self.base_delay * (2 ** min(exp, 64)), self.max_delay)
        self.add_after(key, delay)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)
