"""asyncio helpers every layer may use."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


async def cancel_and_wait(tasks: Iterable[asyncio.Future]) -> None:
    """Cancel the tasks, then wait for each to finish; what they raise on the way out
    (their cancellation or a failure) is not the caller's concern any more."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
