"""Event TTL controller: Events go away ttl after their last timestamp, on the fake clock."""


from asynctools import running, settle

from jobplane.api.meta import rfc3339
from jobplane.controllers.event_ttl import EventTTLController, ExpiryTracker, event_time


def event(name, at, ns="default", **extra):
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
            "reason": "Started", "message": "m", "type": "Normal", "count": 1,
            "firstTimestamp": rfc3339(at), "lastTimestamp": rfc3339(at), **extra}


async def names(client, ns="default"):
    return sorted(o["metadata"]["name"] for o in (await client.list("events", ns))["items"])


def test_event_time_prefers_last_timestamp_then_event_time_then_creation():
    assert event_time({"lastTimestamp": "2024-01-01T00:00:10Z", "eventTime": "2024-01-01T00:00:05.000000Z"}) == \
        1704067210.0
    assert event_time({"lastTimestamp": None, "eventTime": "2024-01-01T00:00:05.500000Z"}) == 1704067205.5
    assert event_time({"series": {"lastObservedTime": "2024-01-01T00:01:00.000000Z"},
                       "eventTime": "2024-01-01T00:00:05.000000Z"}) == 1704067260.0
    assert event_time({"metadata": {"creationTimestamp": "2024-01-01T00:00:01Z"}}) == 1704067201.0
    assert event_time({"metadata": {}}) is None


def at_rv(name, at, rv):
    return event(name, at) | {"metadata": {"name": name, "namespace": "d", "resourceVersion": rv}}


def test_tracker_orders_by_expiry_and_keeps_outdated_entries_for_the_precondition():
    t = ExpiryTracker(ttl=100)
    assert t.observe(at_rv("a", 50, "1"), 0)
    assert t.observe(at_rv("b", 10, "2"), 0)
    # a bumped later: its old entry (150) fires with the old resourceVersion, whose delete
    # the precondition refuses (409); the new one fires at 300
    assert not t.observe(at_rv("a", 200, "3"), 0)
    assert t.next_expiry() == 110
    assert t.pop_due(160) == [("d/b", "2"), ("d/a", "1")]
    assert t.next_expiry() == 300
    assert t.pop_due(299) == []
    assert t.pop_due(300) == [("d/a", "3")]
    assert t.next_expiry() is None and len(t) == 0


def test_tracker_keeps_any_resource_version_and_times_before_the_epoch():
    t = ExpiryTracker(ttl=100)
    t.observe(at_rv("a", 50, "7"), 0)
    t.observe(at_rv("b", 60, "x1"), 0)  # not a decimal: kept as it is
    t.observe(at_rv("c", -5000, "4"), 0)  # before the epoch: due at once, still in order
    t.observe(event("d", 70) | {"metadata": {"name": "d", "namespace": "d"}}, 0)  # no resourceVersion
    assert t.next_expiry() == 0.0 and len(t) == 4
    assert t.pop_due(200) == [("d/c", "4"), ("d/a", "7"), ("d/b", "x1"), ("d/d", "")]


def test_tracker_pops_in_expiry_order_however_events_arrive():
    import random

    rng = random.Random(7)
    t = ExpiryTracker(ttl=0)
    seen = []
    for i in range(30_000):  # mostly in order, some late, some far off (as a relist adds them)
        at = i // 10 - (rng.random() < 0.05) * rng.randint(1, 30) + (rng.random() < 0.02) * rng.randint(0, 5000)
        t.observe(at_rv(f"e{i}", at, str(i)), 0)
        seen.append((float(max(at, 0)), f"d/e{i}"))
    assert len(t) == 30_000
    popped, now = [], 0.0
    while t.next_expiry() is not None:
        now = t.next_expiry()
        popped += [(now, key) for key, _ in t.pop_due(now)]
    assert [at for at, _ in popped] == sorted(at for at, _ in seen) and sorted(popped) == sorted(seen)
    assert len(t) == 0 and t.next_expiry() is None


def test_tracker_costs_about_64_bytes_an_event():
    import tracemalloc

    events = [at_rv(f"scale-{i}-abcde.17f3a2b4c5d6e7f8", 1_700_000_000 + i // 100, str(10**6 + i))
              for i in range(20_000)]
    tracemalloc.start()
    try:
        t = ExpiryTracker(ttl=3600)
        for e in events:
            t.observe(e, 0)
        per_event = tracemalloc.get_traced_memory()[0] / len(events)
    finally:
        tracemalloc.stop()
    assert per_event < 72  # a heap of (expiry, key, rv) tuples beside a dict took ~250


def test_tracker_retry_brings_a_key_back():
    t = ExpiryTracker(ttl=100)
    t.retry("d/a", "5", 42.5)
    assert t.next_expiry() == 42.5 and t.pop_due(43) == [("d/a", "5")]


async def test_deletes_events_one_ttl_after_last_timestamp(inproc, clock):
    now = clock.now()
    await inproc.create("events", event("old", now - 3000), "default")
    await inproc.create("events", event("new", now), "default")
    ctrl = EventTTLController(inproc, clock, ttl=3600)
    async with running(ctrl.run()):
        assert await names(inproc) == ["new", "old"]
        await clock.advance(599)
        await settle()
        assert await names(inproc) == ["new", "old"]
        await clock.advance(1)  # old: 3000 + 600 = 3600 s after its lastTimestamp
        await settle()
        assert await names(inproc) == ["new"]
        await clock.advance(3000)
        await settle()
        assert await names(inproc) == []


async def test_event_created_while_running_and_refreshed_event_is_rescheduled(inproc, clock):
    ctrl = EventTTLController(inproc, clock, ttl=100)
    async with running(ctrl.run()):
        await inproc.create("events", event("e", clock.now()), "default")
        await settle()
        await clock.advance(60)
        ev = await inproc.get("events", "e", "default")
        ev["count"] = 2
        ev["lastTimestamp"] = rfc3339(clock.now())  # seen again: the TTL restarts
        await inproc.update("events", ev, "default")
        await settle()
        await clock.advance(50)  # 110 s after creation, 50 s after the bump
        await settle()
        assert await names(inproc) == ["e"]
        await clock.advance(50)
        await settle()
        assert await names(inproc) == []


async def test_an_earlier_expiry_wakes_the_sleeping_reaper(inproc, clock):
    now = clock.now()
    await inproc.create("events", event("late", now), "default")
    ctrl = EventTTLController(inproc, clock, ttl=1000)
    async with running(ctrl.run()):
        await settle()
        # arrives while the reaper sleeps until "late" expires (now + 1000)
        await inproc.create("events", event("early", now - 900, ns="kube-system"), "kube-system")
        await settle()
        await clock.advance(100)
        await settle()
        assert await names(inproc, "kube-system") == []
        assert await names(inproc) == ["late"]


async def test_relist_after_expired_watch_keeps_tracking(inproc, clock):
    ctrl = EventTTLController(inproc, clock, ttl=100)
    await inproc.create("events", event("a", clock.now()), "default")
    rv = await ctrl._relist()
    assert len(ctrl.tracker) == 1 and rv
    await inproc.delete("events", "a", "default")
    await inproc.create("events", event("b", clock.now()), "default")
    await ctrl._relist()  # what watch_loop does after a 410
    assert ctrl.tracker.pop_due(clock.now() + 100) == [("default/b", (await inproc.get("events", "b", "default"))
                                                        ["metadata"]["resourceVersion"])]


async def test_delete_is_guarded_by_resource_version(inproc, clock):
    await inproc.create("events", event("e", clock.now() - 200), "default")
    ctrl = EventTTLController(inproc, clock, ttl=100)
    await ctrl._relist()
    ev = await inproc.get("events", "e", "default")
    ev["count"] = 5
    await inproc.update("events", ev, "default")  # changed after the controller looked
    assert await ctrl.expire_once() == 1
    assert await names(inproc) == ["e"]  # 409 swallowed; the watch event reschedules it


def test_server_flags_reach_the_settings(monkeypatch):
    from click.testing import CliRunner

    from jobplane import server as server_mod
    from jobplane.cli.server_cmd import server

    seen = {}

    async def fake_serve(settings, announce):
        seen["settings"] = settings

    monkeypatch.setattr(server_mod, "serve", fake_serve)
    monkeypatch.setattr(server_mod, "configure_logging", lambda level: None)
    result = CliRunner().invoke(server, ["--event-ttl", "30m", "--terminated-pod-gc-threshold", "7"])
    assert result.exit_code == 0, result.output
    assert seen["settings"].event_ttl == 1800.0
    assert seen["settings"].terminated_pod_gc_threshold == 7
    bad = CliRunner().invoke(server, ["--event-ttl", "soon"])
    assert bad.exit_code != 0 and "invalid duration" in bad.output


async def test_an_event_deleted_meanwhile_is_let_go(inproc, clock):
    await inproc.create("events", event("e", clock.now()), "default")
    ctrl = EventTTLController(inproc, clock, ttl=100)
    await ctrl._relist()
    await inproc.delete("events", "e", "default")  # its entry stays: no per-key index
    assert await ctrl.expire_once() == 0
    await clock.advance(100)
    assert await ctrl.expire_once() == 1 and len(ctrl.tracker) == 0  # 404: not retried


def test_pop_due_takes_at_most_the_limit_in_expiry_order():
    t = ExpiryTracker(ttl=100)
    for i in range(5):
        t.observe(at_rv(f"e{i}", 10 + i, str(i)), 0)
    assert t.pop_due(200, limit=2) == [("d/e0", "0"), ("d/e1", "1")]
    assert t.pop_due(200, limit=2) == [("d/e2", "2"), ("d/e3", "3")]
    assert t.pop_due(200, limit=2) == [("d/e4", "4")] and len(t) == 0


async def test_a_backlog_larger_than_a_batch_is_deleted_batch_by_batch(inproc, clock, monkeypatch):
    import jobplane.controllers.event_ttl as mod

    monkeypatch.setattr(mod, "DELETE_BATCH", 2)
    for i in range(5):
        await inproc.create("events", event(f"e{i}", clock.now() - 500 + i), "default")
    await inproc.create("events", event("fresh", clock.now()), "default")
    ctrl = EventTTLController(inproc, clock, ttl=100)
    await ctrl._relist()
    popped: list[int] = []
    real = ctrl.tracker.pop_due
    monkeypatch.setattr(ctrl.tracker, "pop_due", lambda now, limit=None: popped.append(limit) or real(now, limit))
    assert await ctrl.expire_once() == 5
    assert popped == [2, 2, 2, 2]  # three batches (2, 2, 1), then an empty one
    assert await names(inproc) == ["fresh"]
