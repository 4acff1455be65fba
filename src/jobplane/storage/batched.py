"""A Store skeleton for durable backends: reads from a ``Mirror``, writes through one batching writer.

Concurrent writes queue up; a single writer task takes everything pending, hands it to
the backend's ``_commit_batch`` (one transaction) and resolves each caller's future only
after the commit is durable and visible in the mirror. Batching is what makes thousands
of writes per second cheap: one commit (and one WAL append) per batch, not per write.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Any

from jobplane.storage.base import StorageError
from jobplane.storage.mirror import DEFAULT_HISTORY_BYTES
from jobplane.storage.mirrored import MirroredStore
from jobplane.storage.writes import WriteOp

log = logging.getLogger(__name__)

MAX_BATCH = 2000


class BatchedStore(MirroredStore):
    def __init__(self, history: int, history_bytes: int = DEFAULT_HISTORY_BYTES,
                 spilled: tuple[str, ...] = ()) -> None:
        super().__init__(history, history_bytes, spilled)
        self._pending: list[WriteOp] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    # ------------------------------------------------------------------ backend hooks

    @abc.abstractmethod
    async def _commit_batch(self, ops: list[WriteOp]) -> list[Any]:
        """Commit ``ops`` in one transaction; return per op the result or exception.
        Must return only once the changes are durable and applied to the mirror."""

    def _start_writer(self) -> None:
        self._closing = False
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="jobplane-store-writer")

    async def _stop_writer(self) -> None:
        """Drain pending writes, stop the writer, end watches."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
            self._writer = None
        self._mirror.close()

    # ------------------------------------------------------------------ writer

    async def _write_loop(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                results = await self._commit_batch(batch)
            except Exception as exc:  # noqa: BLE001 - the whole batch failed: tell every caller
                log.exception("store commit failed")
                err = StorageError(f"commit failed: {exc}")
                err.__cause__ = exc
                results = [err] * len(batch)
            for op, res in zip(batch, results, strict=True):
                if op.future.done():
                    continue
                if isinstance(res, BaseException):
                    op.future.set_exception(res)
                else:
                    op.future.set_result(res)

    async def _submit(self, op: str, key: str, obj: dict[str, Any] | None, expected_rv: str | None
                      ) -> dict[str, Any]:
        if self._closing or self._writer is None:
            raise StorageError("store is not open")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append(WriteOp(op, key, obj, expected_rv, fut))
        self._wake.set()
        return await fut

    # ------------------------------------------------------------------ Store

    async def create(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._submit("create", key, obj, None)

    async def update(self, key: str, obj: dict[str, Any], expected_rv: str | None = None) -> dict[str, Any]:
        return await self._submit("update", key, obj, expected_rv)

    async def delete(self, key: str, expected_rv: str | None = None) -> dict[str, Any]:
        return await self._submit("delete", key, None, expected_rv)
