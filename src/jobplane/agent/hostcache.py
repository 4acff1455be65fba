"""Answers about the host's file system that the agent needs at every container start, kept a
short while: where a program is on PATH, where a mount point really is (through the host's
symbolic links), what a hidden path is.

They are asked on the event loop, which the embedded agent shares with the API server, and each
costs a handful of ``access``/``lstat`` calls per start (a PATH walk of eight directories, a
``realpath`` of the service-account mount point: ~20 system calls per pod, bench/RESULTS.md §19c).
A system call on the loop releases the GIL and must win it back from the busy helper threads, so
these cost more there than they look. The host's PATH directories, ``/var/run`` and the agent's
own paths change rarely; an answer older than ``TTL`` seconds is worked out again, so a program
installed earlier on PATH (or a changed symbolic link) is seen within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

TTL = 1.0
SIZE = 1024  # entries; the table is emptied when full (its keys are a node's few programs and paths)

V = TypeVar("V")


def fresh(stamp: float, now: float, ttl: float) -> bool:
    """Whether an answer found at ``stamp`` may be used at ``now`` (a clock that went back: no)."""
    return stamp <= now < stamp + ttl


class Recent(Generic[V]):
    """``compute()``'s answer for a key, reused while ``fresh``."""

    def __init__(self, ttl: float = TTL, size: int = SIZE, now: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.size, self._now = ttl, size, now
        self._items: dict[Hashable, tuple[V, float]] = {}

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        now = self._now()
        hit = self._items.get(key)
        if hit is not None and fresh(hit[1], now, self.ttl):
            return hit[0]
        value = compute()  # (an exception is not kept: the next start asks again)
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = (value, now)
        return value

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
