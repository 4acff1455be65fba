"""WorkQueue: de-duplication, processing semantics, delays and rate limits on a FakeClock."""

import asyncio

import pytest

from jobplane.client.workqueue import QueueShutDown, WorkQueue
from jobplane.clock import FakeClock


async def test_add_dedupes_and_keeps_fifo_order():
    q = WorkQueue(FakeClock())
    for k in ("a", "b", "a", "c", "b"):
        q.add(k)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]
    assert len(q) == 0


async def test_key_in_processing_is_requeued_once_after_done():
    q = WorkQueue(FakeClock())
    q.add("a")
    key = await q.get()
    q.add("a")
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while processing
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_get_waits_for_add_and_wakes_each_waiter():
    q = WorkQueue(FakeClock())
    t1 = asyncio.create_task(q.get())
    t2 = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not t1.done() and not t2.done()
    q.add("x")
    q.add("y")
    got = await asyncio.gather(t1, t2)
    assert sorted(got) == ["x", "y"]


async def test_shutdown_wakes_getters_and_refuses_work():
    q = WorkQueue(FakeClock())
    t = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await t
    q.add("a")
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_add_after_fires_on_fake_clock_only():
    clock = FakeClock()
    q = WorkQueue(clock)
    q.add_after("a", 10)
    await asyncio.sleep(0)
    assert len(q) == 0
    await clock.advance(9.9)
    assert len(q) == 0
    await clock.advance(0.1)
    assert len(q) == 1
    assert await q.get() == "a"


async def test_add_after_earliest_deadline_wins():
    clock = FakeClock()
    q = WorkQueue(clock)
    q.add_after("a", 30)
    q.add_after("a", 5)
    q.add_after("a", 20)  # later than pending 5 s: ignored
    assert q.pending_delays() == {"a": clock.now() + 5}
    await clock.advance(5)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    await clock.advance(100)
    assert len(q) == 0  # the superseded 30 s and 20 s adds never fire


async def test_add_after_zero_is_immediate():
    q = WorkQueue(FakeClock())
    q.add_after("a", 0)
    assert len(q) == 1


async def test_rate_limited_backoff_doubles_caps_and_forget_resets():
    clock = FakeClock()
    q = WorkQueue(clock, base_delay=1.0, max_delay=4.0)
    expected = [1.0, 2.0, 4.0, 4.0]
    for i, delay in enumerate(expected):
        q.add_rate_limited("k")
        assert q.num_requeues("k") == i + 1
        assert q.pending_delays()["k"] == pytest.approx(clock.now() + delay)
        await clock.advance(delay - 0.01)
        assert len(q) == 0
        await clock.advance(0.01)
        assert len(q) == 1
        assert await q.get() == "k"
        q.done("k")
    q.forget("k")
    assert q.num_requeues("k") == 0
    q.add_rate_limited("k")
    assert q.pending_delays()["k"] == pytest.approx(clock.now() + 1.0)


async def test_shutdown_cancels_delayed_adds():
    clock = FakeClock()
    q = WorkQueue(clock)
    q.add_after("a", 1)
    q.shutdown()
    await clock.advance(2)
    assert len(q) == 0
