"""The one client every internal component uses (controllers, agent, CLI).

Objects are plain dicts. ``resource`` is anything ``api.registry.resolve``
accepts (``"jobs"``, ``"pods"``, ``"jobs.batch"``, ``"cj"``). Errors are raised
as ``api.errors.StatusError`` by every transport, with the server's code, reason
and message, so callers handle 404/409 the same way whether they talk HTTP or
in-process.

Transports:
* ``client.http.HttpClient`` — HTTPS + bearer token (agent on another machine, CLI).
* ``client.inproc.InProcessClient`` — calls ``apiserver.service.ApiService``
  directly (embedded controllers and agent): same admission path, no sockets.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from typing import Any

Obj = dict[str, Any]

# patch_type values
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class Client(abc.ABC):
    @abc.abstractmethod
    async def get(self, resource: str, name: str, namespace: str | None = None,
                  subresource: str | None = None) -> Obj: ...

    @abc.abstractmethod
    async def list(self, resource: str, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None) -> Obj:
        """A ``<Kind>List`` dict: ``items`` (each with kind/apiVersion filled in) and
        ``metadata.resourceVersion`` / ``metadata.continue``."""

    @abc.abstractmethod
    async def create(self, resource: str, body: Obj, namespace: str | None = None,
                     subresource: str | None = None) -> Obj:
        """POST; with ``subresource`` (``pods/binding``, ``pods/eviction``) it posts to the object named
        by ``body.metadata.name``."""

    @abc.abstractmethod
    async def update(self, resource: str, body: Obj, namespace: str | None = None,
                     subresource: str | None = None) -> Obj:
        """PUT; ``body.metadata.resourceVersion`` guards it (409 Conflict when stale)."""

    @abc.abstractmethod
    async def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None,
                    patch_type: str = MERGE_PATCH, subresource: str | None = None) -> Obj: ...

    @abc.abstractmethod
    async def delete(self, resource: str, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None,
                     preconditions: Obj | None = None) -> Obj:
        """Returns the object (still present with deletionTimestamp when finalizers
        or a grace period hold it) or a Status of success."""

    @abc.abstractmethod
    async def delete_collection(self, resource: str, namespace: str | None = None, *,
                                label_selector: str | None = None,
                                field_selector: str | None = None,
                                propagation_policy: str | None = None) -> Obj: ...

    @abc.abstractmethod
    def watch(self, resource: str, namespace: str | None = None, *,
              resource_version: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, timeout_seconds: int | None = None,
              allow_bookmarks: bool = False) -> AsyncGenerator[tuple[str, Obj], None]:
        """Async iterator of ``(type, object)``; type is ADDED/MODIFIED/DELETED/BOOKMARK.
        A 410 (history compacted) is raised as ``StatusError`` with code 410."""

    async def bind(self, name: str, node: str, namespace: str) -> Obj:
        """Bind pod ``name`` to ``node`` through ``pods/binding`` (nodeName and PodScheduled=True
        in one write; 409 Conflict when it is already bound). Returns a Status."""
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        return await self.create("pods", body, namespace, subresource="binding")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
