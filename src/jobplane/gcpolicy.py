"""Garbage-collector policy of a long-running server: no collection stops the loop for long.

CPython's collector stops the process for as long as it takes to visit every object of the
generations it collects, about 0.4 µs of CPU per tracked object on the benchmark machine, and
the server keeps many for as long as it runs: the store mirror's history, every informer's
cached objects (a decoded Lease is 8 tracked containers, a Pod dozens), the imported modules
and schemas. A full (generation 2) collection visits all of them; with 10,000 Leases created
it paused the event loop 75-400 ms (bench/RESULTS.md §11), and even with everything older
frozen, the first full collection after a burst visited what the burst had created: 405 ms
after 60,000 Leases in 10 s (§18), the whole p99 of ``bench_api.py`` CREATE.

The policy:

* Survivors of every generation-1 and generation-2 collection are frozen (``gc.freeze``: moved
  to the permanent generation, which collections skip), so no automatic collection visits more
  than the young generations hold: at most ``YOUNG_THRESHOLD`` times the middle generation's
  threshold objects, a few tens of ms.
* Frozen objects are still freed by reference counting; only reference cycles among them
  wait, for a **complete collection** (thaw, collect, freeze again). It is due once the
  process has doubled since the last one (and grown by ``MIN_GROWTH``), and runs once the process
  has been mostly idle for a second (``IDLE_CPU``), when the pause stops nobody's request.
  A process that is never idle gets it anyway once it has grown ``force_factor`` times.
* The force factor follows what complete collections find (``next_force_factor``): the
  server's long-lived objects rarely end in cycles (on the 30,000-pod scale run, complete
  collections found no garbage at all), so one that reclaims almost nothing doubles the
  factor (up to ``MAX_FORCE``) and one that reclaims a tenth of the heap halves it. The
  garbage frozen cycles can hold stays bounded by what the process measured itself holding.
  It starts at 8x: measured from the heap right after startup, 4x was reached inside one 10 s
  burst of 60,000 creates (a 313 ms pause in ``bench_api.py``'s CREATE phase), while no complete
  collection on any benchmark run found more than 300 unreachable objects.

Young collections run every ``YOUNG_THRESHOLD`` net container allocations instead of
CPython's 700. Each pod change is decoded into a few hundred containers that stay alive for
a while (informer caches, watch buffers, the pod's worker), so at 700 the collector ran about
1.5 times per pod write, promoted most of those objects to the older generations and then
walked them again in the full collections: 0.5 ms of the event loop's CPU per short pod (about
9 %; bench/RESULTS.md §17c). At 10,000 it is 0.27 ms. A young collection then visits up to
10,000 objects (a few ms).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

YOUNG_THRESHOLD = 10_000  # net container allocations between young collections (CPython: 700)
IDLE_FACTOR = 2.0  # a complete collection is due once the process has grown this much ...
MIN_GROWTH = 64 * 2**20  # ... and by at least this many bytes (small heaps: collect rarely)
FORCE_FACTOR = 8.0  # a process never idle collects completely once grown this much (adapts)
MIN_FORCE, MAX_FORCE = 2.0, 64.0
IDLE_CPU = 0.25  # "idle": the process used at most this share of one CPU ...
CHECK_SECONDS = 0.25
IDLE_WINDOW = 1.0  # ... over this long, every check waking at most IDLE_LATENESS late
IDLE_LATENESS = 0.02
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def heap_bytes() -> int:
    """The process's resident size: a cheap stand-in for the heap (``gc.get_freeze_count``
    walks every frozen object, as slow as the collection it is meant to avoid)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return sys.getallocatedblocks() * 64


def grown(size: int, baseline: int, factor: float, minimum: int = MIN_GROWTH) -> bool:
    """Whether the heap (``size`` bytes, ``baseline`` after the last complete collection) has
    grown ``factor`` times, and by at least ``minimum`` bytes."""
    return size - baseline >= max(minimum, (factor - 1.0) * baseline)


def next_force_factor(factor: float, freed_share: float) -> float:
    """The growth that forces the next complete collection, from the share of the heap's
    blocks the last one freed: little garbage in frozen cycles lets them wait longer."""
    if freed_share >= 0.10:
        return max(MIN_FORCE, factor / 2)
    if freed_share < 0.02:
        return min(MAX_FORCE, factor * 2)
    return factor


def mostly_idle(cpu_seconds: float, wall_seconds: float, share: float = IDLE_CPU) -> bool:
    """Whether a process that used ``cpu_seconds`` over ``wall_seconds`` was mostly idle."""
    return wall_seconds > 0 and cpu_seconds <= share * wall_seconds


class Policy:
    """Freezes the survivors of older collections; runs complete collections when due."""

    def __init__(self, measure: Callable[[], int] = heap_bytes,
                 blocks: Callable[[], int] = sys.getallocatedblocks) -> None:
        self.measure = measure
        self.blocks = blocks
        self.baseline = measure()
        self.force_factor = FORCE_FACTOR
        self.collecting = False
        self.completed = 0  # complete collections run
        self.loop: asyncio.AbstractEventLoop | None = None
        self._forcing = False  # a forced complete collection is scheduled on the loop

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation", 0) < 1 or self.collecting:
            return
        # runs in whichever thread triggered the collection, with the GIL: only list moves here
        gc.freeze()
        if self.loop is not None and not self._forcing and grown(self.measure(), self.baseline, self.force_factor):
            self._forcing = True
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self.loop.call_soon_threadsafe(self.complete)

    def complete(self) -> int:
        """Thaw, collect everything, freeze the survivors; adapt the force factor. Returns
        the number of unreachable objects found."""
        self.collecting, self._forcing = True, False
        started, before = time.perf_counter(), self.blocks()
        try:
            gc.unfreeze()
            found = gc.collect()
            gc.freeze()
        finally:
            self.collecting = False
        after = self.blocks()
        freed = (before - after) / before if before > 0 else 0.0
        self.force_factor = next_force_factor(self.force_factor, freed)
        self.baseline = self.measure()
        self.completed += 1
        log.info("complete garbage collection: %.0f ms, %d unreachable objects, %.1f %% of blocks freed; "
                 "next forced at %gx", (time.perf_counter() - started) * 1000, found, freed * 100,
                 self.force_factor)
        return found

    def due_when_idle(self, cpu_seconds: float, wall_seconds: float, late: float = 0.0) -> bool:
        return (mostly_idle(cpu_seconds, wall_seconds) and late <= IDLE_LATENESS
                and grown(self.measure(), self.baseline, IDLE_FACTOR))

    async def run_when_idle(self, interval: float = CHECK_SECONDS, window: float = IDLE_WINDOW) -> None:
        """Every ``interval``: a complete collection if one is due and the process was
        mostly idle over the last ``window`` seconds (checked often, so that a pause between
        two bursts is found while it lasts). Idle also means every check woke on time: a
        process starved of CPU by others uses little of it too, with requests waiting."""
        samples: collections.deque[tuple[float, float, float]] = collections.deque()  # (wall, cpu, late)
        samples.append((time.monotonic(), time.process_time(), 0.0))
        while True:
            planned = time.monotonic() + interval
            await asyncio.sleep(interval)
            now, used = time.monotonic(), time.process_time()
            samples.append((now, used, now - planned))
            while len(samples) > 2 and now - samples[1][0] >= window:
                samples.popleft()  # keep the newest sample at least ``window`` old
            wall, cpu, _ = samples[0]
            late = max(s[2] for s in samples)
            if now - wall >= window and self.due_when_idle(used - cpu, now - wall, late):
                self.complete()
                samples.clear()  # the collection's own CPU is not load
                samples.append((time.monotonic(), time.process_time(), 0.0))


def install() -> Callable[[], None]:
    """Collect and freeze what startup built, then keep freezing survivors of older
    collections; young collections every ``YOUNG_THRESHOLD`` allocations. Called within a
    running event loop, complete collections run on it (idle, or forced); outside one, only
    the freezing applies. Returns the function that restores the default behaviour."""
    gc.collect()
    gc.freeze()
    policy = Policy()
    gc.callbacks.append(policy.on_gc)
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD), *thresholds[1:])
    task: asyncio.Task[None] | None = None
    with contextlib.suppress(RuntimeError):  # no running loop
        policy.loop = asyncio.get_running_loop()
        task = policy.loop.create_task(policy.run_when_idle(), name="gc-when-idle")
    log.debug("gc policy installed: startup objects frozen")

    def uninstall() -> None:
        if task is not None:
            task.cancel()
        policy.loop = None
        if policy.on_gc in gc.callbacks:
            gc.callbacks.remove(policy.on_gc)
        gc.set_threshold(*thresholds)
        gc.unfreeze()

    return uninstall
