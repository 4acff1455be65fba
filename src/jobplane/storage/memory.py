"""In-memory Store: the fast store of unit tests and ``--database memory``. Nothing is durable.

It is the durable backends' ``Mirror`` (bytes-only state, bounded history, label index,
watch fan-out) with the same write planning (``writes.plan``) applied at once: a write
completes without yielding to the event loop, which unit tests on a FakeClock rely on.
"""

from __future__ import annotations

from typing import Any

import orjson

from jobplane.storage.mirrored import MirroredStore
from jobplane.storage.writes import WriteOp, plan


class MemoryStore(MirroredStore):
    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._mirror.close()

    def _write(self, op: str, key: str, obj: dict[str, Any] | None, expected_rv: str | None) -> dict[str, Any]:
        changes, results = plan([WriteOp(op, key, obj, expected_rv, None)],  # type: ignore[arg-type]
                                self._mirror.lookup, self._mirror.rev)
        if isinstance(results[0], BaseException):
            raise results[0]
        self._mirror.apply(changes)
        stored: dict[str, Any] = orjson.loads(changes[0].data)  # a private copy, as a durable store's gives
        return stored

    async def create(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self._write("create", key, obj, None)

    async def update(self, key: str, obj: dict[str, Any], expected_rv: str | None = None) -> dict[str, Any]:
        return self._write("update", key, obj, expected_rv)

    async def delete(self, key: str, expected_rv: str | None = None) -> dict[str, Any]:
        return self._write("delete", key, None, expected_rv)
