"""The Job controller's view of its Jobs: the informer's copy, or this controller's own
newer write of it.

Why a module of its own: a status write reaches the informer a moment later, and a sync
that ran in between would start from a stale status. The event handlers (resolving a
pod's controllerRef) and the sync both read jobs through this one view.
"""

from __future__ import annotations

from typing import Any

from jobplane.api.selectors import from_label_selector_dict
from jobplane.client.informer import Informer
from jobplane.controllers.job import jobspec
from jobplane.controllers.job.pods import meta

Obj = dict[str, Any]


def queue_key(obj: Obj) -> str:
    """The ``namespace/name`` work-queue key of a job or pod."""
    m = obj.get("metadata") or {}
    return f"{m.get('namespace')}/{m.get('name')}"


def _rv(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


class JobView:
    """Jobs from the informer, overlaid with the last status written per key until the
    informer has caught up with it."""

    def __init__(self, jobs: Informer) -> None:
        self.jobs = jobs
        self._written: dict[str, Obj] = {}

    def get(self, key: str) -> Obj | None:
        """The informer's job, or this controller's own newer write of it."""
        cached = self.jobs.get_key(key)
        written = self._written.get(key)
        if written is None:
            return cached
        if cached is None or cached["metadata"].get("uid") != written["metadata"].get("uid") \
                or _rv(cached) >= _rv(written):
            del self._written[key]
            return cached
        return written

    def remember(self, key: str, written: Obj) -> None:
        """Record a job this controller just wrote."""
        self._written[key] = written

    def forget(self, key: str) -> None:
        self._written.pop(key, None)

    def resolve_controller_ref(self, namespace: str, ref: Obj) -> Obj | None:
        """The Job a controllerRef names, if it still exists with that UID."""
        if ref.get("kind") != "Job":
            return None
        job = self.get(f"{namespace}/{ref.get('name')}")
        if job is None or job["metadata"].get("uid") != ref.get("uid"):
            return None
        return job

    def matching(self, pod: Obj) -> list[Obj]:
        """Jobs in the pod's namespace whose selector matches its labels."""
        labels = meta(pod).get("labels") or {}
        if not labels:
            return []
        out = []
        for job in self.jobs.list(meta(pod).get("namespace")):
            if from_label_selector_dict(jobspec.spec(job).get("selector")).matches(labels):
                out.append(job)
        return out
