"""The ServiceAccount admission plugin for new pods (``plugin/pkg/admission/serviceaccount``):
the API credentials mounted into every container (``api/serviceaccounts.py``).

Upstream refuses a pod whose ServiceAccount does not exist yet; here the pod is admitted and
mounted as if the account allowed it, and its node keeps the pod in ContainerCreating with
a FailedMount event until the token can be issued (the ``default`` account of a new
namespace is made a moment after the namespace)."""

from __future__ import annotations

from typing import Any

from jobplane.api import meta
from jobplane.api.registry import PODS, SERVICEACCOUNTS, ResourceInfo
from jobplane.api.serviceaccounts import MIRROR_ANNOTATION, VOLUME_PREFIX, mount_api_access, should_automount
from jobplane.storage.base import KeyNotFound, Store

Obj = dict[str, Any]


class ServiceAccountAdmission:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def admit(self, op: str, info: ResourceInfo, new: Obj | None, old: Obj | None,
                    subresource: str | None = None) -> None:
        if op != "CREATE" or info is not PODS or new is None or subresource:
            return
        md = new.get("metadata") or {}
        if MIRROR_ANNOTATION in (md.get("annotations") or {}):
            return
        spec = new.setdefault("spec", {})
        name = spec.get("serviceAccountName") or "default"
        try:
            account: Obj | None = await self.store.get(SERVICEACCOUNTS.storage_key(md.get("namespace"), name))
        except KeyNotFound:
            account = None
        if should_automount(new, account):
            mount_api_access(new, meta.generate_name(VOLUME_PREFIX))
