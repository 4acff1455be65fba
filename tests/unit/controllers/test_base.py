"""controllers.base: workers retry failures with back-off and honour requested re-checks."""

import asyncio

from ctrlgen_helpers import settle

from jobplane.client.workqueue import WorkQueue
from jobplane.clock import FakeClock
from jobplane.controllers.base import enqueue_handlers, run_workers


async def test_worker_retries_with_backoff_then_forgets():
    clock = FakeClock()
    q = WorkQueue(clock, base_delay=1.0)
    calls = []

    async def reconcile(key):
        calls.append((key, clock.now()))
        if len(calls) < 3:
            raise RuntimeError("boom")
        return None

    task = asyncio.create_task(run_workers(q, reconcile, 2, "t"))
    q.add("k")
    await settle()
    assert len(calls) == 1 and q.num_requeues("k") == 1
    await clock.advance(1)
    await settle()
    assert len(calls) == 2 and q.num_requeues("k") == 2
    await clock.advance(1.5)
    await settle()
    assert len(calls) == 2  # second back-off is 2 s
    await clock.advance(0.5)
    await settle()
    assert len(calls) == 3 and q.num_requeues("k") == 0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert q.shutting_down


async def test_returned_delay_requeues_key():
    clock = FakeClock()
    q = WorkQueue(clock)
    calls = []

    async def reconcile(key):
        calls.append(clock.now())
        return 30.0 if len(calls) == 1 else None

    task = asyncio.create_task(run_workers(q, reconcile))
    q.add("k")
    await settle()
    await clock.advance(30)
    await settle()
    assert calls == [calls[0], calls[0] + 30]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_enqueue_handlers_filter_and_keys():
    q = WorkQueue(FakeClock())
    h = enqueue_handlers(q, accept=lambda o: o["metadata"]["name"] != "skip")
    h["on_add"]({"metadata": {"name": "a", "namespace": "ns"}})
    h["on_update"]({}, {"metadata": {"name": "b"}})
    h["on_delete"]({"metadata": {"name": "skip", "namespace": "ns"}})
    assert len(q) == 2
