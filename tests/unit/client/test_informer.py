"""Informer: initial list, watch order, indices, re-list on 410 and after errors, handlers."""

import asyncio

from jobplane.api.errors import StatusError
from jobplane.client.informer import Informer, SharedInformerFactory
from jobplane.clock import FakeClock


def pod(name, rv, ns="default", **labels):
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": str(rv), "labels": labels}}


class ScriptedClient:
    """list() answers from ``items``; each watch() takes events (or exceptions) from its own queue."""

    def __init__(self, items, rv):
        self.items = items
        self.rv = rv
        self.list_calls = []
        self.watch_calls = []
        self.watch_queues = []

    async def list(self, resource, namespace=None, **kw):
        self.list_calls.append((resource, namespace, kw))
        return {"items": list(self.items), "metadata": {"resourceVersion": str(self.rv)}}

    async def watch(self, resource, namespace=None, **kw):
        self.watch_calls.append(kw)
        q = asyncio.Queue()
        self.watch_queues.append(q)
        while True:
            item = await q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def wait_watch(self, n):
        for _ in range(200):
            if len(self.watch_queues) >= n:
                return self.watch_queues[n - 1]
            await asyncio.sleep(0)
        raise AssertionError(f"no watch #{n}")


class Recorder:
    def __init__(self):
        self.calls = []

    def handlers(self):
        return {"on_add": lambda o: self.calls.append(("add", o["metadata"]["name"])),
                "on_update": lambda a, b: self.calls.append(
                    ("update", b["metadata"]["name"], a["metadata"]["resourceVersion"],
                     b["metadata"]["resourceVersion"])),
                "on_delete": lambda o: self.calls.append(("delete", o["metadata"]["name"]))}


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


async def test_initial_list_then_watch_events_in_order():
    client = ScriptedClient([pod("a", 1), pod("b", 2)], 5)
    inf = Informer(client, "pods", clock=FakeClock())
    rec = Recorder()
    inf.add_handler(**rec.handlers())
    await inf.start()
    assert inf.has_synced
    assert rec.calls == [("add", "a"), ("add", "b")]
    q = await client.wait_watch(1)
    assert client.watch_calls[0]["resource_version"] == "5"
    for ev in [("ADDED", pod("c", 6)), ("MODIFIED", pod("a", 7)), ("DELETED", pod("b", 8)),
               ("BOOKMARK", {"metadata": {"resourceVersion": "9"}})]:
        q.put_nowait(ev)
    await settle()
    assert rec.calls[2:] == [("add", "c"), ("update", "a", "1", "7"), ("delete", "b")]
    assert inf.resource_version == "9"
    assert sorted(o["metadata"]["name"] for o in inf.list()) == ["a", "c"]
    assert inf.get("default", "a")["metadata"]["resourceVersion"] == "7"
    assert inf.get_key("default/c") is not None
    assert inf.get("default", "b") is None
    await inf.stop()


async def test_cache_is_updated_before_handlers_run():
    client = ScriptedClient([], 1)
    inf = Informer(client, "pods", clock=FakeClock())
    seen = []
    inf.add_handler(on_update=lambda old, new: seen.append(inf.get("default", "a")["metadata"]["resourceVersion"]))
    await inf.start()
    q = await client.wait_watch(1)
    q.put_nowait(("ADDED", pod("a", 2)))
    q.put_nowait(("MODIFIED", pod("a", 3)))
    await settle()
    assert seen == ["3"]
    await inf.stop()


async def test_relist_on_410_diffs_against_cache():
    client = ScriptedClient([pod("a", 1), pod("b", 2), pod("c", 3)], 3)
    inf = Informer(client, "pods", clock=FakeClock())
    rec = Recorder()
    inf.add_handler(**rec.handlers())
    await inf.start()
    q = await client.wait_watch(1)
    # The world moves on while our watch is broken: b changed, c gone, d new, a the same.
    client.items = [pod("a", 1), pod("b", 20), pod("d", 21)]
    client.rv = 22
    rec.calls.clear()
    q.put_nowait(StatusError(410, "Expired", "too old resource version: 3 (10)"))
    await client.wait_watch(2)
    await settle()
    assert len(client.list_calls) == 2
    assert sorted(rec.calls) == sorted([("delete", "c"), ("update", "b", "2", "20"), ("add", "d")])
    assert client.watch_calls[1]["resource_version"] == "22"
    assert sorted(o["metadata"]["name"] for o in inf.list()) == ["a", "b", "d"]
    assert inf.relists == 2
    await inf.stop()


async def test_watch_error_event_410_relists():
    client = ScriptedClient([pod("a", 1)], 1)
    inf = Informer(client, "pods", clock=FakeClock())
    await inf.start()
    q = await client.wait_watch(1)
    q.put_nowait(("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}))
    await client.wait_watch(2)
    assert len(client.list_calls) == 2
    await inf.stop()


async def test_clean_stream_end_rewatches_from_last_rv_without_list():
    client = ScriptedClient([], 4)
    inf = Informer(client, "pods", clock=FakeClock())
    await inf.start()
    q = await client.wait_watch(1)
    q.put_nowait(("ADDED", pod("a", 7)))
    q.put_nowait(None)
    await client.wait_watch(2)
    assert client.watch_calls[1]["resource_version"] == "7"
    assert len(client.list_calls) == 1
    await inf.stop()


async def test_other_errors_back_off_on_clock_then_relist():
    clock = FakeClock()
    client = ScriptedClient([], 4)
    inf = Informer(client, "pods", clock=clock)
    await inf.start()
    q = await client.wait_watch(1)
    q.put_nowait(ConnectionResetError("boom"))
    await settle()
    assert len(client.watch_queues) == 1  # waiting on the clock, not spinning
    await clock.advance(1)
    await client.wait_watch(2)
    assert len(client.list_calls) == 2
    await inf.stop()


async def test_late_handler_gets_synthetic_adds_and_index_works():
    client = ScriptedClient([pod("a", 1, app="x"), pod("b", 2, "other", app="y"), pod("c", 3, app="x")], 3)
    inf = Informer(client, "pods", clock=FakeClock())
    inf.add_index("app", lambda o: [o["metadata"]["labels"]["app"]])
    await inf.start()
    rec = Recorder()
    inf.add_handler(**rec.handlers())
    assert sorted(rec.calls) == [("add", "a"), ("add", "b"), ("add", "c")]
    assert [o["metadata"]["name"] for o in inf.by_index("app", "x")] == ["a", "c"]
    assert [o["metadata"]["name"] for o in inf.list("other")] == ["b"]
    q = await client.wait_watch(1)
    q.put_nowait(("MODIFIED", pod("a", 4, app="y")))
    q.put_nowait(("DELETED", pod("c", 5, app="x")))
    await settle()
    assert inf.by_index("app", "x") == []
    assert sorted(o["metadata"]["name"] for o in inf.by_index("app", "y")) == ["a", "b"]
    assert inf.index_keys("app", "y") == ["default/a", "other/b"] and inf.index_values("app") == ["y"]
    q.put_nowait(("DELETED", pod("a", 6, app="y")))
    q.put_nowait(("MODIFIED", pod("b", 7, "other", app="x")))
    await settle()
    assert inf.index_keys("app", "x") == ["other/b"] and inf.index_values("app") == ["x"]
    q.put_nowait(("ADDED", pod("a", 8, app="y")))
    await settle()
    # An index added late covers what is cached.
    inf.add_index("ns", lambda o: [o["metadata"]["namespace"]])
    assert [o["metadata"]["name"] for o in inf.by_index("ns", "other")] == ["b"]
    assert inf.index_keys("ns", "default") == ["default/a"]
    await inf.stop()


async def test_handler_exception_does_not_stop_others():
    client = ScriptedClient([pod("a", 1)], 1)
    inf = Informer(client, "pods", clock=FakeClock())
    inf.add_handler(on_add=lambda o: 1 / 0)
    rec = Recorder()
    inf.add_handler(**rec.handlers())
    await inf.start()
    assert rec.calls == [("add", "a")]
    await inf.stop()


async def test_factory_shares_informers_and_start_is_idempotent():
    client = ScriptedClient([pod("a", 1)], 1)
    f = SharedInformerFactory(client, FakeClock())
    assert f.informer("pods") is f.informer("po")
    assert f.informer("jobs") is f.informer("jobs.batch")
    assert f.informer("pods") is not f.informer("jobs")
    await f.start_all()
    await f.start_all()
    assert len(client.list_calls) == 2  # pods and jobs once each
    assert f.informer("pods").has_synced
    await f.stop_all()


async def test_remote_transport_bounds_each_watch():
    client = ScriptedClient([], 1)
    client.informer_watch_timeout = lambda: 432
    inf = Informer(client, "pods", clock=FakeClock())
    await inf.start()
    await client.wait_watch(1)
    assert client.watch_calls[0]["timeout_seconds"] == 432
    assert client.watch_calls[0]["allow_bookmarks"] is True
    await inf.stop()
