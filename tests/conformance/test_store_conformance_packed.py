"""The Store contract over pods that have gone cold: the mirror keeps an object compressed
against a sibling once its change has left the history (``storage.packing``), so with a short
history most objects below are packed. Reads, lists (limits, continue tokens at an older
snapshot, label hints, predicates), watches, updates and deletes over them must answer exactly
as over plain ones, on every backend, and across a restart."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from conformance.test_store_conformance import next_events, rv
from jobplane.storage.base import Expired, Store

HISTORY = 4


def finished(i: int, **labels: str) -> dict:
    """A pod much like its siblings (so it packs against them), unlike them in a few fields."""
    return {"kind": "Pod", "metadata": {"name": f"p{i:02d}", "namespace": "default", "uid": f"uid-{i:04d}",
                                        "labels": {"job-name": "j", "index": str(i), **labels}},
            "spec": {"nodeName": "n1", "restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "exit 0"]}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{"name": "main", "containerID": f"c-{i}",
                                                                    "state": {"terminated": {"exitCode": 0}}}],
                       "message": "finished like its siblings " * 10}}


def names(items: list) -> list[str]:
    return [o["metadata"]["name"] for o in items]


def packed_keys(store: Store) -> list[str]:
    return [k for k, e in store._mirror._entries.items() if e.packed]  # type: ignore[attr-defined]


async def made_pods(store: Store, n: int = 12) -> list[dict]:
    return [await store.create(f"pods/default/p{i:02d}", finished(i, half=str(i % 2))) for i in range(n)]


async def test_packed_pods_read_back_the_same(backend: Any) -> None:
    store = await backend.open(history=HISTORY)
    made = await made_pods(store)
    assert len(packed_keys(store)) == len(made) - HISTORY  # those still in the history are plain
    for obj in made:
        key = f"pods/default/{obj['metadata']['name']}"
        assert await store.get(key) == obj and orjson.loads(await store.get_bytes(key)) == obj
    assert (await store.list("pods/")).items == made
    assert [orjson.loads(b) for b in (await store.list_bytes("pods/default/")).items] == made
    hinted = await store.list("pods/", label_hint={"half": "1"})
    assert names(hinted.items) == [f"p{i:02d}" for i in range(1, 12, 2)]
    odd = await store.list("pods/", lambda o: int(o["metadata"]["labels"]["index"]) % 3 == 0)
    assert names(odd.items) == ["p00", "p03", "p06", "p09"]


async def test_pages_over_packed_pods_keep_their_snapshot(backend: Any) -> None:
    store = await backend.open(history=HISTORY)
    made = await made_pods(store)
    first = await store.list("pods/", limit=5)
    assert names(first.items) == [f"p{i:02d}" for i in range(5)]
    # changes after the snapshot, over packed pods: the next page still shows the snapshot
    await store.update("pods/default/p06", {**made[6], "status": {"phase": "Failed"}}, str(rv(made[6])))
    await store.delete("pods/default/p07")
    rest = await store.list("pods/", limit=5, continue_token=first.continue_token)
    assert rest.revision == first.revision and rest.items == made[5:10]
    last = await store.list("pods/", limit=5, continue_token=rest.continue_token)
    assert last.items == made[10:] and last.continue_token is None
    now = await store.list("pods/")
    assert "p07" not in names(now.items) and now.items[6]["status"] == {"phase": "Failed"}
    # once the snapshot's revision is compacted away the token is refused, as before
    for i in range(HISTORY + 1):
        await store.create(f"pods/other/q{i}", finished(i))
    with pytest.raises(Expired):
        await store.list("pods/", limit=5, continue_token=rest.continue_token)


async def test_watch_sees_packed_pods_previous_state(backend: Any) -> None:
    store = await backend.open(history=HISTORY)
    made = await made_pods(store)
    assert "pods/default/p01" in packed_keys(store)
    it = store.watch("pods/")
    try:
        changed = await store.update("pods/default/p01", {**made[1], "status": {"phase": "Failed"}}, str(rv(made[1])))
        gone = await store.delete("pods/default/p02")
        assert gone == {**made[2], "metadata": {**made[2]["metadata"], "resourceVersion": gone["metadata"]["resourceVersion"]}}
        events = await next_events(it, 2)
        assert [(e.type, e.key) for e in events] == [("MODIFIED", "pods/default/p01"), ("DELETED", "pods/default/p02")]
        assert events[0].prev_object == made[1] and events[0].object == changed
        assert events[1].object["status"] == made[2]["status"]
    finally:
        await it.aclose()


async def test_restart_packs_cold_pods_and_reads_them_back(backend: Any) -> None:
    if not backend.durable:
        pytest.skip("not a durable backend")
    store = await backend.open(history=HISTORY)
    made = await made_pods(store)
    rev = store.current_revision()
    await store.close()
    reopened = await backend.open(history=HISTORY)
    assert reopened.current_revision() == rev
    assert len(packed_keys(reopened)) >= len(made) - HISTORY
    assert (await reopened.list("pods/")).items == made
    page = await reopened.list("pods/", limit=7)
    assert (await reopened.list("pods/", continue_token=page.continue_token)).items == made[7:]
