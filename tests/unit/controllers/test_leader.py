"""Leader election over a Lease on a FakeClock, through the real API service (admission
validates every Lease write)."""

from __future__ import annotations

import asyncio

import pytest

from jobplane.api.errors import StatusError
from jobplane.api.meta import parse_time
from jobplane.apiserver.service import ApiService
from jobplane.client.inproc import InProcessClient
from jobplane.clock import FakeClock
from jobplane.controllers.leader import LEASE_NAME, LEASE_NAMESPACE, LeaderElector, new_identity
from jobplane.storage.memory import MemoryStore

T0 = 1_700_000_000.0


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
async def client(clock):
    store = MemoryStore()
    await store.start()
    service = ApiService(store, clock)
    await service.ensure_default_namespaces()
    yield InProcessClient(service)
    await store.close()


def elector(client, clock, ident):
    return LeaderElector(client, clock, ident, rng=lambda: 0.0)


async def lease(client):
    return await client.get("leases", LEASE_NAME, LEASE_NAMESPACE)


class FlakyClient:
    """Passes through to the real client until ``broken``; then every call fails."""

    def __init__(self, inner):
        self.inner = inner
        self.broken = False

    def __getattr__(self, name):
        attr = getattr(self.inner, name)

        async def call(*args, **kwargs):
            if self.broken:
                raise StatusError(500, "InternalError", "Internal error occurred: store unavailable")
            return await attr(*args, **kwargs)

        return call


def test_identity_is_hostname_underscore_uuid():
    host, _, tail = new_identity().rpartition("_")
    assert host and len(tail) == 36 and tail.count("-") == 4


async def test_first_candidate_creates_the_lease_at_once(client, clock):
    a = elector(client, clock, "host-a_1")
    assert await a.try_acquire_or_renew()
    assert a.is_leader()
    spec = (await lease(client))["spec"]
    assert spec["holderIdentity"] == "host-a_1"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"] == "2023-11-14T22:13:20.000000Z"


async def test_second_candidate_waits_while_the_lease_is_renewed(client, clock):
    a, b = elector(client, clock, "a"), elector(client, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert b.leader() == "a" and not b.is_leader()
    for _ in range(10):  # 50 s of renewals every 5 s: b never gets it
        await clock.advance(5)
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
    spec = (await lease(client))["spec"]
    assert spec["holderIdentity"] == "a"
    assert parse_time(spec["acquireTime"]) == T0  # kept across renewals
    assert parse_time(spec["renewTime"]) == T0 + 50


async def test_takeover_after_expiry_bumps_transitions(client, clock):
    a, b = elector(client, clock, "a"), elector(client, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # b observes the record now
    await clock.advance(14.9)
    assert not await b.try_acquire_or_renew()  # still valid: 15 s since b observed it
    await clock.advance(0.2)
    assert await b.try_acquire_or_renew()
    spec = (await lease(client))["spec"]
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1
    assert parse_time(spec["acquireTime"]) == T0 + 15.1
    # the old leader notices on its next attempt and does not take it back
    assert not await a.try_acquire_or_renew()
    assert not a.is_leader() and a.leader() == "b"


async def test_racing_candidates_only_one_wins(client, clock):
    a, b = elector(client, clock, "a"), elector(client, clock, "b")
    assert await a.try_acquire_or_renew()
    await b.try_acquire_or_renew()
    c = elector(client, clock, "c")
    await c.try_acquire_or_renew()
    await clock.advance(16)
    results = await asyncio.gather(b.try_acquire_or_renew(), c.try_acquire_or_renew())
    assert sorted(results) == [False, True]  # resourceVersion guards the update
    assert (await lease(client))["spec"]["leaseTransitions"] == 1


async def test_release_lets_a_successor_in_without_waiting(client, clock):
    a, b = elector(client, clock, "a"), elector(client, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    spec = (await lease(client))["spec"]
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert await b.try_acquire_or_renew()
    assert (await lease(client))["spec"]["leaseTransitions"] == 1


async def test_run_leads_until_renewal_fails_then_steps_down(client, clock):
    flaky = FlakyClient(client)
    a = elector(flaky, clock, "a")
    events = []

    async def started():
        events.append(("started", clock.now() - T0))

    async def stopped():
        events.append(("stopped", clock.now() - T0))

    task = asyncio.create_task(a.run(started, stopped))
    await clock.advance(0)
    assert events == [("started", 0.0)]
    for _ in range(5):  # renewals every 2 s keep it leading
        await clock.advance(2)
    renew_time = parse_time((await lease(client))["spec"]["renewTime"])
    assert renew_time == T0 + 10
    flaky.broken = True
    await clock.advance(2)  # t=12: first failed renewal; deadline t=22
    await clock.advance(9)  # t=21: still within the renew deadline (attempts at 12..20)
    assert not task.done()
    await clock.advance(1)  # t=22: no renewal within renewDeadline (10 s): step down
    assert task.done() and task.exception() is None
    assert events == [("started", 0.0), ("stopped", 22.0)]
    assert (await lease(client))["spec"]["holderIdentity"] == "a"  # not released: it could not write


async def test_standby_takes_over_when_the_leader_stops_renewing(client, clock):
    a, b = elector(client, clock, "a"), elector(client, clock, "b")
    leading = []

    def track(name):
        async def on_start():
            leading.append((name, clock.now() - T0))

        return on_start

    async def nothing():
        pass

    ta = asyncio.create_task(a.run(track("a"), nothing))
    await clock.advance(0)
    tb = asyncio.create_task(b.run(track("b"), nothing))
    await clock.advance(0)
    for _ in range(10):
        await clock.advance(1)
    assert leading == [("a", 0.0)]
    ta.cancel()  # the leader "crashes": no release, its renewals stop
    a.release_on_cancel = False
    await asyncio.gather(ta, return_exceptions=True)
    for _ in range(20):
        await clock.advance(1)
    assert [name for name, _ in leading] == ["a", "b"]
    # b saw a's last renewal at t=10 and retries every 2 s: it takes over 15-17 s later
    assert 25.0 <= leading[1][1] <= 27.0
    assert (await lease(client))["spec"]["leaseTransitions"] == 1
    tb.cancel()
    await asyncio.gather(tb, return_exceptions=True)
    assert (await lease(client))["spec"]["holderIdentity"] == ""  # released on cancel


def test_rejects_inconsistent_timings(client, clock):
    with pytest.raises(ValueError):
        LeaderElector(client, clock, "x", lease_duration=10, renew_deadline=10)
