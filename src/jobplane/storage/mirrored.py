"""The read side shared by every store that keeps its committed state in a ``Mirror``:
get/list/watch are answered from memory, except the current objects under a spilled prefix
(Events: ``mirror.SPILLED_PREFIXES``), which a durable store reads from its database (one
query per key, or per page of a list) and merges with the mirror's history for a list's
snapshot revision."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson

from jobplane.storage.base import Expired, KeyNotFound, ListResult, Predicate, Store, WatchEvent
from jobplane.storage.mirror import DEFAULT_HISTORY, DEFAULT_HISTORY_BYTES, TOO_OLD_CONTINUE, Mirror, Page

SPILL_CHUNK = 500  # rows per database read when a predicate may drop some of them
COUNTS_KEPT = 64  # spilled lists' remaining counts kept for their next page
Row = tuple[str, int, bytes]  # key, revision, JSON bytes


class MirroredStore(Store):
    """A Store whose reads come from ``self._mirror``; subclasses implement the writes and,
    when they spill (``spilled``), ``_read_key`` and ``_read_range``."""

    def __init__(self, history: int = DEFAULT_HISTORY, history_bytes: int = DEFAULT_HISTORY_BYTES,
                 spilled: tuple[str, ...] = ()) -> None:
        self._mirror = Mirror(history, history_bytes, spilled)
        # (prefix, snapshot revision, last key of a page) -> objects of that snapshot after it
        self._counts: OrderedDict[tuple[str, int, str], int] = OrderedDict()

    # ------------------------------------------------------------------ database reads (spilled prefixes)

    async def _read_key(self, key: str) -> tuple[int, bytes] | None:
        """The current (revision, bytes) of a spilled ``key`` in the database, None when absent."""
        raise NotImplementedError

    async def _read_range(self, prefix: str, after: str, limit: int) -> tuple[int, list[Row]]:
        """(the database's revision, its first ``limit`` current objects under ``prefix`` with
        keys after ``after``, in key order), read in one snapshot. On return the mirror must
        have applied every revision up to that one (so its history covers what the read saw)."""
        raise NotImplementedError

    async def _count_range(self, prefix: str, after: str) -> tuple[int, int]:
        """(the database's revision, how many current objects under ``prefix`` have keys after
        ``after``), read in one snapshot; on return the mirror has applied that revision (as
        for ``_read_range``)."""
        raise NotImplementedError

    async def _remaining(self, prefix: str, at_rev: int, after: str, page: Page) -> int | None:
        """How many objects of the snapshot at ``at_rev`` under ``prefix`` follow a full page
        read after ``after`` without a predicate (etcd's ``remainingItemCount``). The next
        page of a list takes its previous page's figure less its own items; a first page (or
        one whose figure is gone) counts in the database and corrects that count by the
        history back to ``at_rev``, so a list costs one count however many pages it has (a
        count per page grows with the square of its length). None when the history no longer
        reaches ``at_rev`` (clients must not rely on the figure)."""
        m = self._mirror
        known = self._counts.pop((prefix, at_rev, after), None)
        if known is not None:
            left = known - len(page.items)
        else:
            rev, count = await self._count_range(prefix, page.last)
            if at_rev < m.compact_rev:
                return None
            left = count + m.gone_since(prefix, page.last, at_rev, rev)
        self._counts[(prefix, at_rev, page.last)] = left
        if len(self._counts) > COUNTS_KEPT:
            self._counts.popitem(last=False)
        return left

    # ------------------------------------------------------------------ Store

    def current_revision(self) -> int:
        return self._mirror.rev

    def count_prefix(self, prefix: str) -> int:
        """How many objects are stored under ``prefix`` (metrics; no database read)."""
        return self._mirror.count_prefix(prefix)

    def write_counts(self) -> dict[tuple[str, str], list[int]]:
        """(resource, ADDED|MODIFIED|DELETED) -> [changes, bytes] committed since start."""
        return self._mirror.write_counts

    async def get(self, key: str) -> dict[str, Any]:
        obj: dict[str, Any] = orjson.loads(await self.get_bytes(key))
        return obj

    async def get_bytes(self, key: str) -> bytes:
        if self._mirror.spills(key):
            found = await self._read_key(key)
            data = None if found is None else found[1]
        else:
            data = self._mirror.get_bytes(key)
        if data is None:
            raise KeyNotFound(key)
        return data

    async def list(self, prefix: str, predicate: Predicate | None = None, limit: int | None = None,
                   continue_token: str | None = None, *, label_hint: Mapping[str, str] | None = None
                   ) -> ListResult:
        if self._mirror.spills(prefix):
            return await self._list_spilled(prefix, predicate, limit, continue_token, False)
        return self._mirror.list(prefix, predicate, limit, continue_token, label_hint=label_hint)

    async def list_bytes(self, prefix: str, predicate: Predicate | None = None, limit: int | None = None,
                         continue_token: str | None = None, *, label_hint: Mapping[str, str] | None = None
                         ) -> ListResult:
        if self._mirror.spills(prefix):
            return await self._list_spilled(prefix, predicate, limit, continue_token, True)
        return self._mirror.list(prefix, predicate, limit, continue_token, raw=True, label_hint=label_hint)

    async def _list_spilled(self, prefix: str, predicate: Predicate | None, limit: int | None,
                            continue_token: str | None, raw: bool) -> ListResult:
        """A list of a spilled prefix, with the mirror's snapshot semantics: the database's
        current rows, read a chunk at a time in key order, except keys changed since the
        snapshot revision, whose state then comes from the history. A fresh list's snapshot is
        the revision of its first read. (No label index here: the predicate, which implies any
        label hint, checks every object.)"""
        m = self._mirror
        at_rev, after = m.continue_point(continue_token)
        start = after
        fresh = at_rev is None
        want = limit + 1 if limit and predicate is None else max(SPILL_CHUNK, (limit or 0) + 1)
        page: Page | None = None
        while True:
            db_rev, rows = await self._read_range(prefix, after, want)
            if at_rev is None:
                at_rev = db_rev
            if at_rev < m.compact_rev:  # history compacted past the snapshot during the reads
                if fresh and page is None:
                    at_rev = None  # a fresh list may start again at a newer revision
                    continue
                raise Expired(TOO_OLD_CONTINUE)
            if page is None:
                page = Page(at_rev, predicate, limit, raw, None)
            bound = rows[-1][0] if len(rows) >= want else None  # more rows beyond this key
            older = m.states_at(prefix, after, at_rev)
            states = {k: d for k, _, d in rows if k not in older}
            states.update((k, d) for k, d in older.items() if d is not None and (bound is None or k <= bound))
            for key in sorted(states):
                if not page.add(key, states[key], False):
                    return page.cut(None if predicate is not None else await self._remaining(prefix, at_rev, start, page))
            if bound is None:
                return page.done()
            after = bound

    def watch(self, prefix: str, from_rev: int | None = None, predicate: Predicate | None = None
              ) -> AsyncGenerator[WatchEvent, None]:
        # "from now" is the revision at call time, so nothing between this call and the
        # first iteration is lost.
        return self._mirror.watch(prefix, self._mirror.rev if from_rev is None else from_rev, predicate)
