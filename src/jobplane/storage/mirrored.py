"""The read side shared by every store that keeps its committed state in a ``Mirror``:
get/list/watch are answered from memory, never from the database."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson

from jobplane.storage.base import KeyNotFound, ListResult, Predicate, Store, WatchEvent
from jobplane.storage.mirror import DEFAULT_HISTORY, DEFAULT_HISTORY_BYTES, Mirror


class MirroredStore(Store):
    """A Store whose reads come from ``self._mirror``; subclasses implement the writes."""

    def __init__(self, history: int = DEFAULT_HISTORY, history_bytes: int = DEFAULT_HISTORY_BYTES) -> None:
        self._mirror = Mirror(history, history_bytes)

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
        data = self._mirror.get_bytes(key)
        if data is None:
            raise KeyNotFound(key)
        return data

    async def list(self, prefix: str, predicate: Predicate | None = None, limit: int | None = None,
                   continue_token: str | None = None, *, label_hint: Mapping[str, str] | None = None
                   ) -> ListResult:
        return self._mirror.list(prefix, predicate, limit, continue_token, label_hint=label_hint)

    async def list_bytes(self, prefix: str, predicate: Predicate | None = None, limit: int | None = None,
                         continue_token: str | None = None, *, label_hint: Mapping[str, str] | None = None
                         ) -> ListResult:
        return self._mirror.list(prefix, predicate, limit, continue_token, raw=True, label_hint=label_hint)

    def watch(self, prefix: str, from_rev: int | None = None, predicate: Predicate | None = None
              ) -> AsyncGenerator[WatchEvent, None]:
        # "from now" is the revision at call time, so nothing between this call and the
        # first iteration is lost.
        return self._mirror.watch(prefix, self._mirror.rev if from_rev is None else from_rev, predicate)
