"""In-memory mirror of committed state: current objects, a bounded history, watch fan-out.

The durable backends keep their committed state here so ``get``/``list``/``watch``
never touch the database. Objects are held as orjson bytes (a caller mutating what it
got back can never corrupt the store); every read hands out a fresh decode, except
that predicates see a cached decode and watchers of one change share one decode
(callers must not mutate, see ``storage.base``).

The mirror is fed only with committed ``Change`` records in revision order, and every
revision is exactly one change, so history is contiguous: the change for revision
``r`` sits at index ``r - compact_rev - 1``.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import itertools
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import orjson

from jobplane.storage.base import Expired, ListResult, Predicate, WatchEvent
from jobplane.storage.continuation import decode_continue, encode_continue
from jobplane.storage.writes import ADDED, DELETED, MODIFIED, Change

WATCH_BUFFER = 10_000  # undelivered events per watcher before it is cut off (Expired)


class _Entry:
    __slots__ = ("rev", "data", "_obj")

    def __init__(self, rev: int, data: bytes) -> None:
        self.rev = rev
        self.data = data
        self._obj: dict[str, Any] | None = None

    def obj(self) -> dict[str, Any]:
        """Cached decode, only ever shown to predicates."""
        if self._obj is None:
            self._obj = orjson.loads(self.data)
        return self._obj


class _Event(WatchEvent):
    """A WatchEvent that decodes its objects on first access (one decode shared by all watchers)."""

    def __init__(self, ch: Change) -> None:  # noqa: D107 - deliberately not the dataclass __init__
        self.type = ch.type
        self.key = ch.key
        self.revision = ch.rev
        self._data: bytes | None = ch.data
        self._prev_data = ch.prev
        self._object: dict[str, Any] | None = None
        self._prev_object: dict[str, Any] | None = None

    @property  # type: ignore[override]
    def object(self) -> dict[str, Any]:
        if self._object is None:
            self._object = orjson.loads(self._data)  # type: ignore[arg-type]
        return self._object

    @object.setter
    def object(self, value: dict[str, Any]) -> None:
        self._object = value

    @property  # type: ignore[override]
    def prev_object(self) -> dict[str, Any] | None:
        if self._prev_object is None and self._prev_data is not None:
            self._prev_object = orjson.loads(self._prev_data)
        return self._prev_object

    @prev_object.setter
    def prev_object(self, value: dict[str, Any] | None) -> None:
        self._prev_object = value
        self._prev_data = None


def event_of(ch: Change) -> WatchEvent:
    if ch.event is None:
        ch.event = _Event(ch)
    return ch.event


def filtered_event(ch: Change, predicate: Predicate | None) -> WatchEvent | None:
    """The event a predicate-filtered watcher sees, as the apiserver watch cache sends it:
    a MODIFIED that leaves the selection is DELETED, one that enters it is ADDED."""
    ev = event_of(ch)
    if predicate is None:
        return ev
    now = predicate(ev.object)
    if ch.type != MODIFIED:
        return ev if now else None
    was = predicate(ev.prev_object) if ev.prev_object is not None else now
    if now and was:
        return ev
    if now:
        return WatchEvent(ADDED, ch.key, ev.object, ch.rev, ev.prev_object)
    if was:
        return WatchEvent(DELETED, ch.key, ev.object, ch.rev, ev.prev_object)
    return None


class _Watcher:
    __slots__ = ("prefix", "buf", "wake", "overflowed", "closed")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.buf: collections.deque[Change] = collections.deque()
        self.wake = asyncio.Event()
        self.overflowed = False
        self.closed = False


class Mirror:
    def __init__(self, history: int) -> None:
        self.history = max(0, history)
        self.rev = 0
        self.compact_rev = 0  # watches may start at revisions >= this
        self._entries: dict[str, _Entry] = {}
        self._keys: list[str] = []  # sorted
        self._hist: collections.deque[Change] = collections.deque()
        self._watchers: set[_Watcher] = set()
        self.closed = False

    # ------------------------------------------------------------------ loading

    def load(self, rev: int, objects: Iterable[tuple[str, int, bytes]], history: list[Change]) -> None:
        """Reset to a loaded state: current objects at ``rev`` plus the tail of history."""
        self._entries = {k: _Entry(r, d) for k, r, d in objects}
        self._keys = sorted(self._entries)
        self._hist = collections.deque(history)
        self.rev = rev
        self.compact_rev = history[0].rev - 1 if history else rev
        self._trim()

    # ------------------------------------------------------------------ writes

    def lookup(self, key: str) -> tuple[int, bytes] | None:
        e = self._entries.get(key)
        return None if e is None else (e.rev, e.data)

    def apply(self, changes: list[Change]) -> None:
        """Apply committed changes (in revision order) and fan them out to watchers."""
        for ch in changes:
            if ch.type == DELETED:
                if self._entries.pop(ch.key, None) is not None:
                    i = bisect.bisect_left(self._keys, ch.key)
                    del self._keys[i]
            else:
                if ch.key not in self._entries:
                    bisect.insort(self._keys, ch.key)
                self._entries[ch.key] = _Entry(ch.rev, ch.data)
            self._hist.append(ch)
            self.rev = ch.rev
        self._trim()
        for w in list(self._watchers):
            added = False
            for ch in changes:
                if ch.key.startswith(w.prefix):
                    w.buf.append(ch)
                    added = True
            if added:
                if len(w.buf) > WATCH_BUFFER:
                    w.overflowed = True
                    w.buf.clear()
                    self._watchers.discard(w)
                w.wake.set()

    def _trim(self) -> None:
        floor = self.rev - self.history
        while self._hist and self._hist[0].rev <= floor:
            self._hist.popleft()
        self.compact_rev = max(self.compact_rev, floor)

    def close(self) -> None:
        self.closed = True
        self.expire_watchers(overflow=False)

    def expire_watchers(self, overflow: bool = True) -> None:
        """End every watch: with Expired (the client must relist) or, on close, cleanly."""
        for w in self._watchers:
            w.overflowed = overflow
            w.closed = True
            w.wake.set()
        self._watchers.clear()

    # ------------------------------------------------------------------ reads

    def get_bytes(self, key: str) -> bytes | None:
        e = self._entries.get(key)
        return None if e is None else e.data

    def _since(self, rev: int) -> Iterator[Change]:
        """History after ``rev`` (which must be >= compact_rev)."""
        return itertools.islice(self._hist, max(0, rev - self.compact_rev), None)

    def _snapshot(self, prefix: str, after: str, at_rev: int) -> tuple[list[str], dict[str, bytes | None]]:
        """Keys under prefix after ``after`` as of ``at_rev`` (sorted), and the states of those
        changed since then (None: absent at ``at_rev``); other keys read the current entry."""
        lo = bisect.bisect_right(self._keys, after) if after >= prefix else bisect.bisect_left(self._keys, prefix)
        hi = bisect.bisect_left(self._keys, prefix + "\U0010ffff", lo)
        keys = self._keys[lo:hi]
        older: dict[str, bytes | None] = {}
        if at_rev >= self.rev:
            return keys, older
        for ch in self._since(at_rev):
            if ch.key.startswith(prefix) and ch.key > after and ch.key not in older:
                older[ch.key] = ch.prev
        keys = sorted({k for k in keys if k not in older} | {k for k, d in older.items() if d is not None})
        return keys, older

    def list(self, prefix: str, predicate: Predicate | None = None, limit: int | None = None,
             continue_token: str | None = None, *, raw: bool = False) -> ListResult:
        """A consistent snapshot (module doc of storage.base); ``raw`` leaves items as orjson bytes."""
        at_rev, after = self.rev, ""
        if continue_token:
            at_rev, after = decode_continue(continue_token)
            if at_rev < self.compact_rev:
                raise Expired("The provided continue parameter is too old to display a consistent list "
                              "result. You can start a new list without the continue parameter.")
            at_rev = min(at_rev, self.rev)
        keys, older = self._snapshot(prefix, after, at_rev)
        entries = self._entries
        loads = orjson.loads
        items: list[Any] = []
        last = ""
        for i, key in enumerate(keys):
            if older and key in older:
                data: bytes = older[key]  # type: ignore[assignment]
                if predicate is not None and not predicate(loads(data)):
                    continue
            else:
                entry = entries[key]
                data = entry.data
                if predicate is not None and not predicate(entry._obj or entry.obj()):
                    continue
            if limit and len(items) >= limit:
                remaining = len(keys) - i if predicate is None else None
                return ListResult(items, at_rev, encode_continue(at_rev, last), remaining)
            items.append(data if raw else loads(data))
            last = key
        return ListResult(items, at_rev)

    async def watch(self, prefix: str, from_rev: int, predicate: Predicate | None) -> AsyncIterator[WatchEvent]:
        """Replay history after ``from_rev`` then live changes (see storage.base)."""
        if self.closed:
            return
        if from_rev < self.compact_rev:
            raise Expired(f"too old resource version: {from_rev} ({self.compact_rev + 1})")
        w = _Watcher(prefix)
        replay = [ch for ch in self._since(from_rev) if ch.key.startswith(prefix)]
        self._watchers.add(w)  # no await since the replay snapshot: nothing is missed or doubled
        try:
            for ch in replay:
                ev = filtered_event(ch, predicate)
                if ev is not None:
                    yield ev
            while True:
                if w.buf:
                    ch = w.buf.popleft()
                    if ch.rev <= from_rev:
                        continue
                    ev = filtered_event(ch, predicate)
                    if ev is not None:
                        yield ev
                elif w.overflowed:
                    raise Expired("watch channel overflowed: the watcher fell too far behind")
                elif w.closed:
                    return
                else:
                    w.wake.clear()
                    await w.wake.wait()
        finally:
            self._watchers.discard(w)
