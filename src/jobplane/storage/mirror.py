"""In-memory mirror of committed state: current objects, a bounded history, watch fan-out.

The durable backends (and the memory store) keep their committed state here so
``get``/``list``/``watch`` never touch the database. Memory is the constraint, so:

* current objects are orjson bytes plus revision and label postings, nothing decoded
  (every read hands out a fresh decode; a caller mutating it can never corrupt the store);
* an Event or a pod that has not changed since its change left the history ("cold") is
  kept compressed against a sibling (``packing``): 4 Events per pod are written once and kept
  for the 1 h TTL, and PodGC keeps 12,500 finished pods of ~5 KB; at a 100,000-completion
  plateau those pods' JSON was the largest holder (63 MB, now ~3 MB). Reads inflate it
  (15-25 us, a tenth of decoding it); the bytes handed out are the same;
* history is bytes only, bounded by revisions *and* bytes (whichever is smaller);
* a change's decoded event is shared by the live watchers it was fanned out to, and
  dropped when the last of them has delivered it (replays decode privately);
* a label index (``labelindex``) lets label-selected LISTs visit only matching keys;
* the durable stores keep Events (``SPILLED_PREFIXES``) out of it altogether, as upstream
  keeps them out of its watch cache: a 100,000-pod run writes 400,000 of them, kept for the
  1 h TTL, and even compressed they were most of the memory. Their changes still pass
  through the history (watches are unchanged), but the current objects are only in the
  database; the store reads them there (``MirroredStore``), and the mirror keeps only how
  many there are (``count_prefix``, for ``apiserver_storage_objects``).

The mirror is fed only with committed ``Change`` records in revision order, and every
revision is exactly one change, so history is contiguous: the change for revision
``r`` sits at index ``r - compact_rev - 1``.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import itertools
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import orjson

from jobplane.storage.base import Expired, ListResult, Predicate, WatchEvent
from jobplane.storage.continuation import decode_continue, encode_continue
from jobplane.storage.labelindex import NO_POSTINGS, LabelIndex, Postings, labels_of, labels_of_bytes
from jobplane.storage.packing import Packer, inflate
from jobplane.storage.writes import ADDED, DELETED, MODIFIED, Change

WATCH_BUFFER = 10_000  # undelivered events per watcher before it is cut off (Expired)
DEFAULT_HISTORY = 100_000  # revisions of history kept for watch replay and continue tokens ...
DEFAULT_HISTORY_BYTES = 64 * 2**20  # ... and at most this many bytes of them, whichever is smaller
CHANGE_OVERHEAD = 160  # bytes a history entry costs beyond its JSON (Change object, deque slot)
PACKED_PREFIXES = ("events/", "pods/")  # storage keys whose cold objects are kept compressed
PACK_MIN = 256  # ... when at least this long (smaller ones gain little)
SPILLED_PREFIXES = ("events/",)  # storage keys whose current objects a durable store reads from its database
TOO_OLD_CONTINUE = ("The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter.")


def resource_of(key: str) -> str:
    """The storage prefix of a key (``/pods/ns/name`` -> ``pods``)."""
    return key.split("/", 2)[1] if key.startswith("/") else key.split("/", 1)[0]


def prefix_end(prefix: str) -> str:
    """The least string above every string that starts with ``prefix`` (a range's upper bound)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def range_start(prefix: str, after: str) -> tuple[str, str]:
    """The one lower bound (SQL operator, value) of the keys under ``prefix`` after ``after``:
    SQLite's planner seeks to only one of two lower bounds and scans from there, so a list's
    later pages each cost a scan from the prefix's first key (224 ms a page at 200,000 rows,
    against 0.6 ms)."""
    return (">", after) if after >= prefix else (">=", prefix)


def change_size(ch: Change) -> int:
    """What a change costs the history budget: its event and previous-state bytes (the latter
    often shared with a neighbour, so this over-counts: the budget is an upper bound)."""
    return len(ch.data) + (len(ch.prev) if ch.prev is not None else 0) + CHANGE_OVERHEAD


class _Entry:
    """A current object: revision, orjson bytes (compressed once cold: ``packed``, against
    the dictionary ``zdict``) and its label postings (nothing decoded)."""

    __slots__ = ("rev", "data", "labels", "packed", "zdict")

    def __init__(self, rev: int, data: bytes, labels: Postings) -> None:
        self.rev = rev
        self.data = data
        self.labels = labels
        self.packed = False
        self.zdict: bytes | None = None

    def raw(self) -> bytes:
        """The object's JSON bytes."""
        return inflate(self.data, self.zdict) if self.packed else self.data

    def stored(self) -> bytes | _Packed:
        """The bytes, or a handle that inflates them later (``RawItems``)."""
        return _Packed(self.data, self.zdict) if self.packed else self.data

    def set(self, rev: int, data: bytes, labels: Postings) -> None:
        self.rev, self.data, self.labels, self.packed, self.zdict = rev, data, labels, False, None

    def pack(self, packer: Packer, prefix: str) -> None:
        """Keep the bytes compressed: nothing in history shares them any more."""
        if not self.packed and len(self.data) >= PACK_MIN:
            self.data, self.zdict = packer.pack(prefix, self.data)
            self.packed = True


class _Packed:
    """A packed object's stored form as a raw list captured it: inflated when read."""

    __slots__ = ("data", "zdict")

    def __init__(self, data: bytes, zdict: bytes | None) -> None:
        self.data = data
        self.zdict = zdict


def _unpacked(item: bytes | _Packed) -> bytes:
    return inflate(item.data, item.zdict) if type(item) is _Packed else item  # type: ignore[return-value]


class RawItems(Sequence[bytes]):
    """The items of a raw list (``list_bytes``): each object's JSON bytes, inflated as it is
    read. The Table of ``kubectl get pods`` and a Job's archiving read 12,500 finished pods
    one at a time; inflated all at once they would hold 63 MB for the whole request."""

    __slots__ = ("_items",)

    def __init__(self, items: list[bytes | _Packed]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...

    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return [_unpacked(x) for x in self._items[i]]
        return _unpacked(self._items[i])

    def __iter__(self) -> Iterator[bytes]:
        return map(_unpacked, self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))

    def __repr__(self) -> str:
        return f"RawItems({list(self)!r})"


class _Event(WatchEvent):
    """A WatchEvent that decodes its objects on first access."""

    def __init__(self, ch: Change) -> None:  # noqa: D107 - deliberately not the dataclass __init__
        self.type = ch.type
        self.key = ch.key
        self.revision = ch.rev
        self._data: bytes | None = ch.data
        self._prev_data = ch.prev
        self._object: dict[str, Any] | None = None
        self._prev_object: dict[str, Any] | None = None

    @property
    def object(self) -> dict[str, Any]:
        if self._object is None:
            self._object = orjson.loads(self._data)  # type: ignore[arg-type]
        return self._object

    @object.setter
    def object(self, value: dict[str, Any]) -> None:
        self._object = value

    @property
    def prev_object(self) -> dict[str, Any] | None:
        if self._prev_object is None and self._prev_data is not None:
            self._prev_object = orjson.loads(self._prev_data)
        return self._prev_object

    @prev_object.setter
    def prev_object(self, value: dict[str, Any] | None) -> None:
        self._prev_object = value
        self._prev_data = None


def event_of(ch: Change) -> WatchEvent:
    """The decoded event of ``ch``: shared with the other live watchers that still have to
    deliver it (``ch.pending``), otherwise a private one that goes away after use."""
    ev = ch.event
    if ev is None:
        ev = _Event(ch)
        if ch.pending:
            ch.event = ev
    return ev


def release(ch: Change) -> None:
    """One live watcher is done with ``ch``; the last one drops the shared decode."""
    ch.pending -= 1
    if ch.pending <= 0:
        ch.pending = 0
        ch.event = None


def filtered_event(ev: WatchEvent, predicate: Predicate | None) -> WatchEvent | None:
    """The event a predicate-filtered watcher sees, as the apiserver watch cache sends it:
    a MODIFIED that leaves the selection is DELETED, one that enters it is ADDED."""
    if predicate is None:
        return ev
    now = predicate(ev.object)
    if ev.type != MODIFIED:
        return ev if now else None
    was = predicate(ev.prev_object) if ev.prev_object is not None else now
    if now and was:
        return ev
    if now:
        return WatchEvent(ADDED, ev.key, ev.object, ev.revision, ev.prev_object)
    if was:
        return WatchEvent(DELETED, ev.key, ev.object, ev.revision, ev.prev_object)
    return None


def _carries(obj: Any, pairs: tuple[tuple[str, str], ...]) -> bool:
    labels = labels_of(obj) if isinstance(obj, Mapping) else None
    return bool(labels) and all(labels.get(k) == v for k, v in pairs)  # type: ignore[union-attr]


class Page:
    """One list page being filled, in key order: the predicate, the label hint (checked only
    where the label index did not already: ``check_hint``), the limit and the continue token."""

    __slots__ = ("at_rev", "predicate", "limit", "raw", "hinted", "items", "last")

    def __init__(self, at_rev: int, predicate: Predicate | None, limit: int | None, raw: bool,
                 label_hint: Mapping[str, str] | None) -> None:
        self.at_rev = at_rev
        self.predicate = predicate
        self.limit = limit
        self.raw = raw
        self.hinted = tuple(label_hint.items()) if label_hint else ()
        self.items: list[Any] = []
        self.last = ""

    def add(self, key: str, data: bytes | _Packed, check_hint: bool) -> bool:
        """Offer the object at ``key``; False when it matches but the page is full already
        (the caller then ends the page with ``cut``)."""
        obj = None
        check_hint = check_hint and bool(self.hinted)
        if self.predicate is not None or check_hint:
            obj = orjson.loads(_unpacked(data))  # one decode serves the predicate and the item
            if check_hint and not _carries(obj, self.hinted):
                return True
            if self.predicate is not None and not self.predicate(obj):
                return True
        if self.limit and len(self.items) >= self.limit:
            return False
        self.items.append(data if self.raw else (obj if obj is not None else orjson.loads(_unpacked(data))))
        self.last = key
        return True

    def _items(self) -> Sequence[Any]:
        return RawItems(self.items) if self.raw else self.items

    def cut(self, remaining: int | None) -> ListResult:
        return ListResult(self._items(), self.at_rev, encode_continue(self.at_rev, self.last), remaining)

    def done(self) -> ListResult:
        return ListResult(self._items(), self.at_rev)


class _Watcher:
    __slots__ = ("prefix", "buf", "wake", "overflowed", "closed")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.buf: collections.deque[Change] = collections.deque()
        self.wake = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def drop_buffer(self) -> None:
        """Give up every undelivered change (releasing its shared decode)."""
        for ch in self.buf:
            release(ch)
        self.buf.clear()


class Mirror:
    def __init__(self, history: int = DEFAULT_HISTORY, history_bytes: int = DEFAULT_HISTORY_BYTES,
                 spilled: tuple[str, ...] = ()) -> None:
        self.history = max(0, history)
        # storage prefixes whose current objects are not kept here (the store reads them from
        # its database); only how many there are, per prefix
        self.spilled = spilled
        self._spilled_counts = dict.fromkeys(spilled, 0)
        self.history_bytes = max(0, history_bytes)
        self.rev = 0
        self.compact_rev = 0  # watches may start at revisions >= this
        self._entries: dict[str, _Entry] = {}
        self._keys: list[str] = []  # sorted
        self._index = LabelIndex()
        self._hist: collections.deque[Change] = collections.deque()
        self._hist_bytes = 0
        self._watchers: set[_Watcher] = set()
        self._packer = Packer()
        self.closed = False
        # (resource, event type) -> [changes, bytes written]: what every write cost, by kind
        # (``jobplane_storage_writes_total``; bench_throughput.py divides them per pod)
        self.write_counts: dict[tuple[str, str], list[int]] = {}

    # ------------------------------------------------------------------ loading

    def spills(self, key: str) -> bool:
        """Whether ``key`` (or a list prefix) is under a spilled prefix: read from the database."""
        return bool(self.spilled) and key.startswith(self.spilled)

    def load(self, rev: int, objects: Iterable[tuple[str, int, bytes]], history: list[Change],
             spilled_counts: Mapping[str, int] | None = None) -> None:
        """Reset to a loaded state: current objects at ``rev`` (none under a spilled prefix:
        of those, only ``spilled_counts``) plus the tail of history."""
        self._spilled_counts = {p: (spilled_counts or {}).get(p, 0) for p in self.spilled}
        self._entries = {}
        self._index = LabelIndex()
        for key, r, data in objects:
            postings = self._index.postings_for(labels_of_bytes(data))
            self._index.replace(key, NO_POSTINGS, postings)
            self._entries[key] = _Entry(r, data, postings)
        self._keys = sorted(self._entries)
        for ch in history:
            ch.labels = None
        self._hist = collections.deque(history)
        self._hist_bytes = sum(map(change_size, history))
        self.rev = rev
        self.compact_rev = history[0].rev - 1 if history else rev
        for key, e in self._entries.items():
            if e.rev <= self.compact_rev and key.startswith(PACKED_PREFIXES):
                e.pack(self._packer, resource_of(key))
        self._trim()

    # ------------------------------------------------------------------ writes

    def lookup(self, key: str) -> tuple[int, bytes] | None:
        e = self._entries.get(key)
        return None if e is None else (e.rev, e.raw())

    def apply(self, changes: list[Change]) -> None:
        """Apply committed changes (in revision order) and fan them out to watchers."""
        entries, index, keys, counts = self._entries, self._index, self._keys, self.write_counts
        spilled = self.spilled
        for ch in changes:
            key = ch.key
            tally = counts.get(kind := (resource_of(key), ch.type))
            if tally is None:
                tally = counts[kind] = [0, 0]
            tally[0] += 1
            tally[1] += len(ch.data)
            if spilled and key.startswith(spilled):
                if ch.type != MODIFIED:
                    self._spilled_counts[next(p for p in spilled if key.startswith(p))] += \
                        1 if ch.type == ADDED else -1
            elif ch.type == DELETED:
                entry = entries.get(key)
                if entry is not None:
                    del entries[key]
                    del keys[bisect.bisect_left(keys, key)]
                    index.replace(key, entry.labels, NO_POSTINGS)
            else:
                entry = entries.get(key)
                postings = index.postings_for(ch.labels if ch.labels is not None else labels_of_bytes(ch.data))
                if entry is None:
                    bisect.insort(keys, key)
                    index.replace(key, NO_POSTINGS, postings)
                    entries[key] = _Entry(ch.rev, ch.data, postings)
                else:
                    index.replace(key, entry.labels, postings)
                    entry.set(ch.rev, ch.data, postings)
            ch.labels = None
            self._hist.append(ch)
            self._hist_bytes += change_size(ch)
            self.rev = ch.rev
        self._trim()
        for w in list(self._watchers):
            added = False
            for ch in changes:
                if ch.key.startswith(w.prefix):
                    w.buf.append(ch)
                    ch.pending += 1
                    added = True
            if added:
                if len(w.buf) > WATCH_BUFFER:
                    w.overflowed = True
                    w.drop_buffer()
                    self._watchers.discard(w)
                w.wake.set()

    def _trim(self) -> None:
        """Drop history beyond ``history`` revisions or ``history_bytes`` bytes."""
        floor = self.rev - self.history
        hist, entries = self._hist, self._entries
        while hist and (hist[0].rev <= floor or self._hist_bytes > self.history_bytes):
            ch = hist.popleft()
            self._hist_bytes -= change_size(ch)
            self.compact_rev = max(self.compact_rev, ch.rev)
            if ch.key.startswith(PACKED_PREFIXES):
                e = entries.get(ch.key)
                if e is not None and e.rev == ch.rev:
                    e.pack(self._packer, resource_of(ch.key))  # unchanged since this change: cold
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
        return None if e is None else e.raw()

    def count_prefix(self, prefix: str) -> int:
        """Objects whose key starts with ``prefix``: two bisections of the sorted keys (a
        spilled prefix: its count; below one, not known here)."""
        if self.spilled and prefix.startswith(self.spilled):
            if prefix not in self._spilled_counts:
                raise ValueError(f"objects under {prefix!r} are counted only in the database")
            return self._spilled_counts[prefix]
        keys = self._keys
        lo = bisect.bisect_left(keys, prefix)
        return bisect.bisect_left(keys, prefix + "\U0010ffff", lo) - lo

    def stats(self) -> dict[str, int]:
        """Sizes for diagnostics (bench/mem_probe.py)."""
        return {"objects": len(self._entries), "history": len(self._hist), "history_bytes": self._hist_bytes,
                "compact_rev": self.compact_rev, "label_pairs": len(self._index),
                "shared_decodes": sum(1 for ch in self._hist if ch.event is not None),
                "packed": sum(1 for e in self._entries.values() if e.packed),
                "spilled": sum(self._spilled_counts.values()),
                "entry_bytes": sum(len(e.data) for e in self._entries.values())}

    def _since(self, rev: int) -> Iterator[Change]:
        """History after ``rev`` (which must be >= compact_rev)."""
        return itertools.islice(self._hist, max(0, rev - self.compact_rev), None)

    def _candidates(self, prefix: str, after: str, label_hint: Mapping[str, str] | None) -> list[str]:
        """Current keys under ``prefix`` after ``after`` (sorted); with a hint, only those that
        carry every hinted ``k=v`` pair, found through the label index."""
        pool, required = self._keys, NO_POSTINGS
        if label_hint:
            found = self._index.smallest(label_hint)
            if found is None:
                return []
            pool, required = found
        lo = bisect.bisect_right(pool, after) if after >= prefix else bisect.bisect_left(pool, prefix)
        hi = bisect.bisect_left(pool, prefix + "\U0010ffff", lo)
        keys = pool[lo:hi]
        if required:
            entries = self._entries
            keys = [k for k in keys if all(p in entries[k].labels for p in required)]
        return keys

    def continue_point(self, continue_token: str | None) -> tuple[int | None, str]:
        """(snapshot revision, last key returned) of a continue token; (None, "") without one.
        Raises Expired when that revision was compacted away."""
        if not continue_token:
            return None, ""
        at_rev, after = decode_continue(continue_token)
        if at_rev < self.compact_rev:
            raise Expired(TOO_OLD_CONTINUE)
        return min(at_rev, self.rev), after

    def states_at(self, prefix: str, after: str, at_rev: int) -> dict[str, bytes | None]:
        """The state at ``at_rev`` (None: absent) of every key under ``prefix`` after ``after``
        that changed since then: the previous state of its first change after ``at_rev``.
        ``at_rev`` must not be older than ``compact_rev``."""
        older: dict[str, bytes | None] = {}
        if at_rev >= self.rev:
            return older
        for ch in self._since(at_rev):
            if ch.key.startswith(prefix) and ch.key > after and ch.key not in older:
                older[ch.key] = ch.prev
        return older

    def gone_since(self, prefix: str, after: str, at_rev: int, rev: int) -> int:
        """How many more keys under ``prefix`` after ``after`` existed at ``at_rev`` than at
        ``rev`` (``compact_rev <= at_rev <= rev <= self.rev``): what turns a count of them read
        at ``rev`` into the count as of ``at_rev``."""
        was: dict[str, bool] = {}
        now: dict[str, bool] = {}
        for ch in self._since(at_rev):
            if ch.rev > rev:
                break
            if ch.key.startswith(prefix) and ch.key > after:
                was.setdefault(ch.key, ch.prev is not None)
                now[ch.key] = ch.type != DELETED
        return sum(was.values()) - sum(now.values())

    def _snapshot(self, prefix: str, after: str, at_rev: int, label_hint: Mapping[str, str] | None
                  ) -> tuple[list[str], dict[str, bytes | None]]:
        """Candidate keys under prefix after ``after`` as of ``at_rev`` (sorted), and the states
        of those changed since then (None: absent at ``at_rev``); other keys read the current
        entry. Keys changed since ``at_rev`` are candidates whatever their current labels."""
        keys = self._candidates(prefix, after, label_hint)
        older = self.states_at(prefix, after, at_rev)
        if older:
            keys = sorted({k for k in keys if k not in older} | {k for k, d in older.items() if d is not None})
        return keys, older

    def list(self, prefix: str, predicate: Predicate | None = None, limit: int | None = None,
             continue_token: str | None = None, *, raw: bool = False,
             label_hint: Mapping[str, str] | None = None) -> ListResult:
        """A consistent snapshot (module doc of storage.base); ``raw`` leaves items as orjson bytes.
        ``label_hint``: only objects carrying those labels (found via the label index). Not for
        a spilled prefix (the store reads those from its database)."""
        if self.spilled and any(p.startswith(prefix) or prefix.startswith(p) for p in self.spilled):
            raise ValueError(f"objects under {prefix!r} are not all kept in memory")
        at_rev, after = self.continue_point(continue_token)
        if at_rev is None:
            at_rev = self.rev
        keys, older = self._snapshot(prefix, after, at_rev, label_hint)
        entries = self._entries
        page = Page(at_rev, predicate, limit, raw, label_hint)
        for i, key in enumerate(keys):
            historic = bool(older) and key in older
            data = older[key] if historic else entries[key].stored()
            assert data is not None  # a key absent at the snapshot is no candidate
            if not page.add(key, data, historic):
                return page.cut(len(keys) - i if predicate is None and not label_hint else None)
        return page.done()

    async def watch(self, prefix: str, from_rev: int, predicate: Predicate | None) -> AsyncGenerator[WatchEvent, None]:
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
                ev = filtered_event(event_of(ch), predicate)
                if ev is not None:
                    yield ev
            replay.clear()
            while True:
                if w.buf:
                    ch = w.buf.popleft()
                    shared = event_of(ch) if ch.rev > from_rev else None
                    release(ch)
                    if shared is None:
                        continue
                    ev = filtered_event(shared, predicate)
                    del shared
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
            w.drop_buffer()
