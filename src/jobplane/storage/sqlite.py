"""SQLite backend: one process owns the file; state mirrored in memory; writes batched.

Durability choice: WAL journal with ``synchronous=NORMAL``. A commit appends the batch
to the WAL with write(2) before the call returns, so it survives ``kill -9`` of the
process (the data is in the OS page cache and reaches disk without us); what it does
not survive is a power loss / kernel crash, which may roll back the last few commits
(the database stays consistent). ``fsync=True`` selects ``synchronous=FULL`` (an fsync
per batch) for that stronger guarantee at a throughput cost.

Events (``mirror.SPILLED_PREFIXES``) are not loaded into the mirror: reads of them query
``objects`` on the SQL thread, between commits, so a read never sees a commit the mirror has
not applied by the time the reader resumes (the commit's completion is handled first).

Tables: ``objects`` (current state), ``events`` (history for watch replay and
continue tokens, compacted with the mirror's history: ``history`` revisions or
``history_bytes``, whichever is smaller), ``meta`` (the global
revision, so it survives restarts even when the newest change was a delete).
SQL runs on one dedicated thread so the event loop keeps serving reads while a big batch
commits; a small batch (``INLINE_OPS``) commits on the event loop's own thread when that SQL
thread is idle (not with ``fsync=True``: an fsync can take milliseconds): the commit appends a
few pages to the WAL in ~0.1 ms, while handing it to the thread and back (waking it, the GIL,
waking the loop) cost ~0.6 ms of latency at p50 and CPU on both sides (§19a of
bench/RESULTS.md). One lock makes the two users of the connection take
turns, and the loop never waits for it. WAL checkpoints run on another thread
(``storage.checkpointer``), so a commit only appends to the WAL and never waits for a
checkpoint's syncs.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jobplane.storage.base import StorageError
from jobplane.storage.batched import BatchedStore
from jobplane.storage.checkpointer import Checkpointer
from jobplane.storage.mirror import (
    DEFAULT_HISTORY,
    DEFAULT_HISTORY_BYTES,
    SPILLED_PREFIXES,
    prefix_end,
    range_start,
)
from jobplane.storage.mirrored import Row
from jobplane.storage.writes import TYPE_CODES, TYPE_NAMES, Change, Lookup, WriteOp, final_states, plan

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, rev INTEGER NOT NULL, obj BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    rev INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL, obj BLOB NOT NULL, prev BLOB);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (k, v) VALUES ('rev', 0);
"""

COMPACT_EVERY = 1000  # revisions between on-disk history compactions
INLINE_OPS = 16  # a batch of at most this many writes commits on the event loop's thread (module doc)
KEYS_PER_QUERY = 500  # keys per ``IN (...)`` read of a batch's spilled objects


class SqliteStore(BatchedStore):
    def __init__(self, path: Path, *, history: int = DEFAULT_HISTORY, history_bytes: int = DEFAULT_HISTORY_BYTES,
                 fsync: bool = False, spilled: tuple[str, ...] = SPILLED_PREFIXES) -> None:
        super().__init__(history, history_bytes, spilled)
        self.path = Path(path)
        self.history = max(0, history)
        self._fsync = fsync
        self._conn: sqlite3.Connection | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._disk_compacted = 0
        self._lock_fd: int | None = None
        self._checkpointer: Checkpointer | None = None
        self._sql_lock = threading.Lock()  # the SQL thread or an inline commit: one at a time

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._locked, fn, *args)

    def _locked(self, fn: Any, *args: Any) -> Any:
        with self._sql_lock:
            return fn(*args)

    async def _run_small(self, fn: Any, *args: Any) -> Any:
        """``fn`` right here on the event loop's thread when the SQL thread is not using the
        connection (a read or a commit in flight): else, as ``_run``, on that thread."""
        ck = self._checkpointer
        if (ck is None or not ck.restart_wanted) and self._sql_lock.acquire(blocking=False):
            try:
                return fn(*args)
            finally:
                self._sql_lock.release()
        return await self._run(fn, *args)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="jobplane-sqlite")
        try:
            rev, objects, history, counts = await self._run(self._open)
        except BaseException:
            await self._run(self._close)
            self._pool.shutdown(wait=True)
            self._pool = None
            raise
        self._mirror.load(rev, objects, history, counts)
        self._disk_compacted = self._mirror.compact_rev
        self._start_writer()

    def _open(self) -> tuple[int, list[Row], list[Change], dict[str, int]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock()
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        synchronous = "FULL" if self._fsync else "NORMAL"
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run on their own thread
        conn.executescript(_SCHEMA)
        self._conn = conn
        self._checkpointer = Checkpointer(self.path, synchronous=synchronous)
        self._checkpointer.start()
        (rev,) = conn.execute("SELECT v FROM meta WHERE k='rev'").fetchone()
        spilled = self._mirror.spilled
        outside = "".join(" AND NOT (key >= ? AND key < ?)" for _ in spilled)
        bounds = [b for p in spilled for b in (p, prefix_end(p))]
        objects = conn.execute(f"SELECT key, rev, obj FROM objects WHERE 1{outside}", bounds).fetchall()
        counts = {p: conn.execute("SELECT count(*) FROM objects WHERE key >= ? AND key < ?",
                                  (p, prefix_end(p))).fetchone()[0] for p in spilled}
        history = [Change(r, k, TYPE_NAMES[t], o, p) for r, k, t, o, p in conn.execute(
            "SELECT rev, key, type, obj, prev FROM events WHERE rev > ? ORDER BY rev", (rev - self.history,))]
        return rev, objects, history, counts

    async def close(self) -> None:
        if self._pool is None:
            return
        await self._stop_writer()
        await self._run(self._close)
        self._pool.shutdown(wait=True)
        self._pool = None

    def _close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()  # first: the writer's close then checkpoints what is left
            self._checkpointer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _lock(self) -> None:
        """One process owns the file (the mirror would go stale under a second writer).
        The OS drops the lock when the owner dies, so kill -9 never leaves it stuck."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageError(f"{self.path} is in use by another jobplane process") from None
        self._lock_fd = fd

    # ------------------------------------------------------------------ spilled reads (on the SQL thread)

    async def _read(self, fn: Any, *args: Any) -> Any:
        if self._pool is None or self._closing:
            raise StorageError("store is not open")
        return await self._run(fn, *args)

    async def _read_key(self, key: str) -> tuple[int, bytes] | None:
        return await self._read(self._select_key, key)  # type: ignore[no-any-return]

    def _select_key(self, key: str) -> tuple[int, bytes] | None:
        assert self._conn is not None
        row = self._conn.execute("SELECT rev, obj FROM objects WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], row[1])

    async def _read_range(self, prefix: str, after: str, limit: int) -> tuple[int, list[Row]]:
        return await self._read(self._select_range, prefix, after, limit)  # type: ignore[no-any-return]

    def _select_range(self, prefix: str, after: str, limit: int) -> tuple[int, list[Row]]:
        # no commit runs between these two statements: they share the one SQL thread
        assert self._conn is not None
        (rev,) = self._conn.execute("SELECT v FROM meta WHERE k='rev'").fetchone()
        op, start = range_start(prefix, after)
        rows = self._conn.execute(f"SELECT key, rev, obj FROM objects WHERE key {op} ? AND key < ? ORDER BY key LIMIT ?",
                                  (start, prefix_end(prefix), limit)).fetchall()
        return rev, rows

    async def _count_range(self, prefix: str, after: str) -> tuple[int, int]:
        return await self._read(self._select_count, prefix, after)  # type: ignore[no-any-return]

    def _select_count(self, prefix: str, after: str) -> tuple[int, int]:
        assert self._conn is not None
        (rev,) = self._conn.execute("SELECT v FROM meta WHERE k='rev'").fetchone()
        op, start = range_start(prefix, after)
        (count,) = self._conn.execute(f"SELECT count(*) FROM objects WHERE key {op} ? AND key < ?",
                                      (start, prefix_end(prefix))).fetchone()
        return rev, count

    def _select_keys(self, keys: list[str]) -> dict[str, tuple[int, bytes]]:
        assert self._conn is not None
        found: dict[str, tuple[int, bytes]] = {}
        for i in range(0, len(keys), KEYS_PER_QUERY):
            part = keys[i:i + KEYS_PER_QUERY]
            found.update((k, (r, o)) for k, r, o in self._conn.execute(
                f"SELECT key, rev, obj FROM objects WHERE key IN ({','.join('?' * len(part))})", part))
        return found

    # ------------------------------------------------------------------ writes

    async def _commit_batch(self, ops: list[WriteOp]) -> list[Any]:
        mirror = self._mirror
        changes: list[Change]
        results: list[Any]
        run = self._run_small if len(ops) <= INLINE_OPS and not self._fsync else self._run  # FULL: an fsync
        if any(mirror.spills(op.key) for op in ops):
            changes, results = await run(self._plan_and_commit, ops)
        else:
            changes, results = plan(ops, mirror.lookup, mirror.rev)
            if changes:
                await run(self._commit, changes)
        if changes:
            mirror.apply(changes)
        return results

    def _plan_and_commit(self, ops: list[WriteOp]) -> tuple[list[Change], list[Any]]:
        """A batch that writes spilled keys (Events: their current state is only in the
        database), with the connection held: read those keys, plan, commit. At most one thread
        hop instead of two (a read, then the commit): each hop wakes the thread and the loop again (§16b,
        ``ThreadPoolExecutor.submit``). Reading the mirror here is safe: only the writer task
        changes it (``apply``, after this returns), and it is waiting for this."""
        mirror = self._mirror
        found = self._select_keys(list({op.key for op in ops if mirror.spills(op.key)}))
        lookup: Lookup = lambda key: found.get(key) if mirror.spills(key) else mirror.lookup(key)  # noqa: E731
        changes, results = plan(ops, lookup, mirror.rev)
        if changes:
            self._commit(changes)
        return changes, results

    def _commit(self, changes: list[Change]) -> None:
        assert self._conn is not None
        conn = self._conn
        upserts, deletes = final_states(changes)
        last = changes[-1].rev
        ck = self._checkpointer
        if ck is not None and ck.restart_wanted:  # rare: see storage.checkpointer
            ck.restart_wanted = False
            conn.execute("PRAGMA wal_checkpoint(RESTART)")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if upserts:
                conn.executemany("INSERT OR REPLACE INTO objects (key, rev, obj) VALUES (?, ?, ?)", upserts)
            if deletes:
                conn.executemany("DELETE FROM objects WHERE key = ?", [(k,) for k in deletes])
            conn.executemany("INSERT INTO events (rev, key, type, obj, prev) VALUES (?, ?, ?, ?, ?)",
                             [(c.rev, c.key, TYPE_CODES[c.type], c.data, c.prev) for c in changes])
            conn.execute("UPDATE meta SET v = ? WHERE k = 'rev'", (last,))
            # the mirror may have compacted further (its byte budget): keep the disk in step
            floor = max(last - self.history, self._mirror.compact_rev)
            if floor - self._disk_compacted >= COMPACT_EVERY or (self.history < COMPACT_EVERY and floor > 0):
                conn.execute("DELETE FROM events WHERE rev <= ?", (floor,))
                self._disk_compacted = floor
            conn.execute("COMMIT")
            if ck is not None:
                ck.committed()
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
