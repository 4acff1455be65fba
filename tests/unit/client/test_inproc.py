"""InProcessClient over ApiService(MemoryStore): verbs, copies, errors, watch."""

import asyncio

import pytest

from jobplane.api.errors import StatusError
from jobplane.client.base import MERGE_PATCH


def pod(name, **labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def test_crud_and_copies(inproc):
    body = pod("a", app="x")
    created = await inproc.create("pods", body, "default")
    assert created["metadata"]["uid"] and created["kind"] == "Pod"
    assert "uid" not in body["metadata"]  # the caller's body is not touched
    created["metadata"]["labels"]["app"] = "mutated"
    got = await inproc.get("po", "a", "default")
    assert got["metadata"]["labels"]["app"] == "x"
    got["metadata"]["labels"]["extra"] = "1"
    updated = await inproc.update("pods", got)  # namespace taken from the body
    assert updated["metadata"]["labels"]["extra"] == "1"
    patched = await inproc.patch("pods", "a", {"metadata": {"labels": {"p": "q"}}}, "default", MERGE_PATCH)
    assert patched["metadata"]["labels"]["p"] == "q"
    listed = await inproc.list("pods", "default", label_selector="app=x")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert listed["metadata"]["resourceVersion"]
    await inproc.delete("pods", "a", "default")
    with pytest.raises(StatusError) as exc:
        await inproc.get("pods", "a", "default")
    assert exc.value.code == 404 and exc.value.message == 'pods "a" not found'


async def test_unknown_resource_is_404(inproc):
    with pytest.raises(StatusError) as exc:
        await inproc.get("widgets", "a", "default")
    assert exc.value.code == 404


async def test_cluster_scoped_ignores_namespace(inproc):
    ns = await inproc.get("namespaces", "default", "whatever")
    assert ns["metadata"]["name"] == "default"


async def test_watch_mutation_never_reaches_the_store_and_times_out_on_clock(inproc, clock):
    await inproc.create("pods", pod("a"), "default")
    listed = await inproc.list("pods", "default")
    rv = listed["metadata"]["resourceVersion"]
    seen = []

    async def consume():
        async for etype, obj in inproc.watch("pods", "default", resource_version=rv, timeout_seconds=30):
            obj["metadata"]["name"] = "mutated"  # the store keeps bytes: a mutation cannot leak into it
            seen.append(etype)

    task = asyncio.create_task(consume())
    for _ in range(10):
        await asyncio.sleep(0)
    await inproc.create("pods", pod("b"), "default")
    for _ in range(10):
        await asyncio.sleep(0)
    assert seen == ["ADDED"]
    assert (await inproc.get("pods", "b", "default"))["metadata"]["name"] == "b"
    await clock.advance(30)
    await asyncio.wait_for(task, 1)


async def test_watch_from_zero_lists_first(inproc):
    await inproc.create("pods", pod("a"), "default")
    stream = inproc.watch("pods", "default")
    etype, obj = await stream.__anext__()
    assert (etype, obj["metadata"]["name"], obj["kind"]) == ("ADDED", "a", "Pod")
    await stream.aclose()


async def test_watchers_share_one_decoded_object_per_change(inproc):
    """No copy per watcher: the store decodes a change once for all its live watchers
    (informers own these objects and must not mutate them)."""
    rv = (await inproc.list("pods", "default"))["metadata"]["resourceVersion"]
    a = inproc.watch("pods", "default", resource_version=rv)
    b = inproc.watch("pods", "default", resource_version=rv)
    first_a = asyncio.ensure_future(a.__anext__())
    first_b = asyncio.ensure_future(b.__anext__())
    for _ in range(5):
        await asyncio.sleep(0)
    await inproc.create("pods", pod("c"), "default")
    (ta, oa), (tb, ob) = await asyncio.wait_for(asyncio.gather(first_a, first_b), 1)
    assert ta == tb == "ADDED" and oa["metadata"]["name"] == "c"
    assert oa["metadata"] is ob["metadata"] and oa["spec"] is ob["spec"]  # top level: a shallow copy
    await a.aclose()
    await b.aclose()


async def test_selector_watch_turns_leaving_and_entering_into_deleted_and_added(inproc):
    """A label-selected watch: MODIFIED while the object stays selected, DELETED when it
    leaves the selection, ADDED when it comes back (with a pod that was selected before the
    watch started, so its first MODIFIED is judged by its previous state)."""
    await inproc.create("pods", pod("p", app="x"), "default")
    await inproc.create("pods", pod("q", app="y"), "default")
    rv = (await inproc.list("pods", "default"))["metadata"]["resourceVersion"]
    stream = inproc.watch("pods", "default", resource_version=rv, label_selector="app=x")
    seen: list[tuple[str, str, str]] = []

    async def collect(n: int) -> None:
        while len(seen) < n:
            etype, obj = await stream.__anext__()
            seen.append((etype, obj["metadata"]["name"], obj["metadata"]["labels"].get("app", "")))

    task = asyncio.ensure_future(collect(6))
    for labels, name in (({"app": "x", "v": "1"}, "p"), ({"app": "z"}, "p"), ({"app": "x"}, "q"),
                         ({"app": "x"}, "p"), ({"v": "2"}, "q"), ({"app": "y"}, "q")):
        await inproc.patch("pods", name, {"metadata": {"labels": labels}}, "default", patch_type=MERGE_PATCH)
    await asyncio.wait_for(task, 2)
    assert seen == [("MODIFIED", "p", "x"), ("DELETED", "p", "z"), ("ADDED", "q", "x"), ("ADDED", "p", "x"),
                    ("MODIFIED", "q", "x"), ("DELETED", "q", "y")]
    await stream.aclose()
