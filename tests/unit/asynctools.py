"""Event-loop helpers shared by controller tests (they run on a FakeClock, so nothing sleeps)."""

import asyncio
import contextlib


async def settle(rounds: int = 60):
    """Let every ready task run a few steps."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def eventually(predicate, rounds: int = 400, interval: float = 0.0):
    """Yield to the loop (sleeping ``interval`` seconds between tries, for tests on a real clock)
    until ``predicate()`` (sync or async) is true; returns its value."""
    for _ in range(rounds):
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError("condition not reached")


@contextlib.asynccontextmanager
async def running(coro):
    """Run a controller's ``run()`` for the duration of the block."""
    task = asyncio.create_task(coro)
    try:
        await settle()
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
