"""WorkQueue (client-go's rate-limited delaying queue) on an injected Clock.

Contract (signatures fixed):
* ``WorkQueue(clock, *, base_delay=0.005, max_delay=1000.0, name="")``
* ``add(key)``: de-duplicated; a key being processed is re-queued after ``done``.
* ``add_after(key, seconds)``: delayed add (earliest deadline wins).
* ``add_rate_limited(key)``: exponential per-key back-off (base_delay * 2**failures, capped).
* ``forget(key)``: reset the key's failure count. ``num_requeues(key)``.
* ``await get() -> str`` (waits; raises ``asyncio.CancelledError``/``QueueShutDown`` after
  ``shutdown()``), ``done(key)``, ``shutdown()``, ``len(q)``.
"""

from __future__ import annotations
