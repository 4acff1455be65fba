"""In-process transport: the ``Client`` verbs as direct calls into ``ApiService``.

Used by the embedded controllers and agent: the same admission and deletion path as
HTTP, without sockets or serialisation to the wire.

Copies, and why there are so few: the service gets its own copy of every body (it fills
in metadata, and callers may reuse what they send). Responses of the request verbs are
handed out as the service returns them: the store decodes a fresh object per read and
builds a fresh one per write, so they are already the caller's own. Watch events are
*shared*: the store decodes each change once for all its live watchers, and this client
yields that object without a copy (the informer owns it; informer handlers and cache
readers must not mutate it, as the informer contract says). A watch consumer that wants
to mutate an event's object must copy it first (``copy_obj``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import orjson

from jobplane.api import errors
from jobplane.api.pods import binding_target
from jobplane.api.rbac import Attributes
from jobplane.api.registry import ResourceInfo
from jobplane.apiserver.authz import check_async, name_from_field_selector
from jobplane.apiserver.identity import UserInfo, current_user
from jobplane.apiserver.service import ApiService
from jobplane.client.base import MERGE_PATCH, Client, Obj
from jobplane.client.targets import resource_info, update_target
from jobplane.storage.base import StorageError


def copy_obj(obj: Any) -> Any:
    """A deep copy of a JSON-able value (orjson round trip: several times faster than deepcopy)."""
    return orjson.loads(orjson.dumps(obj))


_copy = copy_obj


def _ns(info: ResourceInfo, namespace: str | None) -> str | None:
    return namespace if info.namespaced else None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _storage_failures_as_status(verb: Callable[_P, Awaitable[_R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """A store failure (a full disk, a lost database connection) reaches callers as the 500
    ``InternalError`` the HTTP transport gives, so every controller's ``StatusError`` handling
    (retries, lowered expectations) applies to it as well."""
    @functools.wraps(verb)
    async def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await verb(*args, **kwargs)
        except StorageError as exc:
            raise errors.internal_error(str(exc)) from exc

    return call


class InProcessClient(Client):
    """``user``: the identity this client acts as. Every call is then authorized as an HTTP
    request would be (so a controller's missing permission fails in tests too) and runs
    with that user as ``identity.current_user`` for admission. Without one, the caller is
    trusted (the server's own bootstrap, unit tests). ``field_manager``: the manager its
    writes are recorded under in managedFields (upstream names: ``kube-controller-manager``,
    ``kubelet``, ``kube-scheduler``)."""

    def __init__(self, service: ApiService, user: UserInfo | None = None, *,
                 field_manager: str = "jobplane") -> None:
        self.service = service
        self.user = user
        self.field_manager = field_manager

    def typed_after(self) -> int | None:
        """Revisions above this were type-checked when written (``ApiService.typed_after``)."""
        return self.service.typed_after

    def as_manager(self, field_manager: str) -> InProcessClient:
        """The same transport and user, writing as another field manager."""
        return InProcessClient(self.service, self.user, field_manager=field_manager)

    def as_user(self, user: UserInfo | None) -> InProcessClient:
        """Another client on the same service acting as ``user``."""
        return InProcessClient(self.service, user, field_manager=self.field_manager)

    async def _enter(self, verb: str, info: ResourceInfo, namespace: str | None, name: str | None = None,
                     subresource: str | None = None) -> Any:
        """Authorize the call and make ``self.user`` the current user; returns what ``_leave``
        needs. With an audit log on the service, the call is recorded (Metadata: the
        in-process transport has no request bodies to give)."""
        if self.user is None:
            return None
        attrs = Attributes(verb, True, namespace or "", info.group, info.plural, subresource or "", name or "")
        audit = getattr(self.service, "audit", None)
        authorizer = getattr(self.service, "authorizer", None)
        if authorizer is not None:
            try:
                await check_async(authorizer, self.user, attrs)
            except errors.StatusError as exc:
                if audit is not None:
                    record = audit.begin(self.user, attrs, method=verb, uri=_uri(info, attrs), source_ip=None,
                                         user_agent=self.field_manager, api_version=info.version)
                    if record is not None:
                        audit.finish(record, exc.code, decision="forbid")
                raise
        record = None
        if audit is not None:
            record = audit.begin(self.user, attrs, method=verb, uri=_uri(info, attrs), source_ip=None,
                                 user_agent=self.field_manager, api_version=info.version)
        return current_user.set(self.user), record, verb

    def _leave(self, token: Any) -> None:
        if token is None:
            return
        reset, record, verb = token
        current_user.reset(reset)
        if record is not None:
            failure = sys.exc_info()[1]  # the call's exception, when _leave runs in its finally
            code = (failure.code if isinstance(failure, errors.StatusError) else 500) if failure is not None else \
                (201 if verb == "create" else 200)
            self.service.audit.finish(record, code, decision="allow")

    @_storage_failures_as_status
    async def get(self, resource: str, name: str, namespace: str | None = None,
                  subresource: str | None = None) -> Obj:
        info = resource_info(resource)
        if subresource not in (None, "", "status"):
            raise errors.method_not_supported(info.plural, info.group, "get")
        token = await self._enter("get", info, _ns(info, namespace), name, subresource)
        try:
            return await self.service.get(info, _ns(info, namespace), name)
        finally:
            self._leave(token)

    @_storage_failures_as_status
    async def list(self, resource: str, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None) -> Obj:
        info = resource_info(resource)
        token = await self._enter("list", info, _ns(info, namespace), name_from_field_selector(field_selector))
        try:
            return await self.service.list(info, _ns(info, namespace), label_selector=label_selector,
                                           field_selector=field_selector, limit=limit, continue_=continue_)
        finally:
            self._leave(token)

    @_storage_failures_as_status
    async def create(self, resource: str, body: Obj, namespace: str | None = None,
                     subresource: str | None = None) -> Obj:
        info = resource_info(resource)
        if namespace is None and info.namespaced:
            namespace = (body.get("metadata") or {}).get("namespace")
        if subresource:
            if subresource not in ("binding", "eviction", "token") or subresource not in info.subresources:
                raise errors.method_not_supported(info.plural, info.group, "create")
            name = (body.get("metadata") or {}).get("name") or ""
            token = await self._enter("create", info, namespace, name, subresource)
            try:
                if subresource == "eviction":
                    return await self.service.evict(namespace or "", name, _copy(body))
                if subresource == "token":
                    return await self.service.token_request(namespace or "", name, _copy(body))
                return await self.service.bind(namespace or "", name, binding_target(name, body))
            finally:
                self._leave(token)
        token = await self._enter("create", info, _ns(info, namespace))
        try:
            return await self.service.create(info, _ns(info, namespace), _copy(body),
                                             field_manager=self.field_manager)
        finally:
            self._leave(token)

    @_storage_failures_as_status
    async def update(self, resource: str, body: Obj, namespace: str | None = None,
                     subresource: str | None = None) -> Obj:
        info, namespace, name = update_target(resource, body, namespace)
        token = await self._enter("update", info, namespace, name, subresource)
        try:
            return await self.service.update(info, namespace, name, _copy(body),
                                             subresource or None, field_manager=self.field_manager)
        finally:
            self._leave(token)

    @_storage_failures_as_status
    async def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None,
                    patch_type: str = MERGE_PATCH, subresource: str | None = None) -> Obj:
        info = resource_info(resource)
        token = await self._enter("patch", info, _ns(info, namespace), name, subresource)
        try:
            return await self.service.patch(info, _ns(info, namespace), name, _copy(patch), patch_type,
                                            subresource or None, field_manager=self.field_manager)
        finally:
            self._leave(token)

    @_storage_failures_as_status
    async def delete(self, resource: str, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None,
                     preconditions: Obj | None = None) -> Obj:
        info = resource_info(resource)
        token = await self._enter("delete", info, _ns(info, namespace), name)
        try:
            return await self.service.delete(info, _ns(info, namespace), name,
                                             propagation_policy=propagation_policy,
                                             grace_period_seconds=grace_period_seconds,
                                             preconditions=preconditions)
        finally:
            self._leave(token)

    @_storage_failures_as_status
    async def delete_collection(self, resource: str, namespace: str | None = None, *,
                                label_selector: str | None = None,
                                field_selector: str | None = None,
                                propagation_policy: str | None = None) -> Obj:
        info = resource_info(resource)
        token = await self._enter("deletecollection", info, _ns(info, namespace))
        try:
            return await self.service.delete_collection(info, _ns(info, namespace),
                                                        label_selector=label_selector,
                                                        field_selector=field_selector,
                                                        propagation_policy=propagation_policy)
        finally:
            self._leave(token)

    async def watch(self, resource: str, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = False) -> AsyncGenerator[tuple[str, Obj], None]:
        """Events from the service; ``timeout_seconds`` ends the stream on the service's clock."""
        info = resource_info(resource)
        self._leave(await self._enter("watch", info, _ns(info, namespace), name_from_field_selector(field_selector)))
        stream = self.service.watch(info, _ns(info, namespace), resource_version=resource_version,
                                    label_selector=label_selector, field_selector=field_selector)
        try:
            if not timeout_seconds:
                async for item in stream:
                    yield item
                return
            async for item in _until(stream, self.service.clock.sleep(timeout_seconds)):
                yield item
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()


def _uri(info: ResourceInfo, a: Attributes) -> str:
    path = info.object_path(a.namespace or None, a.name) if a.name else info.collection_path(a.namespace or None)
    return f"{path}/{a.subresource}" if a.subresource else path


async def _until(stream: AsyncIterator[Any], deadline: Any) -> AsyncGenerator[Any, None]:
    """Items of ``stream`` until the ``deadline`` coroutine finishes."""
    timer = asyncio.ensure_future(deadline)
    try:
        while True:
            nxt = asyncio.ensure_future(stream.__anext__())
            done, _ = await asyncio.wait({nxt, timer}, return_when=asyncio.FIRST_COMPLETED)
            if nxt not in done:
                nxt.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await nxt
                return
            if nxt.exception() is not None and isinstance(nxt.exception(), StopAsyncIteration):
                return
            yield nxt.result()
    finally:
        timer.cancel()
