"""Leader election over a ``coordination.k8s.io/v1`` Lease, as client-go's
``tools/leaderelection`` does it for kube-controller-manager: several ``jobplane server``
processes on one shared store run the controllers only in the one holding
``kube-system/jobplane-controller-manager``.

The algorithm is upstream's ``tryAcquireOrRenew``: a lease is held while its holder is set
and less than ``leaseDurationSeconds`` have passed since this candidate last *observed the
record change* (on its own clock, so clock skew between machines does not matter); a
candidate takes over an expired lease by bumping ``leaseTransitions``; writes are guarded
by resourceVersion, so only one of two racing candidates wins. The leader renews every
``retryPeriod`` and steps down when it could not renew within ``renewDeadline``. On a clean
shutdown it releases the lease (``ReleaseOnCancel``) so a successor takes over at once.
Identities are upstream's ``<hostname>_<uuid>``; the server keeps its own across restarts
(``server.leader_identity``), so after a crash it is still the holder and renews at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import parse_time, rfc3339_micro
from jobplane.client.base import Client
from jobplane.client.events import EventRecorder
from jobplane.clock import Clock

log = logging.getLogger(__name__)
Obj = dict[str, Any]

LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "jobplane-controller-manager"
# kube-controller-manager's defaults (--leader-elect-lease-duration, -renew-deadline, -retry-period).
LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
JITTER_FACTOR = 1.2  # client-go's acquire loop: wait.JitterUntil(..., RetryPeriod, 1.2, true)


def new_identity() -> str:
    """``<hostname>_<uuid>``, as kube-controller-manager names itself."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True)
class LeaderElectionRecord:
    """client-go's ``resourcelock.LeaderElectionRecord``, times in epoch seconds."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: float | None = None
    renew_time: float | None = None
    leader_transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Obj) -> LeaderElectionRecord:
        spec = lease.get("spec") or {}
        return cls(holder_identity=spec.get("holderIdentity") or "",
                   lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
                   acquire_time=parse_time(spec.get("acquireTime")),
                   renew_time=parse_time(spec.get("renewTime")),
                   leader_transitions=int(spec.get("leaseTransitions") or 0))

    def to_spec(self) -> Obj:
        """``LeaderElectionRecordToLeaseSpec``: the Lease spec fields (MicroTime times)."""
        spec: Obj = {"holderIdentity": self.holder_identity,
                     "leaseDurationSeconds": self.lease_duration_seconds,
                     "leaseTransitions": self.leader_transitions}
        if self.acquire_time is not None:
            spec["acquireTime"] = rfc3339_micro(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = rfc3339_micro(self.renew_time)
        return spec


class LeaderElector:
    """One candidate. ``run`` acquires, leads until the lease is lost (or the task is
    cancelled) and returns; call it again to stand for election again."""

    def __init__(self, client: Client, clock: Clock, identity: str | None = None, *,
                 namespace: str = LEASE_NAMESPACE, name: str = LEASE_NAME,
                 lease_duration: float = LEASE_DURATION, renew_deadline: float = RENEW_DEADLINE,
                 retry_period: float = RETRY_PERIOD, jitter: float = JITTER_FACTOR,
                 release_on_cancel: bool = True, rng: Callable[[], float] = random.random,
                 recorder: EventRecorder | None = None) -> None:
        if not lease_duration > renew_deadline > retry_period * JITTER_FACTOR:
            raise ValueError("want leaseDuration > renewDeadline > retryPeriod * 1.2")
        self.client = client
        self.clock = clock
        self.identity = identity or new_identity()
        self.namespace = namespace
        self.name = name
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.jitter = jitter
        self.release_on_cancel = release_on_cancel
        self.rng = rng
        self.recorder = recorder  # client.events.EventRecorder, optional
        self.observed_record: LeaderElectionRecord | None = None
        self.observed_time = 0.0
        self._lease: Obj | None = None  # the last Lease read or written (its resourceVersion guards updates)

    # ------------------------------------------------------------------ state

    def is_leader(self) -> bool:
        return self.observed_record is not None and self.observed_record.holder_identity == self.identity

    def leader(self) -> str:
        return self.observed_record.holder_identity if self.observed_record else ""

    def _lease_valid(self, now: float) -> bool:
        assert self.observed_record is not None
        return self.observed_time + self.observed_record.lease_duration_seconds > now

    def _record_event(self, what: str) -> None:
        """``LeaseLock.RecordEvent``: a Normal ``LeaderElection`` Event on the Lease."""
        if self.recorder is not None and self._lease is not None:
            self.recorder.event({**self._lease, "kind": "Lease", "apiVersion": "coordination.k8s.io/v1"},
                                "Normal", "LeaderElection", f"{self.identity} {what}")

    def _observe(self, record: LeaderElectionRecord) -> None:
        self.observed_record = record
        self.observed_time = self.clock.now()

    # ------------------------------------------------------------------ lock I/O

    def _lease_object(self, record: LeaderElectionRecord) -> Obj:
        if self._lease is None:
            return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": record.to_spec()}
        lease = dict(self._lease)
        lease["spec"] = {**(lease.get("spec") or {}), **record.to_spec()}
        return lease

    async def _create(self, record: LeaderElectionRecord) -> None:
        self._lease = None
        self._lease = await self.client.create("leases", self._lease_object(record), self.namespace)

    async def _update(self, record: LeaderElectionRecord) -> None:
        if self._lease is None:
            raise RuntimeError("lease not initialized, call get or create first")
        self._lease = await self.client.update("leases", self._lease_object(record), self.namespace)

    # ------------------------------------------------------------------ the algorithm

    async def try_acquire_or_renew(self) -> bool:
        """One attempt (client-go ``tryAcquireOrRenew``); True when this candidate holds
        the lease afterwards."""
        now = self.clock.now()
        duration = int(self.lease_duration)
        record = LeaderElectionRecord(self.identity, duration, now, now, 0)
        # Fast path: the leader renews with the lease it last wrote.
        if self.is_leader() and self._lease_valid(now):
            old = self.observed_record
            assert old is not None
            record = LeaderElectionRecord(self.identity, duration, old.acquire_time, now, old.leader_transitions)
            try:
                await self._update(record)
                self._observe(record)
                return True
            except (StatusError, OSError) as exc:
                log.info("failed to update lease %s/%s optimistically: %s, falling back to slow path",
                         self.namespace, self.name, exc)
        # 1. obtain or create the record
        try:
            self._lease = await self.client.get("leases", self.name, self.namespace)
        except StatusError as exc:
            if exc.code != 404:
                log.error("error retrieving resource lock %s/%s: %s", self.namespace, self.name, exc)
                return False
            try:
                await self._create(record)
            except (StatusError, OSError) as cexc:
                log.error("error initially creating leader election record: %s", cexc)
                return False
            self._observe(record)
            return True
        except OSError as exc:
            log.error("error retrieving resource lock %s/%s: %s", self.namespace, self.name, exc)
            return False
        # 2. check the holder and the time
        old = LeaderElectionRecord.from_lease(self._lease)
        if old != self.observed_record:
            self._observe(old)
        if old.holder_identity and self._lease_valid(now) and not self.is_leader():
            log.debug("lock is held by %s and has not yet expired", old.holder_identity)
            return False
        # 3. take or renew it
        if self.is_leader():
            record = LeaderElectionRecord(self.identity, duration, old.acquire_time, now, old.leader_transitions)
        else:
            record = LeaderElectionRecord(self.identity, duration, now, now, old.leader_transitions + 1)
        try:
            await self._update(record)
        except (StatusError, OSError) as exc:
            log.error("failed to update lock %s/%s: %s", self.namespace, self.name, exc)
            return False
        self._observe(record)
        return True

    async def release(self) -> bool:
        """Give the lease up (holder cleared, duration 1 s) so a successor need not wait."""
        if not self.is_leader():
            return True
        now = self.clock.now()
        old = self.observed_record
        assert old is not None
        record = LeaderElectionRecord("", 1, now, now, old.leader_transitions)
        try:
            await self._update(record)
        except (StatusError, OSError) as exc:
            log.error("failed to release lock %s/%s: %s", self.namespace, self.name, exc)
            return False
        self._observe(record)
        return True

    async def acquire(self) -> None:
        """Try until this candidate holds the lease: every retryPeriod, jittered up to
        x2.2, as ``wait.JitterUntil(..., RetryPeriod, 1.2, true)``."""
        log.info("attempting to acquire leader lease %s/%s...", self.namespace, self.name)
        while not await self.try_acquire_or_renew():
            await self.clock.sleep(self.retry_period * (1 + self.rng() * self.jitter))
        log.info("successfully acquired lease %s/%s as %s", self.namespace, self.name, self.identity)
        self._record_event("became leader")

    async def renew(self) -> None:
        """Renew every retryPeriod; return when a renewal did not succeed within renewDeadline."""
        while True:
            deadline = self.clock.now() + self.renew_deadline
            renewed = False
            while not renewed and self.clock.now() < deadline:  # wait.PollImmediateUntil(RetryPeriod, ..., timeoutCtx)
                renewed = await self._before(self.try_acquire_or_renew(), deadline)
                if not renewed:
                    await self.clock.sleep(min(self.retry_period, deadline - self.clock.now()))
            if not renewed:
                log.info("failed to renew lease %s/%s: timed out waiting for the condition",
                         self.namespace, self.name)
                self._record_event("stopped leading")
                return
            await self.clock.sleep(self.retry_period)

    async def _before(self, attempt: Awaitable[bool], deadline: float) -> bool:
        """The attempt's result, or False when it is still running at ``deadline``."""
        task = asyncio.ensure_future(attempt)
        timer = asyncio.ensure_future(self.clock.sleep(deadline - self.clock.now()))
        try:
            done, _ = await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not task.done():
                task.cancel()
        if task in done and not task.cancelled() and task.exception() is None:
            return bool(task.result())
        return False

    async def run(self, on_started_leading: Callable[[], Awaitable[Any]],
                  on_stopped_leading: Callable[[], Awaitable[Any]]) -> None:
        """Acquire, call ``on_started_leading``, renew until the lease is lost, then call
        ``on_stopped_leading``. Cancelled while leading: stop leading and release."""
        await self.acquire()
        try:
            await on_started_leading()
            await self.renew()
            log.info("leader election lost: %s/%s", self.namespace, self.name)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await on_stopped_leading()
            if self.release_on_cancel:
                with contextlib.suppress(Exception):
                    await self.release()
            raise
        await on_stopped_leading()
