"""PostgreSQL backend: one database shared by several jobplane servers.

Writes: each batch is one transaction that first locks the single ``meta`` row
(``SELECT ... FOR UPDATE``). That row holds the global revision, so writers of all
servers are serialised and commit in revision order; the checks (KeyExists,
RevisionConflict, ...) run against the database inside that lock. The transaction also
appends the batch to ``events`` and ``pg_notify``s the new revision.

Reads: every server keeps a ``Mirror`` of the committed state, fed by a follower that
reads ``events`` after the last applied revision whenever a NOTIFY arrives (and once a
second anyway, in case one is lost). A write returns only after its own revision is in
the local mirror, so a server reads its own writes; other servers see them after the
NOTIFY round trip (milliseconds). If a follower ever falls behind compaction it reloads
the full state and ends its watches with Expired (clients relist).

Events (``mirror.SPILLED_PREFIXES``) are not loaded into the mirror: reads of them query
``kv`` on a connection of their own (in key order by the ``"C"`` collation, which an index
serves, so it is the mirror's order whatever the database's collation) and wait until the
mirror has applied the revision they read at.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

import psycopg

from jobplane.storage.base import StorageError
from jobplane.storage.batched import BatchedStore
from jobplane.storage.mirror import (
    DEFAULT_HISTORY,
    DEFAULT_HISTORY_BYTES,
    SPILLED_PREFIXES,
    prefix_end,
    range_start,
)
from jobplane.storage.mirrored import Row
from jobplane.storage.writes import TYPE_CODES, TYPE_NAMES, Change, WriteOp, final_states, plan

log = logging.getLogger(__name__)

COMPACT_EVERY = 1000  # revisions between history compactions
FETCH_LIMIT = 5000
POLL_SECONDS = 1.0
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


class PostgresStore(BatchedStore):
    shared = True  # other servers write to the same database

    def __init__(self, dsn: str, *, schema: str = "jobplane", history: int = DEFAULT_HISTORY,
                 history_bytes: int = DEFAULT_HISTORY_BYTES, spilled: tuple[str, ...] = SPILLED_PREFIXES) -> None:
        if not _SCHEMA_RE.match(schema):
            raise ValueError(f"invalid schema name {schema!r}")
        super().__init__(history, history_bytes, spilled)
        self.dsn = dsn
        self.schema = schema
        self.history = max(0, history)
        self._channel = f"jobplane_{schema}"
        self._t = f'"{schema}".'  # table qualifier; schema validated above
        self._wconn: psycopg.AsyncConnection[Any] | None = None
        self._rconn: psycopg.AsyncConnection[Any] | None = None
        self._lconn: psycopg.AsyncConnection[Any] | None = None
        self._qconn: psycopg.AsyncConnection[Any] | None = None  # spilled reads
        self._tasks: list[asyncio.Task[None]] = []
        self._poke = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._last_compact = 0

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        t = self._t
        self._wconn = await self._connect()
        async with self._wconn.transaction():
            await self._wconn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._channel,))
            await self._wconn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await self._wconn.execute(
                f"CREATE TABLE IF NOT EXISTS {t}kv (key text PRIMARY KEY, rev bigint NOT NULL, obj bytea NOT NULL)")
            await self._wconn.execute(f'CREATE INDEX IF NOT EXISTS kv_key_c ON {t}kv (key COLLATE "C")')
            await self._wconn.execute(
                f"CREATE TABLE IF NOT EXISTS {t}events (rev bigint PRIMARY KEY, key text NOT NULL, "
                "type smallint NOT NULL, obj bytea NOT NULL, prev bytea)")
            await self._wconn.execute(
                f"CREATE TABLE IF NOT EXISTS {t}meta (id int PRIMARY KEY, rev bigint NOT NULL)")
            await self._wconn.execute(f"INSERT INTO {t}meta (id, rev) VALUES (1, 0) ON CONFLICT DO NOTHING")
        self._lconn = await self._connect()
        await self._lconn.execute(f'LISTEN "{self._channel}"')  # before loading: no change slips through
        self._rconn = await self._connect()
        self._qconn = await self._connect()
        await self._reload(history=True)
        self._last_compact = self._mirror.compact_rev
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen(), name="jobplane-pg-listen"),
                       loop.create_task(self._follow(), name="jobplane-pg-follow")]
        self._start_writer()

    async def _reload(self, history: bool) -> None:
        """Load a consistent copy of the state (and, at start, the kept history) into the mirror."""
        assert self._rconn is not None
        t = self._t
        async with self._rconn.transaction():
            await self._rconn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            meta_row = await (await self._rconn.execute(f"SELECT rev FROM {t}meta WHERE id = 1")).fetchone()
            assert meta_row is not None  # _ensure_schema inserts it
            (rev,) = meta_row
            spilled = self._mirror.spilled
            outside = "".join(" AND NOT starts_with(key, %s)" for _ in spilled)
            objects = [(k, r, bytes(o)) for k, r, o in await (await self._rconn.execute(
                f"SELECT key, rev, obj FROM {t}kv WHERE true{outside}", spilled)).fetchall()]
            counts = {}
            for p in spilled:
                count_row = await (await self._rconn.execute(
                    f"SELECT count(*) FROM {t}kv WHERE starts_with(key, %s)", (p,))).fetchone()
                counts[p] = count_row[0] if count_row else 0
            changes: list[Change] = []
            if history:
                cur = await self._rconn.execute(
                    f"SELECT rev, key, type, obj, prev FROM {t}events WHERE rev > %s AND rev <= %s ORDER BY rev",
                    (rev - self.history, rev))
                changes = [_change(row) for row in await cur.fetchall()]
        self._mirror.load(rev, objects, changes, counts)

    async def close(self) -> None:
        if self._wconn is None:
            return
        await self._stop_writer()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for conn in (self._lconn, self._rconn, self._qconn, self._wconn):
            if conn is not None:
                await conn.close()
        self._wconn = self._rconn = self._lconn = self._qconn = None
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters = []

    # ------------------------------------------------------------------ following other writers

    async def _listen(self) -> None:
        assert self._lconn is not None
        try:
            async for _ in self._lconn.notifies():
                self._poke.set()
        except psycopg.Error:
            log.warning("postgres LISTEN connection lost; following by polling")

    async def _follow(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancel (close() hangs)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._poke.wait()
            self._poke.clear()
            try:
                await self._catch_up()
            except psycopg.Error:
                log.exception("postgres follower failed; retrying")
                await asyncio.sleep(POLL_SECONDS)
                with contextlib.suppress(psycopg.Error):
                    if self._rconn is None or self._rconn.closed:
                        self._rconn = await self._connect()

    async def _catch_up(self) -> None:
        assert self._rconn is not None
        while True:
            cur = await self._rconn.execute(
                f"SELECT rev, key, type, obj, prev FROM {self._t}events WHERE rev > %s ORDER BY rev LIMIT %s",
                (self._mirror.rev, FETCH_LIMIT))
            rows = await cur.fetchall()
            if not rows:
                break
            if rows[0][0] != self._mirror.rev + 1:  # history we never saw was compacted away
                log.warning("postgres follower fell behind compaction; reloading state")
                await self._reload(history=False)
                self._mirror.expire_watchers()
                break
            self._mirror.apply([_change(row) for row in rows])
            if len(rows) < FETCH_LIMIT:
                break
        self._release_waiters()

    def _release_waiters(self) -> None:
        rev = self._mirror.rev
        keep = []
        for want, fut in self._waiters:
            if want <= rev:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((want, fut))
        self._waiters = keep

    async def _wait_applied(self, rev: int) -> None:
        if self._mirror.rev >= rev:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((rev, fut))
        self._poke.set()
        await fut

    # ------------------------------------------------------------------ spilled reads

    async def _query(self) -> psycopg.AsyncConnection[Any]:
        if self._wconn is None:
            raise StorageError("store is not open")
        if self._qconn is None or self._qconn.closed:
            self._qconn = await self._connect()
        return self._qconn

    async def _read_key(self, key: str) -> tuple[int, bytes] | None:
        conn = await self._query()
        row = await (await conn.execute(f"SELECT rev, obj FROM {self._t}kv WHERE key = %s", (key,))).fetchone()
        if row is None:
            return None
        await self._wait_applied(row[0])
        return row[0], bytes(row[1])

    async def _read_range(self, prefix: str, after: str, limit: int) -> tuple[int, list[Row]]:
        t = self._t
        conn = await self._query()
        # one statement, one snapshot: the revision and the rows agree
        op, start = range_start(prefix, after)
        cur = await conn.execute(
            f"WITH m AS (SELECT rev FROM {t}meta WHERE id = 1) SELECT m.rev, k.key, k.rev, k.obj FROM m "
            f'LEFT JOIN LATERAL (SELECT key, rev, obj FROM {t}kv WHERE key COLLATE "C" {op} %s '
            f'AND key COLLATE "C" < %s ORDER BY key COLLATE "C" LIMIT %s) k ON true',
            (start, prefix_end(prefix), limit))
        result = await cur.fetchall()
        rev = result[0][0]
        await self._wait_applied(rev)
        return rev, [(k, r, bytes(o)) for _, k, r, o in result if k is not None]

    async def _count_range(self, prefix: str, after: str) -> tuple[int, int]:
        t = self._t
        conn = await self._query()
        op, start = range_start(prefix, after)
        cur = await conn.execute(  # one statement, one snapshot
            f'SELECT m.rev, (SELECT count(*) FROM {t}kv WHERE key COLLATE "C" {op} %s AND key COLLATE "C" < %s) '
            f"FROM {t}meta m WHERE id = 1", (start, prefix_end(prefix)))
        row = await cur.fetchone()
        assert row is not None  # _ensure_schema inserts the meta row
        await self._wait_applied(row[0])
        return row[0], row[1]

    # ------------------------------------------------------------------ writes

    async def _commit_batch(self, ops: list[WriteOp]) -> list[Any]:
        conn = self._wconn
        assert conn is not None
        t = self._t
        async with conn.transaction():
            cur = conn.cursor()
            await cur.execute(f"SELECT rev FROM {t}meta WHERE id = 1 FOR UPDATE")
            (rev,) = await cur.fetchone()  # type: ignore[misc]
            await cur.execute(f"SELECT key, rev, obj FROM {t}kv WHERE key = ANY(%s)",
                              (list({op.key for op in ops}),))
            state = {k: (r, bytes(o)) for k, r, o in await cur.fetchall()}
            changes, results = plan(ops, state.get, rev)
            if changes:
                await self._write(cur, changes)
        if changes:
            await self._wait_applied(changes[-1].rev)
        return results

    async def _write(self, cur: psycopg.AsyncCursor[Any], changes: list[Change]) -> None:
        t = self._t
        upserts, deletes = final_states(changes)
        last = changes[-1].rev
        if upserts:
            await cur.executemany(
                f"INSERT INTO {t}kv (key, rev, obj) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET rev = excluded.rev, obj = excluded.obj", upserts)
        if deletes:
            await cur.execute(f"DELETE FROM {t}kv WHERE key = ANY(%s)", (deletes,))
        await cur.executemany(
            f"INSERT INTO {t}events (rev, key, type, obj, prev) VALUES (%s, %s, %s, %s, %s)",
            [(c.rev, c.key, TYPE_CODES[c.type], c.data, c.prev) for c in changes])
        await cur.execute(f"UPDATE {t}meta SET rev = %s WHERE id = 1", (last,))
        # the mirror may have compacted further (its byte budget): keep the table in step
        floor = max(last - self.history, self._mirror.compact_rev)
        if floor - self._last_compact >= COMPACT_EVERY or (self.history < COMPACT_EVERY and floor > 0):
            await cur.execute(f"DELETE FROM {t}events WHERE rev <= %s", (floor,))
            self._last_compact = floor
        await cur.execute("SELECT pg_notify(%s, %s)", (self._channel, str(last)))


def _change(row: tuple[Any, ...]) -> Change:
    rev, key, type_code, obj, prev = row
    return Change(rev, key, TYPE_NAMES[type_code], bytes(obj), None if prev is None else bytes(prev))
