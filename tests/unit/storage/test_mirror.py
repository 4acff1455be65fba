"""What the mirror keeps in memory: bytes only in state and history, decodes shared by live
watchers and then dropped, a label index that tracks label changes."""

import asyncio
import os

import orjson
import pytest

from jobplane.api.selectors import parse_label_selector
from jobplane.storage.labelindex import LabelIndex
from jobplane.storage.memory import MemoryStore
from jobplane.storage.mirror import Mirror


def pod(name, **labels):
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels}}


async def test_history_keeps_no_decoded_objects_after_watchers_deliver():
    store = MemoryStore()
    w1 = store.watch("pods/")
    w2 = store.watch("pods/")
    t1, t2 = asyncio.ensure_future(w1.__anext__()), asyncio.ensure_future(w2.__anext__())
    await asyncio.sleep(0)  # both watchers registered and waiting
    for i in range(5):
        await store.create(f"pods/default/p{i}", pod(f"p{i}", app="x"))
    mirror = store._mirror
    assert all(ch.pending == 2 for ch in mirror._hist)
    first = [await t1] + [await w1.__anext__() for _ in range(4)]
    # (t2 took the first change meanwhile) the rest wait for w2, decoded once and shared
    assert all(ch.pending == 1 and ch.event is not None for ch in list(mirror._hist)[1:])
    second = [await t2] + [await w2.__anext__() for _ in range(4)]
    # both watchers got the very same decoded event objects: one decode per change
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert all(ch.pending == 0 and ch.event is None for ch in mirror._hist)
    assert mirror.stats()["shared_decodes"] == 0
    await w1.aclose()
    await w2.aclose()


async def test_closing_a_watcher_releases_its_undelivered_changes():
    store = MemoryStore()
    w = store.watch("pods/")
    task = asyncio.ensure_future(w.__anext__())
    await asyncio.sleep(0)
    for i in range(3):
        await store.create(f"pods/default/p{i}", pod(f"p{i}"))
    await task
    await w.aclose()
    assert all(ch.pending == 0 and ch.event is None for ch in store._mirror._hist)


async def test_replay_does_not_pin_decodes():
    store = MemoryStore()
    for i in range(3):
        await store.create(f"pods/default/p{i}", pod(f"p{i}"))
    w = store.watch("pods/", 0)
    evs = [await w.__anext__() for _ in range(3)]
    assert [e.object["metadata"]["name"] for e in evs] == ["p0", "p1", "p2"]
    assert all(ch.event is None for ch in store._mirror._hist)
    await w.aclose()


async def test_entries_hold_bytes_and_postings_only():
    store = MemoryStore()
    await store.create("pods/default/a", pod("a", app="x", tier="web"))
    entry = store._mirror._entries["pods/default/a"]
    assert isinstance(entry.data, bytes) and not hasattr(entry, "__dict__")
    assert sorted(p.pair for p in entry.labels) == [("app", "x"), ("tier", "web")]


async def test_a_status_update_keeps_the_postings_objects():
    store = MemoryStore()
    a = await store.create("pods/default/a", pod("a", app="x"))
    before = store._mirror._entries["pods/default/a"].labels
    a["status"] = {"phase": "Running"}
    await store.update("pods/default/a", a)
    assert store._mirror._entries["pods/default/a"].labels == before


def test_label_index_moves_keys_and_drops_empty_postings():
    idx = LabelIndex()
    pa = idx.postings_for({"app": "x", "tier": "web"})
    idx.replace("k1", (), pa)
    idx.replace("k0", (), idx.postings_for({"app": "x"}))
    keys, required = idx.smallest({"app": "x", "tier": "web"})
    assert keys == ["k1"] and [p.pair for p in required] == [("app", "x")]
    assert idx.smallest({"app": "x"})[0] == ["k0", "k1"]
    idx.replace("k1", pa, idx.postings_for({"app": "y"}))
    assert idx.smallest({"tier": "web"}) is None
    assert idx.smallest({"app": "y"})[0] == ["k1"]
    assert len(idx) == 2  # app=x (k0) and app=y (k1)


def test_label_index_ignores_non_string_values():
    idx = LabelIndex()
    assert idx.postings_for({"a": 1, "b": None}) == ()
    assert idx.postings_for(None) == ()


@pytest.mark.parametrize("history,history_bytes,kept", [(3, 10**9, 3), (10**6, 0, 0)])
def test_history_bound_by_count_or_bytes(history, history_bytes, kept):
    from jobplane.storage.writes import Change

    m = Mirror(history, history_bytes)
    m.apply([Change(r, f"pods/default/p{r}", "ADDED", b"{}", None, {}) for r in range(1, 7)])
    assert len(m._hist) == kept and m.compact_rev == 6 - kept


@pytest.mark.parametrize("text,labels,want", [
    ("app=x", {"app": "x"}, True), ("app=x", {"app": "y"}, False), ("app=x", None, False),
    ("app=x", {}, False), ("app=x,tier=web", {"app": "x", "tier": "web"}, True),
    ("app=x,tier=web", {"app": "x"}, False), ("app in (x)", {"app": "x"}, True),
    ("app!=x", {"app": "y"}, True), ("app!=x", None, True), ("app in (x,y)", {"app": "y"}, True),
    ("app=x,app=y", {"app": "x"}, False), ("", None, True), ("!app", {"app": "x"}, False),
])
def test_compiled_label_matcher_agrees_with_matches(text, labels, want):
    sel = parse_label_selector(text)
    assert sel.matches(labels) is want
    assert sel.matcher()(labels) is want


def event(name, **labels):
    return {"kind": "Event", "metadata": {"name": name, "namespace": "default", "labels": labels},
            "message": "x" * 600}  # over PACK_MIN, so it is kept compressed once cold


async def test_cold_events_are_kept_compressed_and_read_back_the_same():
    store = MemoryStore(history=2)
    made = [await store.create(f"events/default/e{i}", event(f"e{i}", app="x")) for i in range(4)]
    await store.create("pods/default/p", {**pod("p"), "status": {"message": "x" * 600}})
    await store.create("pods/default/q", pod("q"))
    mirror = store._mirror
    # e0..e3 left the two-revision history unchanged: cold, compressed; p is still in it
    assert mirror.stats()["packed"] == 4
    assert not mirror._entries["pods/default/p"].packed
    assert len(mirror._entries["events/default/e0"].data) < 300
    assert await store.get("events/default/e0") == made[0]
    assert [o["metadata"]["name"] for o in (await store.list("events/", label_hint={"app": "x"})).items] == \
        ["e0", "e1", "e2", "e3"]
    assert (await store.list_bytes("events/")).items[0] == await store.get_bytes("events/default/e0")
    # a write over a compressed object: the watch sees the right previous state, and the
    # object is plain again until it goes cold
    w = store.watch("events/")
    task = asyncio.ensure_future(w.__anext__())
    await asyncio.sleep(0)
    changed = {**made[0], "message": "y" * 600}
    await store.update("events/default/e0", changed, made[0]["metadata"]["resourceVersion"])
    ev = await task
    assert ev.prev_object == made[0] and ev.object["message"] == changed["message"]
    assert not mirror._entries["events/default/e0"].packed
    deleted = await store.delete("events/default/e1")  # its last state comes from the compressed bytes
    assert deleted["message"] == made[1]["message"]
    await w.aclose()


def test_a_loaded_mirror_compresses_the_events_its_history_does_not_hold():
    m = Mirror(history=10)
    data = [(f"events/default/e{i}", i + 1, orjson.dumps(event(f"e{i}"))) for i in range(3)]
    m.load(3, data, [])
    assert m.stats()["packed"] == 3 and m.get_bytes("events/default/e1") == data[1][2]
    assert m.lookup("events/default/e2") == (3, data[2][2])


def test_a_spilling_mirror_keeps_events_history_and_count_but_not_objects():
    from jobplane.storage.writes import Change

    m = Mirror(history=3, spilled=("events/",))
    data = [orjson.dumps(event(f"e{i}")) for i in range(3)]
    m.apply([Change(i + 1, f"events/default/e{i}", "ADDED", data[i], None, {}) for i in range(3)])
    m.apply([Change(4, "events/default/e0", "MODIFIED", data[1], data[0], {}),
             Change(5, "events/default/e1", "DELETED", data[1], data[1], {}),
             Change(6, "pods/default/p", "ADDED", orjson.dumps(pod("p")), None, {})])
    assert list(m._entries) == ["pods/default/p"] and m.count_prefix("events/") == 2
    assert m.get_bytes("events/default/e2") is None and m.lookup("events/default/e2") is None
    assert m.states_at("events/", "", 3) == {"events/default/e0": data[0], "events/default/e1": data[1]}
    assert m.stats()["spilled"] == 2 and m.stats()["history"] == 3
    for prefix in ("events/", "events/default/", "ev", ""):  # the store reads those from its database
        with pytest.raises(ValueError):
            m.list(prefix)
    with pytest.raises(ValueError):
        m.count_prefix("events/default/")  # only the whole prefix is counted
    m.load(9, [("pods/default/q", 9, orjson.dumps(pod("q")))], [], {"events/": 7})
    assert m.count_prefix("events/") == 7 and m.count_prefix("pods/") == 1


def test_range_start_is_one_lower_bound():
    from jobplane.storage.mirror import prefix_end, range_start

    assert range_start("events/", "") == (">=", "events/")
    assert range_start("events/ns/", "events/a/x") == (">=", "events/ns/")  # a token from elsewhere
    assert range_start("events/", "events/ns/e7") == (">", "events/ns/e7")
    assert prefix_end("events/") == "events0" and prefix_end("events/ns/e1") == "events/ns/e2"


def finished(name, i):
    return {**pod(name), "spec": {"nodeName": "vm", "containers": [{"name": "main", "image": "busybox"}]},
            "status": {"phase": "Succeeded", "message": f"container {i} of the same job exited 0 " * 20}}


async def test_cold_pods_are_packed_against_a_sibling_and_read_back_the_same():
    store = MemoryStore(history=1)
    made = [await store.create(f"pods/default/p{i}", finished(f"p{i}", i)) for i in range(5)]
    await store.create("configmaps/default/c", {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
                                                "data": {"k": "v" * 600}})
    entries = store._mirror._entries
    assert all(entries[f"pods/default/p{i}"].packed for i in range(5))
    assert not entries["configmaps/default/c"].packed  # only Events and pods are packed
    first, later = entries["pods/default/p0"], [entries[f"pods/default/p{i}"] for i in range(1, 5)]
    # the first primes the dictionary; its siblings pack to a fraction of what it did alone
    assert first.zdict is None and all(e.zdict is not None for e in later)
    assert max(len(e.data) for e in later) * 3 < len(first.data)
    for i, obj in enumerate(made):
        assert await store.get(f"pods/default/p{i}") == obj
    assert (await store.list("pods/")).items == made
    # a pod unlike the dictionary becomes the next one; packed pods keep theirs
    odd = await store.create("pods/default/z", {"kind": "Pod", "metadata": {"name": "z", "namespace": "default"},
                                                "data": os.urandom(600).hex()})
    await store.create("configmaps/default/d", {"kind": "ConfigMap", "metadata": {"name": "d", "namespace": "default"}})
    assert entries["pods/default/z"].packed and await store.get("pods/default/z") == odd
    assert store._mirror._packer._dicts["pods"] != later[0].zdict
    assert (await store.list("pods/")).items[:5] == made
    # an update of a packed pod: the watch's previous state is the stored one
    w = store.watch("pods/")
    task = asyncio.ensure_future(w.__anext__())
    await asyncio.sleep(0)
    await store.update("pods/default/p3", {**made[3], "status": {"phase": "Failed"}}, made[3]["metadata"]["resourceVersion"])
    ev = await task
    assert ev.prev_object == made[3] and not entries["pods/default/p3"].packed
    await w.aclose()


async def test_a_raw_list_inflates_packed_pods_one_at_a_time():
    from jobplane.storage.mirror import RawItems

    store = MemoryStore(history=1)
    made = [await store.create(f"pods/default/p{i}", finished(f"p{i}", i)) for i in range(4)]
    raw = await store.list_bytes("pods/")
    assert isinstance(raw.items, RawItems)
    # what the list holds is the packed form (the first three are cold), not their JSON
    held = raw.items._items
    assert [isinstance(x, bytes) for x in held] == [False, False, False, True]
    assert sum(len(x.data) for x in held[:3]) * 2 < sum(len(orjson.dumps(o)) for o in made[:3])
    assert [orjson.loads(b) for b in raw.items] == made
    assert orjson.loads(raw.items[1]) == made[1] and [orjson.loads(b) for b in raw.items[2:]] == made[2:]
    assert raw.items == [orjson.dumps(o) for o in made] and len(raw.items) == 4
    # a change after the list does not reach it: it captured the stored form at its revision
    await store.update("pods/default/p0", {**made[0], "status": {"phase": "Failed"}}, made[0]["metadata"]["resourceVersion"])
    assert orjson.loads(raw.items[0]) == made[0]
