"""The versioned object store: etcd-like semantics every backend must give.

Contract (tests/conformance runs it against every backend):

* Keys are ``<group_resource>/<namespace>/<name>`` (see ``ResourceInfo.storage_key``);
  cluster-scoped objects have an empty namespace part (``nodes//n1``). Prefixes end
  with ``/``.
* One global revision counter. Every successful write (create, update, delete)
  takes the next revision; the stored object's ``metadata.resourceVersion`` is
  that revision as a decimal string. The store sets it; callers never do.
* ``create`` on an existing key raises ``KeyExists``. ``update``/``delete`` with an
  ``expected_rv`` that is not the current one raise ``RevisionConflict``; a
  missing key raises ``KeyNotFound``.
* A write is durable (survives ``kill -9`` of the process) before the call returns.
  Backends may batch concurrent writes into one transaction.
* ``list`` returns a consistent snapshot at one revision, sorted by key, filtered
  by ``predicate``, cut by ``limit`` with an opaque ``continue`` token that resumes
  after the last returned key at the same snapshot revision (or raises ``Expired``
  when that revision was compacted away).
* ``watch(prefix, from_rev)`` yields every change with revision > ``from_rev``
  under the prefix, in revision order: first those already in history (replay),
  then live ones. ``from_rev`` older than the compacted history raises ``Expired``
  (the HTTP layer turns it into 410 Gone). A ``DELETED`` event carries the last
  object state, with ``resourceVersion`` set to the delete's revision.
  ``from_rev=None`` means "from now".
* Objects are plain JSON-able dicts. Backends may keep serialised bytes to save
  work; callers must not mutate dicts they get back (copy first).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]


class StorageError(Exception):
    pass


class KeyExists(StorageError):
    pass


class KeyNotFound(StorageError):
    pass


class RevisionConflict(StorageError):
    pass


class Expired(StorageError):
    """The requested revision is older than the kept history (HTTP 410)."""


@dataclass
class WatchEvent:
    type: str  # "ADDED" | "MODIFIED" | "DELETED"
    key: str
    object: dict[str, Any]
    revision: int
    prev_object: dict[str, Any] | None = None


@dataclass
class ListResult:
    items: Sequence[Any]  # list_bytes: JSON bytes, read one at a time (mirror.RawItems)
    revision: int
    continue_token: str | None = None
    remaining: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Store(abc.ABC):
    """Abstract versioned store. All methods are coroutines unless noted."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open / create the database; after this, reads and writes work."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and close; pending watches end."""

    @abc.abstractmethod
    def current_revision(self) -> int:
        """The latest committed revision (not a coroutine)."""

    @abc.abstractmethod
    async def create(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object; returns it with resourceVersion set."""

    @abc.abstractmethod
    async def get(self, key: str) -> dict[str, Any]:
        """The current object; raises KeyNotFound."""

    @abc.abstractmethod
    async def update(self, key: str, obj: dict[str, Any], expected_rv: str | None = None) -> dict[str, Any]:
        """Replace an object, guarded by ``expected_rv`` when given."""

    @abc.abstractmethod
    async def delete(self, key: str, expected_rv: str | None = None) -> dict[str, Any]:
        """Remove an object; returns its last state with the delete's revision."""

    @abc.abstractmethod
    async def list(
        self,
        prefix: str,
        predicate: Predicate | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        *,
        label_hint: Mapping[str, str] | None = None,
    ) -> ListResult:
        """Objects under ``prefix`` (see module doc). ``label_hint``: optional ``k=v`` label
        pairs that ``predicate`` requires (``LabelSelector.equality_pairs()``); a store with a
        label index visits only objects carrying them, others ignore it. Pass it only with a
        predicate that implies it: the result is then the same either way."""

    @abc.abstractmethod
    def watch(self, prefix: str, from_rev: int | None = None, predicate: Predicate | None = None
              ) -> AsyncGenerator[WatchEvent, None]:
        """Async iterator of changes (see module doc). Raises Expired on first iteration
        when ``from_rev`` is compacted. Closing the iterator (aclose) stops the watch."""

    async def get_bytes(self, key: str) -> bytes:
        """Fast path: the current object as JSON bytes (orjson), for handlers that only
        forward it. Backends that keep serialised bytes override this to skip a decode."""
        import orjson

        return orjson.dumps(await self.get(key))

    async def list_bytes(
        self,
        prefix: str,
        predicate: Predicate | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        *,
        label_hint: Mapping[str, str] | None = None,
    ) -> ListResult:
        """``list`` whose ``items`` are JSON bytes (orjson) instead of dicts; same snapshot rules."""
        import orjson

        result = await self.list(prefix, predicate, limit, continue_token, label_hint=label_hint)
        result.items = [orjson.dumps(o) for o in result.items]
        return result

    async def guaranteed_update(
        self, key: str, mutate: Callable[[dict[str, Any]], dict[str, Any] | None], retries: int = 16
    ) -> dict[str, Any]:
        """Read-modify-write with retry on conflict. ``mutate`` gets a deep copy and returns
        the new object (or None for "no change", which returns the current object)."""
        import copy

        for _ in range(retries):
            current = await self.get(key)
            new = mutate(copy.deepcopy(current))
            if new is None:
                return current
            try:
                return await self.update(key, new, current["metadata"]["resourceVersion"])
            except RevisionConflict:
                continue
        raise RevisionConflict(key)
