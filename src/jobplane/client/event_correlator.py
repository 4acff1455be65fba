"""client-go's EventCorrelator (tools/record/events_cache.go), as pure logic.

Upstream's recorder runs every event through three steps before it reaches the API:

* aggregation: when one source records more than ``AGGREGATE_MAX_EVENTS - 1`` events about
  one object with the same type and reason but different messages within
  ``AGGREGATE_INTERVAL`` seconds, the rest go into one event whose message is
  ``"(combined from similar events): <latest message>"`` (created once, then counted);
* de-duplication: an identical event bumps ``count`` of the one already written (the
  recorder's cache of written events does that part);
* spam filter: a token bucket per source and object (burst ``SPAM_BURST``, refilled at
  ``SPAM_QPS``) drops what exceeds it; it applies to count bumps too.

So a Job that creates 100,000 pods records a handful of SuccessfulCreate events instead
of 100,000, which is what bounds the Events a busy control plane keeps.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

LRU_ENTRIES = 4096  # maxLruCacheEntries
AGGREGATE_MAX_EVENTS = 10  # defaultAggregateMaxEvents
AGGREGATE_INTERVAL = 600.0  # defaultAggregateIntervalInSeconds
SPAM_BURST = 25  # defaultSpamBurst
SPAM_QPS = 1.0 / 300.0  # defaultSpamQPS
COMBINED_PREFIX = "(combined from similar events): "


class _Lru(collections.OrderedDict[Any, Any]):
    """groupcache's lru.Cache: get refreshes, add evicts the oldest past ``size``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def touch(self, key: Hashable, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class _Bucket:
    """flowcontrol's token bucket: starts full, refills continuously."""

    __slots__ = ("tokens", "last")

    def __init__(self, burst: int, now: float) -> None:
        self.tokens = float(burst)
        self.last = now

    def try_accept(self, burst: int, qps: float, now: float) -> bool:
        self.tokens = min(float(burst), self.tokens + max(0.0, now - self.last) * qps)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class Correlated:
    """What to write: the (possibly combined) message and the key that identifies the
    written event for count bumps (the full event key, or the aggregate key)."""

    message: str
    key: tuple[str, ...]


class EventCorrelator:
    def __init__(self, *, max_events: int = AGGREGATE_MAX_EVENTS, interval: float = AGGREGATE_INTERVAL,
                 burst: int = SPAM_BURST, qps: float = SPAM_QPS, lru_entries: int = LRU_ENTRIES) -> None:
        self.max_events = max_events
        self.interval = interval
        self.burst = burst
        self.qps = qps
        # aggregate key -> (distinct messages seen, time of the last one)
        self._aggregates = _Lru(lru_entries)
        self._spam = _Lru(lru_entries)

    def correlate(self, source: tuple[str, str], ref: dict[str, str], type_: str, reason: str,
                  message: str, now: float) -> Correlated | None:
        """The event to write for this occurrence, or None when the spam filter drops it.
        ``source`` is (component, host); ``ref`` the involvedObject."""
        obj = (ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""), ref.get("uid", ""),
               ref.get("apiVersion", ""))
        aggregate_key = (*source, *obj, type_, reason)
        result = Correlated(message, (*aggregate_key, ref.get("fieldPath", ""), message))
        record = self._aggregates.get(aggregate_key)
        if record is None or now - record[1] > self.interval:
            record = (set(), now)
        messages: set[str] = record[0]
        messages.add(message)
        self._aggregates.touch(aggregate_key, (messages, now))
        if len(messages) >= self.max_events:
            messages.pop()  # do not grow the set past the threshold
            result = Correlated(COMBINED_PREFIX + message, ("aggregate", *aggregate_key))
        spam_key = (*source, *obj)
        bucket = self._spam.get(spam_key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        accepted = bucket.try_accept(self.burst, self.qps, now)
        self._spam.touch(spam_key, bucket)
        return result if accepted else None
