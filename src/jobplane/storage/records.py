"""Job records in the object store, under a prefix no API kind uses.

Why here: records must live in the same database as everything else (SQLite or
PostgreSQL, so any server of a shared store can answer for them), and the ``Store``
interface already gives that on every backend. Keys are
``jobplane.io/jobrecords/<namespace>/<name>.<uid>``; the API never routes to them, so
clients cannot write them, and watches on API prefixes never see them.
"""

from __future__ import annotations

import builtins
from typing import Any

from jobplane.storage.base import KeyExists, KeyNotFound, Store

PREFIX = "jobplane.io/jobrecords/"

Obj = dict[str, Any]


def record_key(namespace: str, name: str, uid: str) -> str:
    return f"{PREFIX}{namespace}/{name}.{uid}"


class JobRecords:
    """Put, find, list and delete records in ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def put(self, namespace: str, name: str, uid: str, record: Obj) -> bool:
        """Store a record once; False when this Job's record already exists."""
        try:
            await self.store.create(record_key(namespace, name, uid), record)
        except KeyExists:
            return False
        return True

    async def exists(self, namespace: str, name: str, uid: str) -> bool:
        try:
            await self.store.get(record_key(namespace, name, uid))
        except KeyNotFound:
            return False
        return True

    async def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        prefix = PREFIX + (f"{namespace}/" if namespace else "")
        result = await self.store.list(prefix)
        return list(result.items)

    async def find(self, namespace: str, name: str) -> builtins.list[Obj]:
        """Records of Jobs called ``name`` (several when a name was reused), oldest first."""
        records = [r for r in await self.list(namespace) if (r.get("job") or {}).get("metadata", {}).get("name") == name]
        return sorted(records, key=lambda r: r.get("archivedAt") or "")

    async def delete(self, key: str) -> None:
        try:
            await self.store.delete(key)
        except KeyNotFound:
            pass

    @staticmethod
    def key_of(record: Obj) -> str:
        md = (record.get("job") or {}).get("metadata") or {}
        return record_key(md.get("namespace") or "", md.get("name") or "", md.get("uid") or "")
