"""Store contract extensions, every backend: ``label_hint`` on list/list_bytes never changes
what a predicate-filtered list returns (also across continue tokens into history), and the
history is bounded by bytes as well as by revisions (410 past it)."""

from __future__ import annotations

import orjson
import pytest

from jobplane.api.selectors import object_predicate, parse_field_selector, parse_label_selector
from jobplane.storage.base import Expired, Store


def pod(name: str, **labels: str) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def selected(selector: str):
    ls = parse_label_selector(selector)
    return object_predicate(ls, parse_field_selector(None)), ls.equality_pairs() or None


def names(items) -> list[str]:
    return [(orjson.loads(o) if isinstance(o, bytes) else o)["metadata"]["name"] for o in items]


async def paged(store: Store, selector: str, limit: int, raw: bool = False) -> list[str]:
    pred, hint = selected(selector)
    out, token = [], None
    lister = store.list_bytes if raw else store.list
    while True:
        res = await lister("pods/default/", pred, limit, token, label_hint=hint)
        out += names(res.items)
        token = res.continue_token
        if not token:
            return out


@pytest.mark.parametrize("selector", ["app=a", "app=a,tier=web", "app in (a),tier!=db", "app=zzz", "tier"])
async def test_label_hint_gives_the_same_items_as_a_full_scan(store: Store, selector: str) -> None:
    for i in range(12):
        labels = {"app": "a" if i % 3 else "b"}
        if i % 2:
            labels["tier"] = "web" if i % 4 == 1 else "db"
        await store.create(f"pods/default/p{i:02d}", pod(f"p{i:02d}", **labels))
    await store.create("pods/other/p00", pod("p00", app="a", tier="web"))
    pred, hint = selected(selector)
    full = names((await store.list("pods/default/", pred)).items)
    hinted = names((await store.list("pods/default/", pred, label_hint=hint)).items)
    assert hinted == full
    assert await paged(store, selector, 2) == full
    assert await paged(store, selector, 3, raw=True) == full


async def test_label_hint_follows_label_changes_and_deletes(store: Store) -> None:
    a = await store.create("pods/default/a", pod("a", app="x"))
    await store.create("pods/default/b", pod("b", app="x"))
    a["metadata"]["labels"] = {"app": "y"}
    await store.update("pods/default/a", a)
    await store.delete("pods/default/b")
    await store.create("pods/default/c", pod("c", app="x"))
    for sel, want in (("app=x", ["c"]), ("app=y", ["a"])):
        pred, hint = selected(sel)
        assert names((await store.list("pods/default/", pred, label_hint=hint)).items) == want


async def test_continue_token_with_hint_reads_the_snapshot(store: Store) -> None:
    for i in range(6):
        await store.create(f"pods/default/p{i}", pod(f"p{i}", app="x"))
    pred, hint = selected("app=x")
    first = await store.list("pods/default/", pred, 2, label_hint=hint)
    assert names(first.items) == ["p0", "p1"] and first.continue_token
    p3 = await store.get("pods/default/p3")
    p3["metadata"]["labels"] = {"app": "gone"}  # leaves the selection after the snapshot
    await store.update("pods/default/p3", p3)
    await store.delete("pods/default/p4")
    await store.create("pods/default/p9", pod("p9", app="x"))
    rest = await store.list("pods/default/", pred, None, first.continue_token, label_hint=hint)
    assert names(rest.items) == ["p2", "p3", "p4", "p5"]  # as of the first page's revision
    assert rest.revision == first.revision


async def test_history_is_bounded_by_bytes(backend) -> None:
    store = backend.make()
    mirror = getattr(store, "_mirror", None)
    if mirror is None:
        pytest.skip("backend has no mirror")
    mirror.history_bytes = 20_000
    await store.start()
    backend.opened.append(store)
    first = await store.create("pods/default/p", pod("p", pad="x" * 60))
    for _ in range(200):
        first = await store.update("pods/default/p", first)
    assert mirror.stats()["history_bytes"] <= 20_000
    assert 10 < mirror.stats()["history"] < 200
    with pytest.raises(Expired):
        it = store.watch("pods/", 1)
        await it.__anext__()
    # the newest revisions still replay
    it = store.watch("pods/", int(first["metadata"]["resourceVersion"]) - 5)
    ev = await it.__anext__()
    assert ev.revision == int(first["metadata"]["resourceVersion"]) - 4
    await it.aclose()
