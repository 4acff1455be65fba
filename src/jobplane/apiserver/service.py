"""ApiService: the verbs on every kind, independent of HTTP.

Both the HTTP handlers (``apiserver.http``) and the in-process client transport
(``client.inproc``) call this class, so admission, deletion semantics and watch
behave the same for kubectl and for the embedded controllers and agent.

Contract (to be implemented; signatures are fixed):

create(info, namespace, body)
  1. 404 if the namespace does not exist (namespaced kinds); 403 Forbidden
     ``unable to create new content in namespace X because it is being terminated``
     if it has a deletionTimestamp.
  2. Server-owned metadata: namespace from the URL (400 if the body names another),
     name or ``generateName`` (+5 chars, retried on collision), ``uid``,
     ``creationTimestamp``, ``generation: 1``; resourceVersion, deletionTimestamp and
     deletionGracePeriodSeconds dropped. Missing name and generateName -> 422
     ``metadata.name: Required value: name or generateName is required``.
  3. ``api.admission.admit_create`` (defaults, strategy, validation; raises 422).
  4. ``store.create``; KeyExists -> 409 AlreadyExists.
  Returns the stored object with ``kind``/``apiVersion`` set.

get / list / watch
  Objects and list items always carry ``kind`` and ``apiVersion``. ``list`` returns
  ``{"kind": "<Kind>List", "apiVersion", "metadata": {"resourceVersion", "continue"?,
  "remainingItemCount"?}, "items"}``. ``watch`` yields ``(type, object)``: with
  ``resource_version`` None/"" /"0" it first yields ADDED for every current object
  (then live changes), otherwise replays history after that revision (410 Expired
  raised as StatusError when compacted). Label and field selectors are applied to
  both (a MODIFIED that makes an object leave the selection is sent as DELETED, one
  that makes it enter as ADDED, as the apiserver's watch cache does).

update(info, namespace, name, body, subresource=None)
  PUT semantics; body.metadata.resourceVersion, when set, must match (409 Conflict
  with ``errors.STALE_OBJECT``). Immutable metadata (uid, creationTimestamp, name,
  namespace, deletionTimestamp) is kept from the stored object. subresource
  "status" -> ``admit_status_update`` else ``admit_update``. If the update leaves an
  object with a deletionTimestamp and no finalizers, it is removed from the store
  (DELETED event) — this is how finalizer removal completes a deletion.

patch(info, namespace, name, patch, patch_type, subresource=None)
  ``api.patch.apply_patch`` on the current object, then as update (retrying on an
  internal conflict when the patch carries no resourceVersion).

delete(info, namespace, name, propagation_policy=None, grace_period_seconds=None, preconditions=None)
  * Default propagation: Orphan for jobs (batch/v1 legacy default) and Background
    for everything else; ``Orphan`` adds the ``orphan`` finalizer, ``Foreground`` the
    ``foregroundDeletion`` finalizer (the garbage collector then finishes the job).
  * Pods: graceful. A pod bound to a node (spec.nodeName) that is not yet
    Succeeded/Failed gets deletionTimestamp = now + grace and
    deletionGracePeriodSeconds (grace = option, else spec.terminationGracePeriodSeconds,
    else 30) and stays until its agent deletes it with grace 0. Unbound or terminal
    pods, or grace 0, go at once (subject to finalizers).
  * Any object with finalizers: set deletionTimestamp (once), keep it; it is removed
    when the last finalizer goes (see update).
  * Namespaces: phase Terminating + deletionTimestamp; the namespace controller
    empties it and then removes it. ``default``, ``kube-system``,
    ``kube-node-lease`` and ``kube-public`` cannot be deleted (403 Forbidden, as upstream).
  Returns the object as last stored (or, when it is gone, the last state).

delete_collection(info, namespace, label_selector, field_selector, propagation_policy)
  delete() for each match; returns the list of what was deleted.

Events created through the service are ordinary objects (core/v1 Event); reading
``events.k8s.io/v1`` converts on the fly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from jobplane.api.registry import ResourceInfo
from jobplane.clock import Clock
from jobplane.storage.base import Store

Obj = dict[str, Any]


class ApiService:
    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or Clock()

    async def ensure_default_namespaces(self) -> None:
        """Create ``default``, ``kube-system``, ``kube-node-lease`` and ``kube-public`` if absent."""
        raise NotImplementedError

    async def create(self, info: ResourceInfo, namespace: str | None, body: Obj) -> Obj:
        raise NotImplementedError

    async def get(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        raise NotImplementedError

    async def list(self, info: ResourceInfo, namespace: str | None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None,
                   continue_: str | None = None) -> Obj:
        raise NotImplementedError

    def watch(self, info: ResourceInfo, namespace: str | None, *, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None
              ) -> AsyncIterator[tuple[str, Obj]]:
        raise NotImplementedError

    async def update(self, info: ResourceInfo, namespace: str | None, name: str, body: Obj,
                     subresource: str | None = None) -> Obj:
        raise NotImplementedError

    async def patch(self, info: ResourceInfo, namespace: str | None, name: str, patch: Any,
                    patch_type: str, subresource: str | None = None) -> Obj:
        raise NotImplementedError

    async def delete(self, info: ResourceInfo, namespace: str | None, name: str, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: Obj | None = None) -> Obj:
        raise NotImplementedError

    async def delete_collection(self, info: ResourceInfo, namespace: str | None, *,
                                label_selector: str | None = None, field_selector: str | None = None,
                                propagation_policy: str | None = None) -> Obj:
        raise NotImplementedError
