"""Which pods belong to a Job (upstream PodControllerRefManager.ClaimPods).

Why a module of its own: ownership is decided in one place — the pod informer indexes
(pods by controller UID, orphans by namespace) and the claim that adopts matching orphans
and releases owned pods that stopped matching the selector.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import controller_ref
from jobplane.api.pods import is_terminal
from jobplane.api.selectors import from_label_selector_dict
from jobplane.client.base import Client
from jobplane.client.informer import Informer
from jobplane.controllers.job import jobspec
from jobplane.controllers.job.pod_control import PodControl
from jobplane.controllers.job.pods import (
    adopt_patch,
    controller_uid,
    has_tracking_finalizer,
    meta,
    release_patch,
)

Obj = dict[str, Any]

IDX_BY_OWNER = "job-controller/owner-uid"
IDX_ORPHANS = "job-controller/orphans"


def owner_index(pod: Obj) -> list[str]:
    """Pods that still matter to their job: not terminal, or still carrying the finalizer."""
    uid = controller_uid(pod)
    if uid is None:
        return []
    if is_terminal(pod) and not has_tracking_finalizer(pod):
        return []
    return [uid]


def orphan_index(pod: Obj) -> list[str]:
    if controller_ref(pod) is not None:
        return []
    return [meta(pod).get("namespace") or ""]


def add_indexes(pods: Informer) -> None:
    """Register the indexes ``claim_pods`` reads on the pod informer."""
    pods.add_index(IDX_BY_OWNER, owner_index)
    pods.add_index(IDX_ORPHANS, orphan_index)


async def _can_adopt(client: Client, job: Obj) -> bool:
    """Adopt only for a Job that, read fresh, still exists with this UID and is not deleting."""
    m = job["metadata"]
    try:
        fresh = await client.get("jobs", m["name"], m.get("namespace"))
    except StatusError as exc:
        if exc.code == 404:
            return False
        raise
    return fresh["metadata"].get("uid") == m["uid"] and not fresh["metadata"].get("deletionTimestamp")


async def claim_pods(job: Obj, pods: Informer, client: Client, pod_control: PodControl) -> list[Obj]:
    """Owned pods that still match the selector, plus matching orphans adopted now;
    owned pods that stopped matching are released (ClaimPods)."""
    m = job["metadata"]
    uid, ns = m["uid"], m.get("namespace")
    selector = from_label_selector_dict(jobspec.spec(job).get("selector"))
    deleting = bool(m.get("deletionTimestamp"))
    result: list[Obj] = []
    release: list[Obj] = []
    for pod in pods.by_index(IDX_BY_OWNER, uid):
        if selector.matches(meta(pod).get("labels") or {}):
            result.append(pod)
        elif not deleting:
            release.append(pod)
    adopt: list[Obj] = []
    if not deleting:
        adopt = [p for p in pods.by_index(IDX_ORPHANS, ns or "")
                 if not meta(p).get("deletionTimestamp")
                 and selector.matches(meta(p).get("labels") or {})]
    if adopt and await _can_adopt(client, job):
        results = await asyncio.gather(*(pod_control.patch_pod(p, adopt_patch(p, job)) for p in adopt))
        result.extend(r for r in results if r is not None)
    if release:
        await asyncio.gather(*(pod_control.patch_pod(p, release_patch(p, uid)) for p in release))
    return result
