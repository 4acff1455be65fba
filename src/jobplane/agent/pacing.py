"""When a started container's ``Running`` status is written: at once on a quiet node, a little
later on a busy one.

A short container (a Job's ``true``) often exits within milliseconds of its start. Writing its
``Running`` status and then its ``terminated`` one costs two pod writes, each followed by the job
controller's sync (``status.ready`` up, then down again) and every watcher's event; writing once,
when it has ended, costs one, as kubelet's PLEG usually does for such a container. That pays
while many pods start at once, where the writes compete with the other pods' work; on a quiet
node it only delays what a user watching the pod sees. So the delay is adaptive, as the store's
commits are (inline when the writer is idle, batched when it is not): ``Running`` waits
``delay`` (joined by the exit when that comes first) only while another pod of this node is
still starting (its containers not yet reported started) or a status write is in flight;
otherwise it is written at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


class RunningReports:
    """The node's pods that are still starting, and its status writes in flight (one per agent,
    shared by its pod workers on one event loop)."""

    def __init__(self) -> None:
        self._starting: set[object] = set()
        self._writes = 0
        # Called when the last pod still starting is no longer (the spare pod directories'
        # refill waits for that: agent/spares.py); must not block.
        self.on_quiet: Callable[[], None] | None = None

    def starting(self, pod: object) -> None:
        """``pod`` begins its start-up: until ``started`` (or ``gone``), others wait."""
        self._starting.add(pod)

    def started(self, pod: object) -> None:
        """A status that shows ``pod``'s containers started (or ended) is written."""
        if pod in self._starting:
            self._starting.discard(pod)
            if not self._starting and self.on_quiet is not None:
                self.on_quiet()

    gone = started  # its worker ended, however

    def quiet(self) -> bool:
        """No pod of the node is starting (may be read from another thread)."""
        return not self._starting

    def alone(self, pod: object) -> bool:
        """No other pod of the node is starting and no status write is in flight: what ``pod``
        does now competes with nothing of the node's."""
        return self._writes == 0 and len(self._starting) <= (pod in self._starting)

    def delay(self, pod: object, delay: float) -> float:
        """How long ``pod``'s new Running status waits: ``delay`` while the node is busy with
        others (see the module docstring), else 0."""
        return 0.0 if self.alone(pod) else delay

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around one status write."""
        self._writes += 1
        try:
            yield
        finally:
            self._writes -= 1
