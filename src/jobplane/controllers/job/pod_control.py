"""Pod writes of the Job controller (upstream controller.PodControlInterface plus the
batching around it in job_controller.go).

Why a module of its own: every API call the controller makes on a pod lives here — create
in slow-start batches, delete, claim patches, tracking-finalizer removal — together with
the events they record and the expectation bookkeeping a failed call must undo. The sync
logic decides *what* to do; this decides nothing and only does it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jobplane.api.errors import StatusError
from jobplane.api.patch import JSON_PATCH
from jobplane.client.base import Client
from jobplane.client.events import EventRecorder
from jobplane.controllers.job import status as st
from jobplane.controllers.job.pods import (
    Expectations,
    FinalizerExpectations,
    is_ready,
    meta,
    pod_uid,
    remove_finalizer_patch,
)
from jobplane.metrics import JobMetrics

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SLOW_START_INITIAL_BATCH = 1
FINALIZER_PATCH_TRIES = 5  # re-reads of a pod whose finalizer list moved under a patch


def _namespace_terminating(exc: StatusError) -> bool:
    causes = ((exc.details or {}).get("causes") or [])
    if any(c.get("reason") == "NamespaceTerminating" for c in causes):
        return True
    return exc.code == 403 and "because it is being terminated" in exc.message


def _delete_outcome(pods: list[Obj], results: list[Exception | None]) -> tuple[int, int, Exception | None]:
    """(ready pods deleted, pods deleted, first error) of a batch of deletions."""
    errors = [r for r in results if r is not None]
    ready = sum(1 for p, r in zip(pods, results, strict=True) if r is None and is_ready(p))
    return ready, len(pods) - len(errors), (errors[0] if errors else None)


class PodControl:
    """Creates, deletes and patches one Job's pods, recording events on the Job."""

    def __init__(self, client: Client, recorder: EventRecorder, expectations: Expectations,
                 finalizer_expectations: FinalizerExpectations, metrics: JobMetrics | None = None) -> None:
        self.metrics = metrics
        self.client = client
        self.recorder = recorder
        self.expectations = expectations
        self.finalizer_expectations = finalizer_expectations

    # ------------------------------------------------------------------ patches
    async def patch_pod(self, pod: Obj, patch: list[Obj] | None) -> Obj | None:
        """Apply a claim (adopt / release) JSON patch; None when skipped or gone."""
        if not patch:
            return None
        m = meta(pod)
        try:
            return await self.client.patch("pods", m["name"], patch, m.get("namespace"), patch_type=JSON_PATCH)
        except StatusError as exc:
            if exc.code in (404, 409, 422):
                log.debug("pod %s/%s: claim patch skipped: %s", m.get("namespace"), m["name"], exc)
                return None
            raise

    async def remove_pod_finalizer(self, pod: Obj) -> None:
        """JSON patch guarded by ``test``; when the cached finalizer list has moved, read the
        pod again and patch against what it says. The read is a name-selected LIST, not a GET
        (nor a PUT after it): the job controller's role, as upstream's, grants list, watch,
        create, delete and patch on pods, and nothing more."""
        m = meta(pod)
        namespace, name, uid = m.get("namespace"), m["name"], m.get("uid")
        for _ in range(FINALIZER_PATCH_TRIES):
            patch = remove_finalizer_patch(pod)
            if patch is None:
                return
            try:
                await self.client.patch("pods", name, patch, namespace, patch_type=JSON_PATCH)
                return
            except StatusError as exc:
                if exc.code == 404:
                    return
                if exc.code not in (409, 422):
                    raise
            found = await self.client.list("pods", namespace, field_selector=f"metadata.name={name}")
            fresh = next((p for p in found.get("items") or () if meta(p).get("uid") == uid), None)
            if fresh is None:
                return  # gone, or another pod of that name now: nothing of ours to release
            pod = fresh
        raise StatusError(409, "Conflict", f"pods \"{name}\": the finalizer list kept moving")

    async def remove_finalizers(self, key: str, pods: list[Obj]) -> tuple[set[str], Exception | None]:
        """Strip the tracking finalizer from ``pods``: (UIDs done, first error)."""
        if not pods:
            return set(), None
        uids = [pod_uid(p) for p in pods]
        self.finalizer_expectations.expect_removal(key, uids)

        async def one(pod: Obj) -> Exception | None:
            try:
                await self.remove_pod_finalizer(pod)
            except StatusError as exc:
                self.finalizer_expectations.observed(key, pod_uid(pod))
                return exc
            return None

        results = await asyncio.gather(*(one(p) for p in pods))
        removed = {u for u, r in zip(uids, results, strict=True) if r is None}
        errors = [r for r in results if r is not None]
        return removed, (errors[0] if errors else None)

    # ------------------------------------------------------------------ creates
    async def create_pods(self, key: str, job: Obj, bodies: list[Obj]) -> tuple[int, Exception | None]:
        """Create ``bodies`` in slow-start batches (1, 2, 4, ...), stopping at the first
        batch with a failure: (pods created, first error). Expectations for the pods that
        were never created are lowered again."""
        diff = len(bodies)
        self.expectations.expect_creations(key, diff)
        ns = job["metadata"].get("namespace")
        errors: list[Exception] = []
        created = diff
        pos = 0
        batch = min(diff, SLOW_START_INITIAL_BATCH)
        while pos < diff:
            results = await asyncio.gather(*(self._create_pod(job, ns, b) for b in bodies[pos:pos + batch]))
            pos += batch
            failed = [r for r in results if r is not None]
            for err in failed:
                self.expectations.creation_observed(key)
                created -= 1
                errors.append(err)
            if failed and pos < diff:
                skipped = diff - pos
                created -= skipped
                for _ in range(skipped):
                    self.expectations.creation_observed(key)
                break
            batch = min(2 * batch, diff - pos)
        return created, (errors[0] if errors else None)

    async def _create_pod(self, job: Obj, ns: str | None, body: Obj) -> Exception | None:
        try:
            created = await self.client.create("pods", body, ns)
        except StatusError as exc:
            if _namespace_terminating(exc):
                return None
            self.recorder.event(job, st.WARNING, st.EV_FAILED_CREATE, f"Error creating: {exc}")
            self._record_creation(job, "failed")
            return exc
        self._record_creation(job, "succeeded")
        self.recorder.event(job, st.NORMAL, st.EV_SUCCESSFUL_CREATE, f"Created pod: {created['metadata']['name']}")
        return None

    def _record_creation(self, job: Obj, status: str) -> None:
        """job_controller_job_pods_creation_total; the reason follows the Job's
        podReplacementPolicy as upstream labels it."""
        if self.metrics is None:
            return
        failed = (job.get("status") or {}).get("failed") or 0
        if not failed:
            reason = "new"
        elif (job.get("spec") or {}).get("podReplacementPolicy") == "Failed":
            reason = "recreate_failed"
        else:
            reason = "recreate_terminating_or_failed"
        self.metrics.pods_creation(reason, status).inc()

    # ------------------------------------------------------------------ deletes
    async def _delete_pod(self, job: Obj, pod: Obj) -> Exception | None:
        """DELETE; None when done or already gone."""
        m = meta(pod)
        try:
            await self.client.delete("pods", m["name"], m.get("namespace"))
        except StatusError as exc:
            if exc.code == 404:
                return None
            self.recorder.event(job, st.WARNING, st.EV_FAILED_DELETE, f"Error deleting: {exc}")
            return exc
        self.recorder.event(job, st.NORMAL, st.EV_SUCCESSFUL_DELETE, f"Deleted pod: {m['name']}")
        return None

    async def delete_job_pods(self, job: Obj, key: str, pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """Strip the finalizer (so the pod is never counted) and delete:
        (ready pods deleted, pods deleted, first error)."""
        self.expectations.expect_deletions(key, len(pods))

        async def one(pod: Obj) -> Exception | None:
            try:
                await self.remove_pod_finalizer(pod)
            except StatusError as exc:
                self.expectations.deletion_observed(key)
                return None if exc.code == 404 else exc
            err = await self._delete_pod(job, pod)
            if err is not None:
                self.expectations.deletion_observed(key)
            return err

        return _delete_outcome(pods, await asyncio.gather(*(one(p) for p in pods)))

    async def delete_active_pods(self, job: Obj, pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """Finishing job: plain DELETE, finalizers kept (the pods get counted)."""
        return _delete_outcome(pods, await asyncio.gather(*(self._delete_pod(job, p) for p in pods)))
