"""Garbage-collector policy of a long-running server: full collections stay short.

CPython's full (generation 2) collection visits every object the collector tracks, and the
server keeps many for as long as it runs: the store mirror's history and entries, every
informer's cached objects (a decoded Lease is 8 tracked containers, a Pod dozens), the
imported modules and schemas. On the benchmark machine a full collection costs about 0.4 µs
of CPU per tracked object; with 10,000 Leases created it paused the event loop 75-400 ms
(bench/RESULTS.md §11), which was the whole p99 of ``bench_api.py`` CREATE.

The policy: once the server is up, and after every full collection, the survivors are
frozen (``gc.freeze``: moved to the permanent generation, which collections skip), so the
next full collection visits only what became long-lived since. Frozen objects are still
freed by reference counting; only reference cycles among them wait, until the process has
grown by ``THAW_FACTOR`` (and ``MIN_THAW``) since the last complete collection. Then they
are thawed and the next full collection visits everything once, like CPython's own rule (a
full collection when the long-lived set grew by a quarter) but rarer, so garbage held by
frozen cycles stays bounded by the live heap.

Young collections run every ``YOUNG_THRESHOLD`` net container allocations instead of
CPython's 700. Each pod change is decoded into a few hundred containers that stay alive for
a while (informer caches, watch buffers, the pod's worker), so at 700 the collector ran about
1.5 times per pod write, promoted most of those objects to the older generations and then
walked them again in the full collections: 0.5 ms of the event loop's CPU per short pod (about
9 %; bench/RESULTS.md §17c). At 10,000 it is 0.27 ms. A young collection then visits up to
10,000 objects (a few ms), still below a full collection's pause.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

YOUNG_THRESHOLD = 10_000  # net container allocations between young collections (CPython: 700)
THAW_FACTOR = 2.0  # thaw when the heap has grown this much since the last complete collection
MIN_THAW = 64 * 2**20  # ... and by at least this many bytes (small heaps: collect rarely)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def heap_bytes() -> int:
    """The process's resident size: a cheap stand-in for the heap (``gc.get_freeze_count``
    walks every frozen object, as slow as the collection it is meant to avoid)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return sys.getallocatedblocks() * 64


def should_thaw(size: int, baseline: int, factor: float = THAW_FACTOR, minimum: int = MIN_THAW) -> bool:
    """Whether the heap (``size`` bytes, ``baseline`` after the last complete collection) has
    grown enough that the frozen objects are due for one complete collection."""
    return size - baseline >= max(minimum, (factor - 1.0) * baseline)


class _Policy:
    def __init__(self, measure: Callable[[], int] = heap_bytes) -> None:
        self.measure = measure
        self.baseline = measure()
        self.thawed = False  # the next full collection visits the whole heap

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        # runs in whichever thread triggered the collection, with the GIL: only list moves here
        gc.freeze()
        if self.thawed:  # that was the complete collection
            self.thawed = False
            self.baseline = self.measure()
        elif should_thaw(self.measure(), self.baseline):
            gc.unfreeze()
            self.thawed = True


def install() -> Callable[[], None]:
    """Collect and freeze what startup built, then keep freezing survivors of full
    collections; young collections every ``YOUNG_THRESHOLD`` allocations. Returns the
    function that restores the default behaviour."""
    gc.collect()
    gc.freeze()
    policy = _Policy()
    gc.callbacks.append(policy.on_gc)
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD), *thresholds[1:])
    log.debug("gc policy installed: startup objects frozen")

    def uninstall() -> None:
        if policy.on_gc in gc.callbacks:
            gc.callbacks.remove(policy.on_gc)
        gc.set_threshold(*thresholds)
        gc.unfreeze()

    return uninstall
