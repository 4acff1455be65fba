"""The SQLite store's commits only append to the WAL; a thread of its own copies it back into
the database file, and the writer rewinds it between two batches once it has grown too big."""

import asyncio
import sqlite3
import time

from jobplane.storage.sqlite import SqliteStore


def wal_frames(path) -> int:
    """Frames in the WAL now (a PASSIVE checkpoint from another connection reports them; it
    is busy while the store's checkpointer runs one)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for _ in range(500):
            busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy:
                return frames
            time.sleep(0.01)
        raise AssertionError("the WAL stayed busy")
    finally:
        conn.close()


async def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def obj(i: int) -> dict:
    return {"kind": "ConfigMap", "metadata": {"name": f"c{i}"}, "data": {"x": "y" * 2000}}


async def test_commits_never_checkpoint_and_the_checkpointer_does(tmp_path):
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    try:
        assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        ck = store._checkpointer
        ck.interval = 0.0
        await asyncio.gather(*(store.create(f"configmaps/default/c{i}", obj(i)) for i in range(200)))
        await wait_for(lambda: ck.checkpoints > 0)
        # the database file (not only the WAL) holds the data once checkpointed: a plain read
        # from another connection sees it either way, so check the count through one
        conn = sqlite3.connect(tmp_path / "state.db")
        assert conn.execute("SELECT count(*) FROM objects WHERE key LIKE 'configmaps/%'").fetchone()[0] == 200
        conn.close()
    finally:
        await store.close()
    reopened = SqliteStore(tmp_path / "state.db")
    await reopened.start()
    try:
        assert len((await reopened.list("configmaps/")).items) == 200
    finally:
        await reopened.close()


async def test_writer_rewinds_a_wal_that_grew_past_the_limit(tmp_path):
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    try:
        ck = store._checkpointer
        ck.interval = 0.0
        for i in range(0, 300, 50):  # several batches: the WAL grows
            await asyncio.gather(*(store.create(f"configmaps/default/c{j}", obj(j)) for j in range(i, i + 50)))
        grown = wal_frames(tmp_path / "state.db")
        assert grown > 100
        ck.restart_frames = 1
        await store.create("configmaps/default/poke", obj(-1))  # wakes the checkpointer
        await wait_for(lambda: ck.restart_wanted)
        ck.restart_frames = 10**9
        await store.create("configmaps/default/after", obj(-2))  # rewinds first, then appends
        assert wal_frames(tmp_path / "state.db") < 20 < grown
        assert not ck.restart_wanted
    finally:
        await store.close()
