"""The Store contract (storage/base.py), run against every backend."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobplane.storage.base import Expired, KeyExists, KeyNotFound, RevisionConflict, Store, WatchEvent

CRASH_WRITER = Path(__file__).with_name("store_crash_writer.py")


def pod(name: str, **labels: str) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def rv(obj: dict) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def next_events(it, n: int, timeout: float = 5.0) -> list[WatchEvent]:
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(it.__anext__(), timeout))
    return out


async def assert_no_event(it, wait: float = 0.2) -> None:
    task = asyncio.ensure_future(it.__anext__())
    done, _ = await asyncio.wait({task}, timeout=wait)
    task.cancel()
    if done:
        pytest.fail(f"unexpected event {task.result()}")
    try:
        await task
    except (asyncio.CancelledError, StopAsyncIteration):
        pass


# ---------------------------------------------------------------------- CRUD


async def test_create_get(store: Store) -> None:
    before = store.current_revision()
    created = await store.create("pods/default/a", pod("a"))
    assert rv(created) == before + 1 == store.current_revision()
    got = await store.get("pods/default/a")
    assert got == created
    assert got["spec"]["containers"][0]["image"] == "busybox"
    with pytest.raises(KeyExists):
        await store.create("pods/default/a", pod("a"))
    assert store.current_revision() == before + 1  # failed writes take no revision
    with pytest.raises(KeyNotFound):
        await store.get("pods/default/nope")


async def test_store_ignores_caller_resource_version_and_mutation(store: Store) -> None:
    body = pod("a")
    body["metadata"]["resourceVersion"] = "999"
    created = await store.create("pods/default/a", body)
    assert rv(created) == store.current_revision()
    # mutating what we passed in or got back must not change the stored object
    body["spec"]["containers"][0]["image"] = "mutated-input"
    got = await store.get("pods/default/a")
    got["metadata"]["labels"]["x"] = "mutated-output"
    again = await store.get("pods/default/a")
    assert again["spec"]["containers"][0]["image"] == "busybox"
    assert "x" not in again["metadata"]["labels"]


async def test_update_semantics(store: Store) -> None:
    a = await store.create("pods/default/a", pod("a"))
    new = pod("a", v="2")
    updated = await store.update("pods/default/a", new, a["metadata"]["resourceVersion"])
    assert rv(updated) == rv(a) + 1
    assert (await store.get("pods/default/a"))["metadata"]["labels"] == {"v": "2"}
    with pytest.raises(RevisionConflict):
        await store.update("pods/default/a", pod("a", v="3"), a["metadata"]["resourceVersion"])
    with pytest.raises(KeyNotFound):
        await store.update("pods/default/missing", pod("missing"), None)
    unconditional = await store.update("pods/default/a", pod("a", v="4"))
    assert rv(unconditional) == rv(updated) + 1 == store.current_revision()


async def test_delete_semantics(store: Store) -> None:
    a = await store.create("pods/default/a", pod("a", app="x"))
    with pytest.raises(RevisionConflict):
        await store.delete("pods/default/a", "12345")
    gone = await store.delete("pods/default/a", a["metadata"]["resourceVersion"])
    assert rv(gone) == rv(a) + 1 == store.current_revision()
    assert gone["metadata"]["labels"] == {"app": "x"}
    with pytest.raises(KeyNotFound):
        await store.get("pods/default/a")
    with pytest.raises(KeyNotFound):
        await store.delete("pods/default/a")
    again = await store.create("pods/default/a", pod("a"))
    assert rv(again) == rv(gone) + 1


async def test_revision_is_global_and_monotonic(store: Store) -> None:
    start = store.current_revision()
    a = await store.create("pods/default/a", pod("a"))
    b = await store.create("jobs.batch/default/b", pod("b"))
    a2 = await store.update("pods/default/a", pod("a", x="1"))
    d = await store.delete("jobs.batch/default/b")
    assert [rv(o) for o in (a, b, a2, d)] == [start + 1, start + 2, start + 3, start + 4]
    assert store.current_revision() == start + 4


async def test_concurrent_writes_take_distinct_contiguous_revisions(store: Store) -> None:
    start = store.current_revision()
    objs = await asyncio.gather(*[store.create(f"pods/default/p{i:03}", pod(f"p{i}")) for i in range(200)])
    revs = sorted(rv(o) for o in objs)
    assert revs == list(range(start + 1, start + 201))
    # one conflicting create among many concurrent ones fails alone
    results = await asyncio.gather(store.create("pods/default/p000", pod("dup")),
                                   store.create("pods/default/new", pod("new")), return_exceptions=True)
    assert isinstance(results[0], KeyExists)
    assert rv(results[1]) == start + 201


# ---------------------------------------------------------------------- list


async def test_list_sorted_snapshot_and_prefix_isolation(store: Store) -> None:
    for key in ["jobs.batch/default/b", "jobs.batch/default/a", "jobs.batch/other/a",
                "pods/default/z", "podsx/default/y", "nodes//n1"]:
        await store.create(key, pod(key.rsplit("/", 1)[1]))
    res = await store.list("jobs.batch/default/")
    assert [o["metadata"]["name"] for o in res.items] == ["a", "b"]
    assert res.revision == store.current_revision()
    assert res.continue_token is None
    assert len((await store.list("jobs.batch/")).items) == 3
    assert [o["metadata"]["name"] for o in (await store.list("pods/")).items] == ["z"]
    assert [o["metadata"]["name"] for o in (await store.list("podsx/")).items] == ["y"]
    assert [o["metadata"]["name"] for o in (await store.list("nodes/")).items] == ["n1"]
    assert (await store.list("secrets/")).items == []


async def test_list_predicate_limit_continue(store: Store) -> None:
    for i in range(25):
        await store.create(f"pods/default/p{i:02}", pod(f"p{i:02}", parity="even" if i % 2 == 0 else "odd"))
    await store.create("pods/other/p99", pod("p99", parity="even"))

    def even(o: dict) -> bool:
        return o["metadata"]["labels"].get("parity") == "even"

    names: list[str] = []
    token = None
    pages = 0
    while True:
        res = await store.list("pods/default/", even, limit=4, continue_token=token)
        assert len(res.items) <= 4
        names += [o["metadata"]["name"] for o in res.items]
        pages += 1
        token = res.continue_token
        if token is None:
            break
    assert names == [f"p{i:02}" for i in range(0, 25, 2)]
    assert pages == 4  # 13 matches: 4+4+4+1, and no empty trailing page

    first = await store.list("pods/default/", None, limit=10)
    assert first.continue_token is not None
    assert first.remaining == 15
    rest = await store.list("pods/default/", None, limit=100, continue_token=first.continue_token)
    assert [o["metadata"]["name"] for o in first.items + rest.items] == [f"p{i:02}" for i in range(25)]
    assert rest.continue_token is None


async def test_list_continue_reads_the_same_snapshot(backend: Any, store: Store) -> None:
    for i in range(6):
        await store.create(f"pods/default/p{i}", pod(f"p{i}"))
    first = await store.list("pods/default/", limit=3)
    snap = first.revision
    # changes after the snapshot must not show up in the continuation
    await store.delete("pods/default/p4")
    await store.update("pods/default/p5", pod("p5", changed="yes"))
    await store.create("pods/default/p9", pod("p9"))
    rest = await store.list("pods/default/", limit=10, continue_token=first.continue_token)
    assert rest.revision == snap
    assert [o["metadata"]["name"] for o in rest.items] == ["p3", "p4", "p5"]
    assert rest.items[2]["metadata"]["labels"] == {}
    fresh = await store.list("pods/default/")
    assert [o["metadata"]["name"] for o in fresh.items] == ["p0", "p1", "p2", "p3", "p5", "p9"]


async def test_list_continue_expired_after_compaction(backend: Any) -> None:
    store = await backend.open(history=5)
    for i in range(4):
        await store.create(f"pods/default/p{i}", pod(f"p{i}"))
    first = await store.list("pods/default/", limit=1)
    for i in range(10):
        await store.update("pods/default/p0", pod("p0", n=str(i)))
    with pytest.raises(Expired):
        await store.list("pods/default/", limit=1, continue_token=first.continue_token)


# ---------------------------------------------------------------------- watch


async def test_watch_replay_then_live_in_order(store: Store) -> None:
    a = await store.create("pods/default/a", pod("a"))
    b = await store.create("pods/default/b", pod("b"))
    await store.create("pods/other/c", pod("c"))
    it = store.watch("pods/default/", rv(a) - 1)
    try:
        replay = await next_events(it, 2)
        assert [(e.type, e.key, e.revision) for e in replay] == [
            ("ADDED", "pods/default/a", rv(a)), ("ADDED", "pods/default/b", rv(b))]
        assert replay[0].object["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
        a2 = await store.update("pods/default/a", pod("a", v="2"))
        await store.create("pods/other/d", pod("d"))  # other namespace: not seen
        gone = await store.delete("pods/default/b")
        live = await next_events(it, 2)
        assert [(e.type, e.key, e.revision) for e in live] == [
            ("MODIFIED", "pods/default/a", rv(a2)), ("DELETED", "pods/default/b", rv(gone))]
        assert live[0].object["metadata"]["labels"] == {"v": "2"}
        assert live[0].prev_object is not None and live[0].prev_object["metadata"]["labels"] == {}
        # DELETED carries the last state, stamped with the delete's revision
        assert live[1].object["metadata"]["name"] == "b"
        assert rv(live[1].object) == rv(gone)
        await assert_no_event(it)
    finally:
        await it.aclose()


async def test_watch_from_now_sees_only_new_changes(store: Store) -> None:
    await store.create("pods/default/a", pod("a"))
    it = store.watch("pods/", None)
    try:
        first = asyncio.ensure_future(it.__anext__())
        await asyncio.sleep(0.05)  # the watch is iterating before the write
        b = await store.create("pods/default/b", pod("b"))
        ev = await asyncio.wait_for(first, 5)
        assert (ev.type, ev.key, ev.revision) == ("ADDED", "pods/default/b", rv(b))
    finally:
        await it.aclose()


async def test_watch_prefix_isolation(store: Store) -> None:
    start = store.current_revision()
    jobs = store.watch("jobs.batch/default/", start)
    pods = store.watch("pods/", start)
    try:
        await store.create("jobs.batch/other/x", pod("x"))
        await store.create("podsx/default/y", pod("y"))
        await store.create("jobs.batch/default/j", pod("j"))
        await store.create("pods/default/p", pod("p"))
        (ej,) = await next_events(jobs, 1)
        (ep,) = await next_events(pods, 1)
        assert ej.key == "jobs.batch/default/j"
        assert ep.key == "pods/default/p"
        await assert_no_event(jobs)
        await assert_no_event(pods)
    finally:
        await jobs.aclose()
        await pods.aclose()


async def test_watch_expired_after_compaction(backend: Any) -> None:
    store = await backend.open(history=5)
    first = await store.create("pods/default/a", pod("a"))
    for i in range(20):
        await store.update("pods/default/a", pod("a", n=str(i)))
    it = store.watch("pods/", rv(first))
    with pytest.raises(Expired):
        await it.__anext__()
    # a recent revision still replays
    now = store.current_revision()
    recent = store.watch("pods/", now - 2)
    try:
        events = await next_events(recent, 2)
        assert [e.revision for e in events] == [now - 1, now]
    finally:
        await recent.aclose()


async def test_slow_watcher_is_cut_off_with_expired(store: Store) -> None:
    start = store.current_revision()
    await store.create("pods/default/first", pod("first"))
    it = store.watch("pods/", start)
    await next_events(it, 1)  # registered, now stop reading
    for chunk in range(11):
        await asyncio.gather(*[store.create(f"pods/default/p{chunk}-{i}", {"metadata": {}})
                               for i in range(1000)])
    with pytest.raises(Expired):
        async for _ in it:
            pass
    # writers were never blocked
    assert store.current_revision() == start + 11_001


async def test_close_ends_watches(backend: Any) -> None:
    store = await backend.open()
    it = store.watch("pods/", store.current_revision())

    async def drain() -> list[WatchEvent]:
        return [e async for e in it]

    task = asyncio.ensure_future(drain())
    await store.create("pods/default/a", pod("a"))
    await asyncio.sleep(0.1)
    await store.close()
    events = await asyncio.wait_for(task, 5)
    assert [e.key for e in events] == ["pods/default/a"]


# ---------------------------------------------------------------------- guaranteed_update


async def test_guaranteed_update_retries_conflicts(store: Store) -> None:
    await store.create("configmaps/default/c", {"metadata": {"name": "c"}, "data": {"n": "0"}})

    def incr(o: dict) -> dict:
        o["data"]["n"] = str(int(o["data"]["n"]) + 1)
        return o

    await asyncio.gather(*[store.guaranteed_update("configmaps/default/c", incr) for _ in range(10)])
    final = await store.get("configmaps/default/c")
    assert final["data"]["n"] == "10"
    before = store.current_revision()
    same = await store.guaranteed_update("configmaps/default/c", lambda o: None)
    assert same == final and store.current_revision() == before
    with pytest.raises(KeyNotFound):
        await store.guaranteed_update("configmaps/default/missing", incr)


# ---------------------------------------------------------------------- fast paths


async def test_bytes_fast_paths(store: Store) -> None:
    import orjson

    a = await store.create("pods/default/a", pod("a"))
    assert orjson.loads(await store.get_bytes("pods/default/a")) == a
    with pytest.raises(KeyNotFound):
        await store.get_bytes("pods/default/b")
    res = await store.list_bytes("pods/")
    assert [orjson.loads(b) for b in res.items] == [a]


# ---------------------------------------------------------------------- durability


async def test_restart_keeps_objects_revision_and_history(backend: Any) -> None:
    if not backend.durable:
        pytest.skip("not a durable backend")
    store = await backend.open()
    a = await store.create("pods/default/a", pod("a"))
    await store.create("pods/default/b", pod("b"))
    await store.update("pods/default/a", pod("a", v="2"))
    await store.delete("pods/default/b")
    rev = store.current_revision()
    await store.close()

    reopened = await backend.open()
    assert reopened.current_revision() == rev  # even though the last write was a delete
    assert (await reopened.get("pods/default/a"))["metadata"]["labels"] == {"v": "2"}
    with pytest.raises(KeyNotFound):
        await reopened.get("pods/default/b")
    it = reopened.watch("pods/", rv(a))  # history survives too
    try:
        events = await next_events(it, 3)
        assert [(e.type, e.key) for e in events] == [
            ("ADDED", "pods/default/b"), ("MODIFIED", "pods/default/a"), ("DELETED", "pods/default/b")]
    finally:
        await it.aclose()
    c = await reopened.create("pods/default/c", pod("c"))
    assert rv(c) == rev + 1


@pytest.mark.parametrize("resource", ["pods", "events"])  # events: read back from the database only
async def test_acknowledged_writes_survive_kill_9(backend: Any, resource: str) -> None:
    if not backend.durable:
        pytest.skip("not a durable backend")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, str(CRASH_WRITER), backend.spec(), resource], stdout=subprocess.PIPE,
                            env=env, text=True)
    acked: list[str] = []
    assert proc.stdout is not None
    try:
        while len(acked) < 400:
            line = await asyncio.to_thread(proc.stdout.readline)
            if not line:
                break
            acked.append(line.strip())
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    # keys whose ack line was already written when the kill landed count too
    acked += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    assert len(acked) >= 400
    store = await backend.open()
    missing = []
    for key in acked:
        try:
            await store.get(key)
        except KeyNotFound:
            missing.append(key)
    assert missing == []
    assert store.current_revision() >= len(acked)
    assert store.count_prefix(f"{resource}/") >= len(acked)  # type: ignore[attr-defined]


async def test_shared_database_between_servers(backend: Any) -> None:
    if not backend.shared:
        pytest.skip("backend is not shared between processes")
    one = await backend.open()
    two = await backend.open()
    it = two.watch("pods/", two.current_revision())
    try:
        a = await one.create("pods/default/a", pod("a"))
        (ev,) = await next_events(it, 1)
        assert (ev.type, ev.revision) == ("ADDED", rv(a))
        b = await two.create("pods/default/b", pod("b"))
        assert rv(b) == rv(a) + 1  # one global revision
        with pytest.raises(KeyExists):
            await two.create("pods/default/a", pod("a"))
        with pytest.raises(RevisionConflict):
            await two.update("pods/default/a", pod("a"), "999")
        assert (await two.get("pods/default/b")) == b  # visible to the writer before it returns
        for _ in range(100):  # and to the other server soon after (its mirror follows NOTIFY)
            try:
                assert (await one.get("pods/default/b")) == b
                break
            except KeyNotFound:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("server one never saw server two's write")
    finally:
        await it.aclose()


async def test_sqlite_file_is_owned_by_one_store(backend: Any) -> None:
    if backend.name != "sqlite":
        pytest.skip("sqlite only")
    from jobplane.storage.base import StorageError

    first = await backend.open()
    second = backend.make()
    with pytest.raises(StorageError, match="in use"):
        await second.start()
    await first.close()
    await second.start()  # the lock went with the first store
    await second.close()
