"""Events through the API on the durable stores, which keep Events' objects in the database
only: core/v1 and events.k8s.io/v1 get, list (field selectors as ``kubectl describe`` and
``kubectl get events`` send them, pages), watch and the Event TTL controller, the same as on
the memory store."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asynctools import eventually, running

from jobplane.api.meta import rfc3339
from jobplane.api.registry import EVENTS, EVENTS_V1
from jobplane.apiserver.service import ApiService
from jobplane.client.inproc import InProcessClient
from jobplane.clock import FakeClock
from jobplane.controllers.event_ttl import EventTTLController
from jobplane.storage.base import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pgtest import PG_DSN, fresh_schema, postgres_available  # noqa: E402


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        from jobplane.storage.memory import MemoryStore

        yield MemoryStore()
    elif request.param == "sqlite":
        from jobplane.storage.sqlite import SqliteStore

        yield SqliteStore(tmp_path / "state.db")
    else:
        if not postgres_available():
            pytest.skip(f"no PostgreSQL at {PG_DSN}")
        from jobplane.storage.postgres import PostgresStore

        with fresh_schema("jp_events") as schema:
            yield PostgresStore(PG_DSN, schema=schema)


@pytest.fixture
async def api(store: Store, clock: FakeClock) -> AsyncIterator[InProcessClient]:
    await store.start()
    svc = ApiService(store, clock)
    await svc.ensure_default_namespaces()
    yield InProcessClient(svc)
    await store.close()


def event(name: str, pod: str, uid: str, at: float, reason: str = "Started") -> dict:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": "default", "uid": uid},
            "reason": reason, "message": f"{reason} {pod}", "type": "Normal", "count": 1,
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": rfc3339(at), "lastTimestamp": rfc3339(at)}


def held_in_memory(store: Store) -> list[str]:
    return [k for k in store._mirror._entries if k.startswith("events/")]  # type: ignore[attr-defined]


async def test_event_reads_as_kubectl_makes_them(api: InProcessClient, store: Store, clock: FakeClock) -> None:
    for i in range(6):
        for reason in ("Scheduled", "Pulled", "Started"):
            await api.create("events", event(f"p{i}.{reason.lower()}", f"p{i}", f"u{i}", clock.now(), reason),
                             "default")
    svc = api.service
    # kubectl describe pod p3: its events by field selector (chunks of 500)
    described = await svc.list(EVENTS, "default", limit=500,
                               field_selector="involvedObject.name=p3,involvedObject.namespace=default,"
                                              "involvedObject.uid=u3")
    assert [e["reason"] for e in described["items"]] == ["Pulled", "Scheduled", "Started"]
    assert described["metadata"]["resourceVersion"] == str(store.current_revision())
    # kubectl get events, paged: each cut page says how many follow (as kube-apiserver's etcd3
    # store), the last page nothing
    seen, token, left = [], None, []
    while True:
        page = await svc.list(EVENTS, "default", limit=7, continue_=token)
        seen += [e["metadata"]["name"] for e in page["items"]]
        left.append(page["metadata"].get("remainingItemCount"))
        token = page["metadata"].get("continue")
        if not token:
            break
    assert len(seen) == 18 and seen == sorted(seen) and left == [11, 4, None]
    # a selector leaves the count out, even when it selects everything
    everything = await svc.list(EVENTS, "default", limit=7, field_selector="metadata.namespace=default")
    assert everything["metadata"]["continue"] and "remainingItemCount" not in everything["metadata"]
    labelled = await svc.list(EVENTS, "default", limit=7, label_selector="!absent")
    assert labelled["metadata"]["continue"] and "remainingItemCount" not in labelled["metadata"]
    selected = await svc.list(EVENTS, None, field_selector="reason=Scheduled")
    assert [e["involvedObject"]["name"] for e in selected["items"]] == [f"p{i}" for i in range(6)]
    # a limit of 0 or below is no limit, as kube-apiserver's (was a 500 on the database stores)
    for limit in (0, -1):
        whole = await svc.list(EVENTS, "default", limit=limit)
        assert len(whole["items"]) == 18 and "continue" not in whole["metadata"]
    # events.k8s.io/v1: the same objects, renamed fields
    v1 = await svc.list(EVENTS_V1, "default", limit=4)
    assert {e["apiVersion"] for e in v1["items"]} == {"events.k8s.io/v1"} and v1["metadata"]["continue"]
    assert v1["metadata"]["remainingItemCount"] == 14
    assert [e["note"] for e in v1["items"]] == ["Pulled p0", "Scheduled p0", "Started p0", "Pulled p1"]
    one = await svc.get(EVENTS_V1, "default", "p1.pulled")
    assert one["regarding"]["uid"] == "u1" and one["reportingController"] == "kubelet"
    if store.__class__.__name__ != "MemoryStore":
        assert held_in_memory(store) == []


async def test_event_ttl_controller_over_the_store(api: InProcessClient, store: Store, clock: FakeClock) -> None:
    now = clock.now()
    await api.create("events", event("old", "p", "u", now - 3000), "default")
    await api.create("events", event("new", "p", "u", now), "default")
    ctrl = EventTTLController(api, clock, ttl=3600)

    async def left(*want: str) -> bool:
        return [e["metadata"]["name"] for e in (await api.list("events", "default"))["items"]] == list(want)

    async def asleep() -> None:
        """Until the reaper sleeps on the clock (a store's I/O is not done by settle())."""
        await eventually(lambda: clock._sleepers, interval=0.01)

    async with running(ctrl.run()):
        await eventually(lambda: len(ctrl.tracker) == 2, interval=0.01)
        await asleep()
        await clock.advance(600)
        assert await eventually(lambda: left("new"), interval=0.01)
        await api.patch("events", "new", {"count": 2, "lastTimestamp": rfc3339(clock.now())}, "default")
        await eventually(lambda: len(ctrl.tracker) == 2, interval=0.01)  # "old" went, the bump is seen
        await asleep()
        await clock.advance(3000)  # the old expiry of "new": its delete is refused (409)
        await asleep()
        assert (await api.get("events", "new", "default"))["count"] == 2
        await clock.advance(600)
        assert await eventually(lambda: left(), interval=0.01)

