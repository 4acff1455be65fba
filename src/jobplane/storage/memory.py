"""In-memory Store: the reference for the conformance suite and the fast store of unit tests.
Nothing is durable."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

import orjson

from jobplane.storage.base import (
    Expired,
    KeyExists,
    KeyNotFound,
    ListResult,
    Predicate,
    RevisionConflict,
    Store,
    WatchEvent,
)
from jobplane.storage.continuation import decode_continue, encode_continue

_WATCH_QUEUE = 10_000


class _Watcher:
    def __init__(self, prefix: str, predicate: Predicate | None) -> None:
        self.prefix = prefix
        self.predicate = predicate
        self.queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue(_WATCH_QUEUE)
        self.overflowed = False


class MemoryStore(Store):
    def __init__(self, history: int = 100_000) -> None:
        self._data: dict[str, tuple[int, bytes]] = {}
        self._rev = 0
        self._history: collections.deque[WatchEvent] = collections.deque(maxlen=history)
        self._watchers: list[_Watcher] = []
        self._closed = False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._closed = True
        for w in self._watchers:
            w.queue.put_nowait(None)
        self._watchers.clear()

    def current_revision(self) -> int:
        return self._rev

    def _compacted_before(self) -> int:
        """Oldest revision a watch may start from (exclusive)."""
        if not self._history:
            return self._rev
        return self._history[0].revision - 1

    def _commit(self, key: str, etype: str, obj: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
        self._rev += 1
        rev = self._rev
        obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
        raw = orjson.dumps(obj)
        if etype == "DELETED":
            self._data.pop(key, None)
        else:
            self._data[key] = (rev, raw)
        event = WatchEvent(etype, key, obj, rev, prev)
        self._history.append(event)
        for w in list(self._watchers):
            if not key.startswith(w.prefix):
                continue
            try:
                w.queue.put_nowait(event)
            except asyncio.QueueFull:
                w.overflowed = True
                self._watchers.remove(w)
                w.queue = asyncio.Queue(1)
                w.queue.put_nowait(None)
        return orjson.loads(raw)

    async def create(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        if key in self._data:
            raise KeyExists(key)
        return self._commit(key, "ADDED", orjson.loads(orjson.dumps(obj)), None)

    async def get(self, key: str) -> dict[str, Any]:
        try:
            return orjson.loads(self._data[key][1])
        except KeyError:
            raise KeyNotFound(key) from None

    def _check(self, key: str, expected_rv: str | None) -> dict[str, Any]:
        try:
            rev, raw = self._data[key]
        except KeyError:
            raise KeyNotFound(key) from None
        if expected_rv and str(rev) != str(expected_rv):
            raise RevisionConflict(key)
        return orjson.loads(raw)

    async def update(self, key: str, obj: dict[str, Any], expected_rv: str | None = None) -> dict[str, Any]:
        prev = self._check(key, expected_rv)
        return self._commit(key, "MODIFIED", orjson.loads(orjson.dumps(obj)), prev)

    async def delete(self, key: str, expected_rv: str | None = None) -> dict[str, Any]:
        prev = self._check(key, expected_rv)
        return self._commit(key, "DELETED", orjson.loads(orjson.dumps(prev)), prev)

    async def list(self, prefix: str, predicate: Predicate | None = None, limit: int | None = None,
                   continue_token: str | None = None) -> ListResult:
        start_after = ""
        if continue_token:
            rev, start_after = decode_continue(continue_token)
            if rev < self._compacted_before():
                raise Expired("The provided continue parameter is too old")
        keys = sorted(k for k in self._data if k.startswith(prefix) and k > start_after)
        items: list[dict[str, Any]] = []
        last = ""
        remaining = 0
        for i, k in enumerate(keys):
            obj = orjson.loads(self._data[k][1])
            if predicate is not None and not predicate(obj):
                continue
            if limit and len(items) >= limit:
                remaining = len(keys) - i
                break
            items.append(obj)
            last = k
        token = encode_continue(self._rev, last) if remaining else None
        return ListResult(items, self._rev, token, remaining if remaining else None)

    async def watch(self, prefix: str, from_rev: int | None = None, predicate: Predicate | None = None
                    ) -> AsyncIterator[WatchEvent]:
        if from_rev is not None and from_rev < self._compacted_before():
            raise Expired(f"too old resource version: {from_rev} ({self._compacted_before() + 1})")
        watcher = _Watcher(prefix, predicate)
        replay = [e for e in self._history
                  if from_rev is not None and e.revision > from_rev and e.key.startswith(prefix)]
        self._watchers.append(watcher)
        try:
            last = from_rev if from_rev is not None else self._rev
            for e in replay:
                last = e.revision
                yield e
            while True:
                event = await watcher.queue.get()
                if event is None:
                    if watcher.overflowed:
                        raise Expired("watch fell too far behind")
                    return
                if event.revision <= last:
                    continue
                last = event.revision
                yield event
        finally:
            if watcher in self._watchers:
                self._watchers.remove(watcher)
