"""A batch that writes Events (kept only in the database) reads their current state and
commits in one hop to the SQL thread, with the same answers as reading first."""

import asyncio

import pytest

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


def count_hops(store: SqliteStore) -> list[str]:
    """Record the name of every function the store hands to its SQL thread."""
    hops: list[str] = []
    run = store._run

    async def counted(fn, *args):
        hops.append(fn.__name__)
        return await run(fn, *args)

    store._run = counted  # type: ignore[method-assign]
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
    assert hops == ["_plan_and_commit"]  # one batch, one hop
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
    assert hops == ["_commit"]
