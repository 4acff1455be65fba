"""The Store contract for Events, run against every backend: the durable ones keep Events'
current objects only in the database (``mirror.SPILLED_PREFIXES``) and read them there, the
memory store keeps them in its mirror; both must answer alike."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from conformance.test_store_conformance import next_events, rv
from jobplane.storage import mirrored
from jobplane.storage.base import Expired, KeyExists, KeyNotFound, RevisionConflict, Store


def event(name: str, ns: str = "default", reason: str = "Started", **labels: str) -> dict:
    return {"kind": "Event", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "involvedObject": {"kind": "Pod", "name": name.split(".")[0], "namespace": ns},
            "reason": reason, "message": "m" * 300}


def names(items: list) -> list[str]:
    return [o["metadata"]["name"] for o in items]


async def all_pages(store: Store, prefix: str, limit: int, predicate: Any = None) -> tuple[list[str], int, set[int]]:
    """Every page of a list: (names, pages, snapshot revisions seen)."""
    out, pages, revs, token = [], 0, set(), None
    while True:
        res = await store.list(prefix, predicate, limit=limit, continue_token=token)
        assert len(res.items) <= limit
        out += names(res.items)
        revs.add(res.revision)
        pages += 1
        token = res.continue_token
        if token is None:
            return out, pages, revs


def held_in_memory(store: Store) -> list[str]:
    """Event keys whose objects the store's mirror holds."""
    return [k for k in store._mirror._entries if k.startswith("events/")]  # type: ignore[attr-defined]


async def test_event_crud_semantics(backend: Any, store: Store) -> None:
    a = await store.create("events/default/a.1", event("a.1"))
    assert await store.get("events/default/a.1") == a
    assert orjson.loads(await store.get_bytes("events/default/a.1")) == a
    with pytest.raises(KeyExists):
        await store.create("events/default/a.1", event("a.1"))
    with pytest.raises(KeyNotFound):
        await store.get("events/default/nope")
    with pytest.raises(RevisionConflict):
        await store.update("events/default/a.1", {**a, "count": 2}, "999")
    b = await store.update("events/default/a.1", {**a, "count": 2}, a["metadata"]["resourceVersion"])
    assert rv(b) == rv(a) + 1 and (await store.get("events/default/a.1"))["count"] == 2
    with pytest.raises(RevisionConflict):
        await store.delete("events/default/a.1", a["metadata"]["resourceVersion"])
    gone = await store.delete("events/default/a.1", b["metadata"]["resourceVersion"])
    assert gone["count"] == 2 and rv(gone) == rv(b) + 1  # last state, the delete's revision
    with pytest.raises(KeyNotFound):
        await store.delete("events/default/a.1")
    with pytest.raises(KeyNotFound):
        await store.update("events/default/a.1", a)
    if backend.durable:
        assert held_in_memory(store) == []


async def test_event_lists_sorted_paged_and_counted(backend: Any, store: Store, monkeypatch: Any) -> None:
    monkeypatch.setattr(mirrored, "SPILL_CHUNK", 3)  # several database reads per page
    for i in reversed(range(13)):
        await store.create(f"events/default/e{i:02}", event(f"e{i:02}", reason="Pulled" if i % 3 else "Started"))
    await store.create("events/other/e99", event("e99", ns="other"))
    await store.create("eventsx/default/y", event("y"))  # a neighbouring prefix stays apart
    await store.create("pods/default/p", {"metadata": {"name": "p"}})
    res = await store.list("events/default/")
    assert names(res.items) == [f"e{i:02}" for i in range(13)]
    assert res.revision == store.current_revision() and res.continue_token is None
    assert len((await store.list("events/")).items) == 14
    assert names((await store.list("eventsx/")).items) == ["y"]
    assert names((await store.list("events/default/e05")).items) == ["e05"]  # an exact key as prefix
    assert store.count_prefix("events/") == 14  # type: ignore[attr-defined]

    got, pages, revs = await all_pages(store, "events/", 4)
    assert got == [f"e{i:02}" for i in range(13)] + ["e99"] and pages == 4 and len(revs) == 1

    def started(o: dict) -> bool:
        return o["reason"] == "Started"

    got, pages, _ = await all_pages(store, "events/default/", 2, started)
    assert got == ["e00", "e03", "e06", "e09", "e12"] and pages == 3  # 2+2+1, no empty trailing page
    raw = await store.list_bytes("events/default/", started, limit=10)
    assert [orjson.loads(b)["metadata"]["name"] for b in raw.items] == ["e00", "e03", "e06", "e09", "e12"]
    await store.delete("events/default/e00")
    assert store.count_prefix("events/") == 13  # type: ignore[attr-defined]
    if backend.durable:
        assert held_in_memory(store) == []


async def test_event_list_continue_reads_the_same_snapshot(store: Store, monkeypatch: Any) -> None:
    monkeypatch.setattr(mirrored, "SPILL_CHUNK", 2)
    made = {}
    for i in range(8):
        made[i] = await store.create(f"events/default/e{i}", event(f"e{i}"))
    first = await store.list("events/default/", limit=3)
    snap = first.revision
    assert names(first.items) == ["e0", "e1", "e2"] and snap == store.current_revision()
    # changes after the snapshot must not show up in the continuation, wherever they fall
    await store.delete("events/default/e4")
    await store.update("events/default/e5", {**made[5], "reason": "Changed"})
    await store.create("events/default/e3a", event("e3a"))
    await store.create("events/default/e9", event("e9"))
    await store.delete("events/default/e1")  # before the token's key: irrelevant
    second = await store.list("events/default/", limit=3, continue_token=first.continue_token)
    assert second.revision == snap
    assert names(second.items) == ["e3", "e4", "e5"] and second.items[2]["reason"] == "Started"
    await store.update("events/default/e6", {**made[6], "reason": "Later"})
    await store.delete("events/default/e7")
    rest = await store.list("events/default/", limit=10, continue_token=second.continue_token)
    assert rest.revision == snap and names(rest.items) == ["e6", "e7"] and rest.continue_token is None
    assert rest.items[0]["reason"] == "Started"
    fresh = await store.list("events/default/")
    assert names(fresh.items) == ["e0", "e2", "e3", "e3a", "e5", "e6", "e9"]
    assert fresh.revision == store.current_revision()
    assert [o["reason"] for o in fresh.items if o["metadata"]["name"] in ("e5", "e6")] == ["Changed", "Later"]


async def test_event_list_continue_expired_after_compaction(backend: Any) -> None:
    store = await backend.open(history=5)
    for i in range(4):
        await store.create(f"events/default/e{i}", event(f"e{i}"))
    first = await store.list("events/default/", limit=1)
    for i in range(10):
        await store.create(f"pods/default/p{i}", {"metadata": {"name": f"p{i}"}})
    with pytest.raises(Expired):
        await store.list("events/default/", limit=1, continue_token=first.continue_token)
    assert len((await store.list("events/default/")).items) == 4  # a fresh list is fine


async def test_event_watch_carries_previous_states(store: Store) -> None:
    a = await store.create("events/default/a", event("a"))
    it = store.watch("events/", rv(a))
    try:
        b = await store.update("events/default/a", {**a, "count": 3})
        gone = await store.delete("events/default/a")
        evs = await next_events(it, 2)
        assert [(e.type, e.revision) for e in evs] == [("MODIFIED", rv(b)), ("DELETED", rv(gone))]
        assert evs[0].prev_object == a and evs[0].object == b
        assert evs[1].prev_object == b and evs[1].object["count"] == 3
    finally:
        await it.aclose()


async def test_restart_loads_no_event_bytes(backend: Any) -> None:
    if not backend.durable:
        pytest.skip("not a durable backend")
    store = await backend.open()
    made = [await store.create(f"events/default/e{i}", event(f"e{i}")) for i in range(5)]
    await store.create("pods/default/p", {"metadata": {"name": "p"}})
    await store.delete("events/default/e1")
    rev = store.current_revision()
    await store.close()

    reopened = await backend.open()
    mirror = reopened._mirror  # type: ignore[attr-defined]
    assert held_in_memory(reopened) == [] and list(mirror._entries) == ["pods/default/p"]
    assert mirror.stats()["spilled"] == 4 and reopened.count_prefix("events/") == 4  # type: ignore[attr-defined]
    assert reopened.current_revision() == rev
    assert names((await reopened.list("events/")).items) == ["e0", "e2", "e3", "e4"]
    assert await reopened.get("events/default/e3") == made[3]
    it = reopened.watch("events/", rv(made[0]))  # the history (watch replay) is as it was
    try:
        evs = await next_events(it, 5)
        assert [(e.type, e.key) for e in evs][-1] == ("DELETED", "events/default/e1")
        assert evs[-1].object == {**made[1], "metadata": {**made[1]["metadata"], "resourceVersion": str(rev)}}
    finally:
        await it.aclose()
    updated = await reopened.update("events/default/e2", {**made[2], "count": 2}, made[2]["metadata"]["resourceVersion"])
    assert rv(updated) == rev + 1 and held_in_memory(reopened) == []


async def test_shared_database_event_reads(backend: Any) -> None:
    if not backend.shared:
        pytest.skip("backend is not shared between processes")
    one = await backend.open()
    two = await backend.open()
    a = await one.create("events/default/a", event("a"))
    assert await two.get("events/default/a") == a  # read from the database ...
    res = await two.list("events/")
    assert res.items == [a] and two.current_revision() >= res.revision >= rv(a)  # ... and followed
    b = await two.update("events/default/a", {**a, "count": 2}, a["metadata"]["resourceVersion"])
    assert (await one.get("events/default/a")) == b
    assert one.count_prefix("events/") == 1 and two.count_prefix("events/") == 1


async def test_event_reads_after_close_fail_as_storage_errors(backend: Any) -> None:
    if not backend.durable:
        pytest.skip("the memory store answers from memory after close")
    from jobplane.storage.base import StorageError

    store = backend.make()
    await store.start()
    await store.create("events/default/a", event("a"))
    await store.close()
    with pytest.raises(StorageError, match="not open"):
        await store.get("events/default/a")
    with pytest.raises(StorageError, match="not open"):
        await store.list("events/")


async def test_event_pages_count_the_items_left_as_etcd_does(store: Store, monkeypatch: Any) -> None:
    """A list cut by its limit says how many objects of its snapshot follow (etcd3's
    ``remainingItemCount``: the range's count less the limit), whether the page came from the
    mirror or the database; with a predicate (a label or field selector) it says nothing."""
    monkeypatch.setattr(mirrored, "SPILL_CHUNK", 2)
    made = {}
    for i in range(13):
        made[i] = await store.create(f"events/default/e{i:02}", event(f"e{i:02}"))
    await store.create("events/other/e99", event("e99", ns="other"))
    first = await store.list("events/", limit=4)
    assert names(first.items) == ["e00", "e01", "e02", "e03"] and first.remaining == 10
    second = await store.list("events/", limit=4, continue_token=first.continue_token)
    assert names(second.items) == ["e04", "e05", "e06", "e07"] and second.remaining == 6
    spaced = await store.list("events/default/", limit=5)
    assert spaced.remaining == 8
    last = await store.list("events/default/", limit=8, continue_token=spaced.continue_token)
    assert last.continue_token is None and last.remaining is None
    assert (await store.list("events/default/", lambda o: True, limit=5)).remaining is None
    # a continuation counts its snapshot, not the current state, wherever the changes fall
    await store.delete("events/default/e09")
    await store.create("events/default/e08a", event("e08a"))
    await store.create("events/default/e10a", event("e10a"))
    await store.delete("events/default/e01")  # before the token's key: irrelevant
    await store.update("events/default/e11", {**made[11], "reason": "Changed"})
    await store.delete("events/default/e12")
    third = await store.list("events/", limit=2, continue_token=second.continue_token)
    assert names(third.items) == ["e08", "e09"] and third.revision == first.revision and third.remaining == 4
    again = await store.list("events/", limit=2, continue_token=second.continue_token)  # the token once more
    assert names(again.items) == ["e08", "e09"] and again.remaining == 4
    fresh = await store.list("events/", limit=2, continue_token=third.continue_token)
    assert names(fresh.items) == ["e10", "e11"] and fresh.remaining == 2
    now = await store.list("events/default/", limit=10)
    assert now.remaining == 2  # 13 - 3 deleted + 2 created = 12 now, 10 on this page
