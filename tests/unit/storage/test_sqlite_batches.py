"""A batch that writes Events (kept only in the database) reads their current state and
commits in one call, with the same answers as reading first; a small batch commits on the
event loop's thread unless the SQL thread is using the connection, a big one on that thread."""

import asyncio
import threading

import pytest

from jobplane.storage import sqlite as sqlite_mod
from jobplane.storage.base import KeyExists, RevisionConflict
from jobplane.storage.sqlite import SqliteStore


def event(name: str, reason: str = "Started") -> dict:
    return {"kind": "Event", "metadata": {"name": name, "namespace": "ns"}, "reason": reason}


def pod(name: str) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "ns"}}


@pytest.fixture
async def store(tmp_path):
    s = SqliteStore(tmp_path / "state.db")
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def count_hops(store: SqliteStore) -> list[tuple[str, str]]:
    """Record every call that uses the connection for a write: (function, "loop" or "sql
    thread", where it ran)."""
    hops: list[tuple[str, str]] = []
    loop_thread = threading.get_ident()
    depth = [0]  # _plan_and_commit calls _commit: record the outer call only
    for name in ("_commit", "_plan_and_commit"):
        fn = getattr(store, name)

        def counted(*args, _fn=fn, _name=name):
            if not depth[0]:
                hops.append((_name, "loop" if threading.get_ident() == loop_thread else "sql thread"))
            depth[0] += 1
            try:
                return _fn(*args)
            finally:
                depth[0] -= 1

        setattr(store, name, counted)
    return hops


async def test_a_batch_with_events_takes_one_hop_and_checks_them(store):
    first = await store.create("events/ns/e1", event("e1"))
    hops = count_hops(store)
    results = await asyncio.gather(
        store.create("events/ns/e1", event("e1")),  # exists in the database only
        store.create("events/ns/e2", event("e2")),
        store.update("events/ns/e1", event("e1", "Pulled"), first["metadata"]["resourceVersion"]),
        store.update("events/ns/e1", event("e1", "Killing"), first["metadata"]["resourceVersion"]),  # stale now
        store.create("pods/ns/p", pod("p")),
        return_exceptions=True)
    assert hops == [("_plan_and_commit", "loop")]  # one batch, one call, no hop (the SQL thread is idle)
    assert isinstance(results[0], KeyExists)
    assert results[1]["metadata"]["name"] == "e2"
    assert results[2]["reason"] == "Pulled"
    assert isinstance(results[3], RevisionConflict)
    assert results[4]["metadata"]["name"] == "p"
    assert (await store.get("events/ns/e1"))["reason"] == "Pulled"
    assert (await store.get("events/ns/e2"))["metadata"]["resourceVersion"] == results[1]["metadata"]["resourceVersion"]


async def test_a_batch_without_events_plans_on_the_loop(store):
    hops = count_hops(store)
    await store.create("pods/ns/p", pod("p"))
    assert hops == [("_commit", "loop")]


async def test_a_small_batch_hops_while_the_sql_thread_holds_the_connection(store):
    """A spilled read in flight holds the connection: the commit queues behind it on the SQL
    thread instead of using the connection at the same time (or waiting on the loop)."""
    hops = count_hops(store)
    held, release = threading.Event(), threading.Event()

    def slow_read() -> None:
        held.set()
        release.wait(5)

    reading = asyncio.ensure_future(store._read(slow_read))
    await asyncio.to_thread(held.wait, 5)
    writing = asyncio.ensure_future(store.create("pods/ns/p", pod("p")))
    await asyncio.sleep(0.05)
    assert not writing.done()  # queued behind the read; the loop itself is free
    release.set()
    await reading
    assert (await writing)["metadata"]["name"] == "p"
    assert hops == [("_commit", "sql thread")]
    assert (await store.get("pods/ns/p"))["metadata"]["name"] == "p"


async def test_a_big_batch_commits_on_the_sql_thread(store):
    hops = count_hops(store)
    await asyncio.gather(*(store.create(f"pods/ns/p{i}", pod(f"p{i}")) for i in range(sqlite_mod.INLINE_OPS + 1)))
    assert hops == [("_commit", "sql thread")]


async def test_inline_commits_survive_a_reopen(tmp_path):
    s = SqliteStore(tmp_path / "state.db")
    await s.start()
    created = await s.create("pods/ns/p", pod("p"))
    await s.close()
    again = SqliteStore(tmp_path / "state.db")
    await again.start()
    try:
        assert (await again.get("pods/ns/p"))["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    finally:
        await again.close()
