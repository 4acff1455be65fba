"""ApiService: the verbs on every kind, independent of HTTP.

Both the HTTP handlers (``apiserver.http``) and the in-process client transport
(``client.inproc``) call this class, so admission, deletion semantics and watch
behave the same for kubectl and for the embedded controllers and agent.

What each verb does:

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

import copy
import ipaddress
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import orjson

from jobplane.api import admission, decode, errors, fieldmanager, managedfields, meta, pods
from jobplane.api.patch import APPLY_PATCH, apply_patch
from jobplane.api.patch import touched as patch_touched
from jobplane.api.query import INITIAL_EVENTS_END
from jobplane.api.registry import (
    CERTIFICATESIGNINGREQUESTS,
    ENDPOINTSLICES,
    EVENTS_V1,
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    SECRETS,
    SERVICES,
    STORAGECLASSES,
    ResourceInfo,
)
from jobplane.api.selectors import object_predicate, parse_field_selector, parse_label_selector
from jobplane.apiserver import deletion, runtimeclass
from jobplane.apiserver.allocation import (
    DEFAULT_SERVICE_CIDR,
    ClusterIPAllocator,
    allocate_service_ips,
    default_storage_class,
)
from jobplane.apiserver.events_v1 import to_events_v1
from jobplane.apiserver.identity import UserInfo, current_user, service_account_user
from jobplane.apiserver.satokens import ServiceAccountTokens
from jobplane.clock import Clock
from jobplane.storage.base import Expired, KeyExists, KeyNotFound, RevisionConflict, Store
from jobplane.storage.continuation import encode_continue

Obj = dict[str, Any]

LOCAL_PATH_CLASS = "local-path"
LOCAL_PATH_PROVISIONER = "jobplane.io/local-path"
# Kinds whose spec changes bump metadata.generation (others keep what they were given).
_GENERATION_KINDS = {"Job", "CronJob"}
_GENERATE_NAME_RETRIES = 8
# How long a watch waits for a resourceVersion the store has not reached (upstream's
# watch cache blockTimeout), checking every 100 ms.
_FRESH_WAIT_SECONDS = 3.0
_FRESH_POLL_SECONDS = 0.1

# Admission warnings of the current request: the HTTP layer sets a list, the service fills it,
# and the handler sends each as a ``Warning: 299`` header. Per task, so concurrent requests
# don't mix.
warnings_var: ContextVar[list[str] | None] = ContextVar("jobplane_warnings", default=None)


def _record_warnings(warnings: list[str] | None) -> None:
    sink = warnings_var.get()
    if sink is not None and warnings:
        sink.extend(warnings)


def decode_body(info: ResourceInfo, body: Obj) -> None:
    """Typed decoding of a create/update body: 400 as upstream when a field has the wrong type."""
    try:
        decode.check(info.group, info.version, info.kind, body)
    except decode.DecodeError as exc:
        raise decode.body_error(info.kind, info.version, exc) from None


def _with_type(info: ResourceInfo, obj: Obj) -> Obj:
    if info is EVENTS_V1:
        return to_events_v1(obj)
    obj["kind"] = info.kind
    obj["apiVersion"] = info.api_version
    return obj


CONFLICT_RETRIES = 16  # read-modify-write tries before 409 Conflict (the object keeps changing)
T = TypeVar("T")


class WroteInBetween(Exception):
    """Raised inside a ``retry_on_conflict`` attempt: someone wrote the object since it was
    read; read it again and redo the attempt."""


async def retry_on_conflict(info: ResourceInfo, name: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` until it does not raise ``WroteInBetween`` (or a store's
    ``RevisionConflict``), at most ``CONFLICT_RETRIES`` times; then 409 Conflict."""
    for _ in range(CONFLICT_RETRIES):
        try:
            return await attempt()
        except (WroteInBetween, RevisionConflict):
            continue
    raise errors.conflict(info.plural, info.group, name, errors.STALE_OBJECT)


def check_apply_config(info: ResourceInfo, name: str, config: Any, field_manager: str | None) -> None:
    """An apply body must be a whole object of the URL's kind (400 as upstream) and name a
    field manager (422 on PatchOptions)."""
    if not field_manager:
        raise errors.invalid_object("PatchOptions", "meta.k8s.io", "", [
            errors.required("fieldManager", "is required for apply patch")])
    if not isinstance(config, dict):
        raise errors.bad_request("error decoding YAML: the apply patch must be an object")
    if not config.get("apiVersion") or not config.get("kind"):
        raise errors.bad_request("apiVersion and kind must be set in an apply patch")
    if config["apiVersion"] != info.api_version or config["kind"] != info.kind:
        raise errors.bad_request(f"the API version in the data ({config['apiVersion']}) or kind "
                                 f"({config['kind']}) does not match the URL's ({info.api_version}, {info.kind})")
    md = config.get("metadata")
    if not isinstance(md, dict):
        md = config["metadata"] = {}
    if md.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    if md.get("name") and md["name"] != name:
        raise errors.bad_request(f"the name of the object ({md['name']}) does not match the name on the URL ({name})")
    md["name"] = name


def _check_preconditions(info: ResourceInfo, name: str, md: Obj, preconditions: Obj | None) -> None:
    """409 as upstream's ``Preconditions.Check`` when a UID / resourceVersion precondition fails."""
    if not preconditions:
        return
    if preconditions.get("uid") and preconditions["uid"] != md.get("uid"):
        raise errors.conflict(info.plural, info.group, name,
                              f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                              f"UID in object meta: {md.get('uid')}")
    if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != md.get("resourceVersion"):
        raise errors.conflict(info.plural, info.group, name,
                              "Precondition failed: ResourceVersion in precondition: "
                              f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                              f"{md.get('resourceVersion')}")


def _requester(csr: Obj, user: UserInfo | None) -> None:
    """A CertificateSigningRequest records who asked (``spec.username/uid/groups/extra``),
    never what the body claims; a trusted in-process caller without identity keeps its own."""
    spec = csr.get("spec")
    if not isinstance(spec, dict) or user is None:
        return
    for key in ("username", "uid", "groups", "extra"):
        spec.pop(key, None)
    spec.update(user.to_status())  # the same fields, in the same shape


class ApiService:
    def __init__(self, store: Store, clock: Clock | None = None, *, service_cidr: str = DEFAULT_SERVICE_CIDR) -> None:
        self.store = store
        self.clock = clock or Clock()
        # Every revision above this one was written through this service, which type-checks
        # each create, update and patch before storing it (the only other writes change
        # fields the server sets): informers in this process need not check those again.
        # None when other processes write to the store too (PostgreSQL).
        self.typed_after: int | None = None if getattr(store, "shared", False) else store.current_revision()
        self.cluster_ips = ClusterIPAllocator(store, service_cidr)
        self.tokens: ServiceAccountTokens | None = None  # set by the server from its PKI
        # Set by the server: the authorizer chain (``apiserver.authz``; None: no checks, as
        # for a trusted embedded caller), the answers to the review kinds
        # (``apiserver.reviews``), and admission plugins that judge a write by who makes it
        # (``async admit(op, info, new, old)``: RBAC escalation, node restriction).
        self.authorizer: Any = None
        self.audit: Any = None  # apiserver.audit.AuditLog, for in-process callers
        self.reviews: Any = None
        self.admission_plugins: list[Any] = []

    async def _admit_plugins(self, op: str, info: ResourceInfo, new: Obj | None, old: Obj | None,
                             subresource: str | None = None) -> None:
        for plugin in self.admission_plugins:
            await plugin.admit(op, info, new, old, subresource)

    # ------------------------------------------------------------------ helpers

    def _now(self) -> str:
        return meta.rfc3339(self.clock.now())

    async def _write(self, info: ResourceInfo, key: str, new: Obj, old: Obj, name: str) -> Obj:
        """Store ``new`` over ``old`` guarded by old's resourceVersion (no admission)."""
        try:
            return await self.store.update(key, new, old["metadata"].get("resourceVersion"))
        except RevisionConflict:
            raise WroteInBetween from None
        except KeyNotFound:
            raise errors.not_found(info.plural, info.group, name) from None

    def _typed(self, stored: Obj) -> bool:
        """Whether ``stored`` was type-checked when this service wrote it (``typed_after``)."""
        if self.typed_after is None:
            return False
        try:
            return int(stored["metadata"].get("resourceVersion") or 0) > self.typed_after
        except (TypeError, ValueError):
            return False

    async def _get_stored(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        try:
            return await self.store.get(info.storage_key(namespace if info.namespaced else None, name))
        except KeyNotFound:
            raise errors.not_found(info.plural, info.group, name) from None

    async def _check_namespace(self, info: ResourceInfo, namespace: str | None, creating: bool) -> None:
        if not info.namespaced:
            return
        if not namespace:
            raise errors.bad_request("the namespace of the object is required for a namespaced resource")
        try:
            ns = await self.store.get(NAMESPACES.storage_key(None, namespace))
        except KeyNotFound:
            raise errors.not_found("namespaces", "", namespace) from None
        if creating and ns.get("metadata", {}).get("deletionTimestamp"):
            raise errors.StatusError(
                403, "Forbidden",
                f'{info.plural}{"." + info.group if info.group else ""} "" is forbidden: unable to create new '
                f"content in namespace {namespace} because it is being terminated",
            )

    async def ensure_default_namespaces(self) -> None:
        for name in deletion.DEFAULT_NAMESPACES:
            try:
                await self.store.get(NAMESPACES.storage_key(None, name))
            except KeyNotFound:
                try:
                    await self.create(NAMESPACES, None, {"metadata": {"name": name}})
                except errors.StatusError as exc:
                    if exc.code != 409:
                        raise

    async def ensure_default_storage_class(self) -> None:
        """The default StorageClass the local-path provisioner serves, made once (a user may
        change its default annotation or delete it; it is not made again while others exist)."""
        from jobplane.api.validation.storage import DEFAULT_CLASS_ANNOTATION

        if (await self.store.list(STORAGECLASSES.storage_prefix(None), limit=1)).items:
            return
        body = {"metadata": {"name": LOCAL_PATH_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
                "provisioner": LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete",
                "volumeBindingMode": "WaitForFirstConsumer"}
        try:
            await self.create(STORAGECLASSES, None, body)
        except errors.StatusError as exc:
            if exc.code != 409:
                raise

    async def ensure_kubernetes_service(self, address: str, port: int) -> None:
        """The ``default/kubernetes`` Service (the range's first address, port 443) and its
        EndpointSlice naming this server, as kube-apiserver keeps them."""
        svc = {"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
               "spec": {"type": "ClusterIP", "clusterIP": self.cluster_ips.first(),
                        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}}
        try:
            family = "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"
        except ValueError:
            address, family = "127.0.0.1", "IPv4"
        eps = {"metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
               "addressType": family, "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
               "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
        for info, body in ((SERVICES, svc), (ENDPOINTSLICES, eps)):
            try:
                await self.store.get(info.storage_key("default", "kubernetes"))
            except KeyNotFound:
                try:
                    await self.create(info, "default", body)
                except errors.StatusError as exc:
                    if exc.code not in (409, 422):
                        raise

    # ------------------------------------------------------------------ create

    def _track(self, info: ResourceInfo, old: Obj | None, new: Obj, manager: str | None,
               subresource: str | None) -> None:
        """managedFields for an ``Update`` by ``manager`` (None: an internal write, untracked)."""
        if manager is None:
            return
        fieldmanager.track_update(old, new, managedfields.schema_for(info.group, info.version, info.kind),
                                  manager=manager, api_version=info.api_version, subresource=subresource,
                                  now=self._now(), has_status="status" in info.subresources)

    async def create(self, info: ResourceInfo, namespace: str | None, body: Obj, *, dry_run: bool = False,
                     field_manager: str | None = None) -> Obj:
        if info.read_only:
            raise errors.method_not_supported(info.plural, info.group, "create")
        decode_body(info, body)
        if info.virtual:
            if self.reviews is None:
                raise errors.method_not_supported(info.plural, info.group, "create")
            return await self.reviews.create(info, namespace, body)
        obj = body
        md = obj.get("metadata")
        if not isinstance(md, dict):
            md = obj["metadata"] = {}
        if info.namespaced:
            body_ns = md.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request")
            namespace = namespace or body_ns
            await self._check_namespace(info, namespace, creating=True)
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)
        obj["kind"] = info.kind
        obj["apiVersion"] = info.api_version
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            md.pop(k, None)
        if field_manager is None and not (isinstance(md.get("managedFields"), list) and md["managedFields"]):
            md.pop("managedFields", None)
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = self._now()
        if info.kind in _GENERATION_KINDS:
            md["generation"] = 1
        generate = md.get("generateName") if not md.get("name") else None
        if not md.get("name") and not generate:
            raise errors.invalid_object(info.kind, info.group, "", [
                errors.required("metadata.name", "name or generateName is required")])
        if generate:
            md["name"] = meta.generate_name(generate)
        # The creator owns what it sent (upstream also gives it the scheme's defaults, which it
        # applies while decoding; here defaulting is part of admission and stays unowned).
        self._track(info, None, obj, field_manager, None)
        if info is PERSISTENTVOLUMECLAIMS:
            await default_storage_class(self.store, obj)
        if info is PODS:
            await runtimeclass.admit_pod(self.store, obj)
        if info is CERTIFICATESIGNINGREQUESTS:
            _requester(obj, current_user.get())
        warnings = admission.admit_create(info, obj)
        if self.admission_plugins:
            await self._admit_plugins("CREATE", info, obj, None)
        if dry_run:
            return _with_type(info, obj)
        allocated = await allocate_service_ips(self.cluster_ips, obj) if info is SERVICES else None
        try:
            for attempt in range(_GENERATE_NAME_RETRIES):
                key = info.storage_key(namespace if info.namespaced else None, md["name"])
                try:
                    stored = await self.store.create(key, obj)
                    break
                except KeyExists:
                    if not generate or attempt == _GENERATE_NAME_RETRIES - 1:
                        raise errors.already_exists(info.plural, info.group, md["name"]) from None
                    md["name"] = meta.generate_name(generate)
        except BaseException:
            await self.cluster_ips.release(allocated)
            raise
        _record_warnings(warnings)
        return _with_type(info, stored)

    async def _released(self, info: ResourceInfo, gone: Obj) -> None:
        """What a removed object held: a Service's cluster IP."""
        if info is SERVICES:
            await self.cluster_ips.release((gone.get("spec") or {}).get("clusterIP"))

    # ------------------------------------------------------------------ reads

    async def get(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        return _with_type(info, await self._get_stored(info, namespace, name))

    def _prefix_and_filter(self, info: ResourceInfo, namespace: str | None, label_selector: str | None,
                           field_selector: str | None) -> tuple[str, Any, dict[str, str] | None]:
        """Storage prefix, object predicate (None: everything) and the selector's ``k=v``
        pairs as a store index hint (None: no hint)."""
        ls = parse_label_selector(label_selector)
        fs = parse_field_selector(field_selector, info.kind)
        prefix = info.storage_prefix(namespace if info.namespaced else None)
        ns_only = fs.value_of("metadata.namespace")
        if info.namespaced and not namespace and ns_only:
            prefix = info.storage_prefix(ns_only)
        name_only = fs.value_of("metadata.name")
        if name_only and (namespace or not info.namespaced or ns_only):
            # exact key; the predicate still checks the name (prefix also matches longer names)
            prefix = info.storage_key(namespace or ns_only if info.namespaced else None, name_only)
        return prefix, object_predicate(ls, fs), (ls.equality_pairs() or None)

    async def list(self, info: ResourceInfo, namespace: str | None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None,
                   continue_: str | None = None, at_revision: int | None = None) -> Obj:
        """``at_revision``: the state as of that revision (``resourceVersionMatch=Exact``)
        instead of the current one."""
        prefix, pred, hint = self._prefix_and_filter(info, namespace, label_selector, field_selector)
        try:
            result = await self.store.list(prefix, pred, limit if limit and limit > 0 else None,  # <= 0: none
                                           continue_ or _exact_start(at_revision), label_hint=hint)
        except Expired as exc:
            raise _list_expired(exc, at_revision) from None
        list_meta: Obj = {"resourceVersion": str(result.revision)}
        if result.continue_token:
            list_meta["continue"] = result.continue_token
            if result.remaining:
                list_meta["remainingItemCount"] = result.remaining
        return {
            "kind": info.kind_list,
            "apiVersion": info.api_version,
            "metadata": list_meta,
            "items": [_with_type(info, o) for o in result.items],
        }

    async def list_lazily(self, info: ResourceInfo, namespace: str | None, *, label_selector: str | None = None,
                          field_selector: str | None = None, at_revision: int | None = None
                          ) -> tuple[Obj, Iterator[Obj]]:
        """Every selected object (no limit, no continue), decoded one at a time as the caller
        iterates: (list metadata, items). For a Table, which keeps only each row's cells and
        metadata: holding 15,000 decoded pods at once cost most of such a request in garbage
        collector passes over the live objects. ``at_revision`` as for ``list``."""
        prefix, pred, hint = self._prefix_and_filter(info, namespace, label_selector, field_selector)
        start = _exact_start(at_revision)
        try:
            if pred is None:
                result = await self.store.list_bytes(prefix, continue_token=start)
            else:  # the predicate decoded them already
                result = await self.store.list(prefix, pred, continue_token=start, label_hint=hint)
        except Expired as exc:
            raise _list_expired(exc, at_revision) from None
        list_meta: Obj = {"resourceVersion": str(result.revision)}
        if pred is None:
            items = cast(list[bytes], result.items)  # list_bytes: the items are JSON bytes
            return list_meta, (_with_type(info, orjson.loads(data)) for data in items)
        return list_meta, (_with_type(info, o) for o in result.items)

    async def wait_for_revision(self, resource_version: str, *, wait: bool = True) -> int:
        """The revision a watch starts after, or a list must not be older than. One this store
        has not reached yet is waited for (upstream's watch cache, ``waitUntilFreshAndBlock``:
        up to 3 s), then 504 ``Too large resource version`` with ``retryAfterSeconds: 1``;
        without ``wait`` (what upstream serves from etcd: ``validateMinimumResourceVersion``)
        the 504 comes at once, without a retry delay."""
        try:
            rev = int(resource_version)
        except ValueError:
            raise errors.bad_request(f'invalid resource version "{resource_version}"') from None
        waited = 0.0
        while rev > self.store.current_revision():
            if not wait:
                raise errors.too_large_resource_version(rev, self.store.current_revision(), 0)
            if waited >= _FRESH_WAIT_SECONDS:
                raise errors.too_large_resource_version(rev, self.store.current_revision(), 1)
            await self.clock.sleep(_FRESH_POLL_SECONDS)
            waited += _FRESH_POLL_SECONDS
        return rev

    async def watch(self, info: ResourceInfo, namespace: str | None, *, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    send_initial_events: bool | None = None, initial_events_bookmark: bool = False
                    ) -> AsyncGenerator[tuple[str, Obj], None]:
        """Changes after ``resource_version``; for none or "0", the current state as ADDED
        events first. ``send_initial_events`` (a streaming list, WatchList): True gives the
        current state (at least as new as ``resource_version``) as ADDED events whatever the
        version, then, with ``initial_events_bookmark`` (the client allows bookmarks), a
        BOOKMARK annotated ``k8s.io/initial-events-end`` at the state's revision; False gives
        only the changes after ``resource_version``, or after now when it is none or "0"."""
        prefix, pred, hint = self._prefix_and_filter(info, namespace, label_selector, field_selector)
        rv = None if resource_version in (None, "", "0") else resource_version  # None: from now
        initial = rv is None if send_initial_events is None else send_initial_events
        if initial:
            if rv is not None:
                await self.wait_for_revision(rv)
            result = await self.store.list(prefix, pred, label_hint=hint)
            for obj in result.items:
                yield "ADDED", _with_type(info, obj)
            from_rev = result.revision
            if send_initial_events and initial_events_bookmark:
                yield "BOOKMARK", _with_type(info, {"metadata": {
                    "resourceVersion": str(from_rev), "annotations": {INITIAL_EVENTS_END: "true"}}})
        elif rv is None:
            from_rev = self.store.current_revision()
        else:
            from_rev = await self.wait_for_revision(rv)
        stream = self.store.watch(prefix, from_rev)
        # key -> whether the object of its last change seen here matched: that object is the
        # next change's previous one, so most MODIFIED events need no decode of it.
        matched: dict[str, bool] = {}
        try:
            async for ev in stream:
                obj = ev.object
                if pred is None:
                    yield ev.type, _with_type(info, dict(obj))
                    continue
                now_match = pred(obj)
                if ev.type == "ADDED":
                    matched[ev.key] = now_match
                    if now_match:
                        yield "ADDED", _with_type(info, dict(obj))
                    continue
                if ev.type == "DELETED":
                    matched.pop(ev.key, None)
                    if now_match:
                        yield "DELETED", _with_type(info, dict(obj))
                    continue
                was: bool | None = matched.get(ev.key)
                matched[ev.key] = now_match
                if was is None:
                    prev = ev.prev_object
                    was = pred(prev) if prev is not None else now_match
                was_match = was
                if now_match and was_match:
                    yield "MODIFIED", _with_type(info, dict(obj))
                elif now_match:
                    yield "ADDED", _with_type(info, dict(obj))
                elif was_match:
                    yield "DELETED", _with_type(info, dict(obj))
        except Expired as exc:
            raise errors.gone(str(exc) or f"too old resource version: {from_rev}") from None
        finally:
            await stream.aclose()

    # ------------------------------------------------------------------ writes

    def _check_writable(self, info: ResourceInfo, subresource: str | None) -> None:
        if info.read_only:
            raise errors.method_not_supported(info.plural, info.group, "update")
        if subresource and subresource not in info.subresources:
            raise errors.resource_not_found_path()
        if subresource in ("log", "binding", "eviction"):
            raise errors.method_not_supported(info.plural, info.group, "update")

    async def _finish_update(self, info: ResourceInfo, key: str, old: Obj, new: Obj,
                             subresource: str | None, expected_rv: str | None, dry_run: bool,
                             field_manager: str | None = None) -> Obj:
        old_md = old["metadata"]
        md = new.setdefault("metadata", {})
        for k in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "generation", "generateName"):
            if k in old_md:
                md[k] = old_md[k]
            else:
                md.pop(k, None)
        new["kind"] = info.kind
        new["apiVersion"] = info.api_version
        if subresource == "status":
            warnings = admission.admit_status_update(info, new, old)
        elif subresource == "ephemeralcontainers":
            warnings = admission.admit_ephemeral_containers(info, new, old)
        elif subresource == "finalize":
            # namespaces/finalize: how the namespace controller drops spec.finalizers once empty
            warnings = admission.admit_namespace_finalize(info, new, old)
        elif subresource == "approval":
            warnings = admission.admit_csr_approval(info, new, old)
        else:
            warnings = admission.admit_update(info, new, old)
        if self.admission_plugins:
            await self._admit_plugins("UPDATE", info, new, old, subresource)
        _record_warnings(warnings)
        md["resourceVersion"] = old_md.get("resourceVersion")
        self._track(info, old, new, field_manager, subresource)
        if new == old:
            return _with_type(info, new)
        if dry_run:
            return _with_type(info, new)
        try:
            stored = await self.store.update(key, new, expected_rv or old_md.get("resourceVersion"))
        except RevisionConflict:
            raise errors.conflict(info.plural, info.group, old_md.get("name", ""), errors.STALE_OBJECT) from None
        except KeyNotFound:
            raise errors.not_found(info.plural, info.group, old_md.get("name", "")) from None
        if deletion.deletable_now(info, stored):
            stored = await self._remove(info, key, stored)
        return _with_type(info, stored)

    async def _remove(self, info: ResourceInfo, key: str, obj: Obj) -> Obj:
        try:
            gone = await self.store.delete(key, obj["metadata"].get("resourceVersion"))
            await self._released(info, gone)
            return gone
        except KeyNotFound:
            return obj
        except RevisionConflict:
            # Someone wrote in between; they will see it deletable and remove it.
            return obj

    async def update(self, info: ResourceInfo, namespace: str | None, name: str, body: Obj,
                     subresource: str | None = None, *, dry_run: bool = False,
                     field_manager: str | None = None) -> Obj:
        self._check_writable(info, subresource)
        decode_body(info, body)
        body_md = body.get("metadata") or {}
        if body_md.get("name") and body_md["name"] != name:
            raise errors.bad_request("the name of the object does not match the name on the URL")
        if info.namespaced and body_md.get("namespace") and body_md["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request")
        old = await self._get_stored(info, namespace, name)
        expected = body_md.get("resourceVersion")
        if expected and expected != old["metadata"].get("resourceVersion"):
            raise errors.conflict(info.plural, info.group, name, errors.STALE_OBJECT)
        key = info.storage_key(namespace if info.namespaced else None, name)
        return await self._finish_update(info, key, old, body, subresource, expected, dry_run, field_manager)

    async def patch(self, info: ResourceInfo, namespace: str | None, name: str, patch: Any,
                    patch_type: str, subresource: str | None = None, *, dry_run: bool = False,
                    field_manager: str | None = None, force: bool = False) -> Obj:
        if patch_type == APPLY_PATCH:
            return await self.apply(info, namespace, name, patch, subresource, dry_run=dry_run,
                                    field_manager=field_manager, force=force)
        self._check_writable(info, subresource)
        key = info.storage_key(namespace if info.namespaced else None, name)

        async def attempt() -> Obj:
            try:
                data = await self.store.get_bytes(key)
            except KeyNotFound:
                raise errors.not_found(info.plural, info.group, name) from None
            # Two decodes of the stored bytes: the old object, and the patch's own working copy
            # (cheaper than decoding once and deep-copying).
            old = orjson.loads(data)
            new = apply_patch(info, orjson.loads(data), patch, patch_type, owned=True)
            # An object this service stored was well typed: only what the patch changed can fail.
            changed = patch_touched(patch, patch_type, new) if self._typed(old) else None
            try:
                if changed is None:
                    decode.check(info.group, info.version, info.kind, new)
                else:
                    decode.check_touched(info.group, info.version, info.kind, new, changed)
            except decode.DecodeError as exc:
                raise decode.patch_error(patch_type, patch, new, exc) from None
            if (new.get("metadata") or {}).get("resourceVersion") != old["metadata"].get("resourceVersion"):
                # the patch pinned a resourceVersion that is not the current one
                raise errors.conflict(info.plural, info.group, name, errors.STALE_OBJECT)
            try:
                return await self._finish_update(info, key, old, new, subresource, None, dry_run, field_manager)
            except errors.StatusError as exc:
                if exc.code == 409 and exc.reason == "Conflict":
                    raise WroteInBetween from None  # re-apply the patch on the new state
                raise

        return await retry_on_conflict(info, name, attempt)

    async def apply(self, info: ResourceInfo, namespace: str | None, name: str, config: Any,
                    subresource: str | None = None, *, dry_run: bool = False, field_manager: str | None = None,
                    force: bool = False) -> Obj:
        """Server-side apply (``application/apply-patch+yaml``): merge ``config`` into the live
        object (creating it when absent) by field ownership; 409 on conflicts unless ``force``."""
        self._check_writable(info, subresource)
        check_apply_config(info, name, config, field_manager)
        decode_body(info, config)
        assert field_manager is not None
        node = managedfields.schema_for(info.group, info.version, info.kind)
        has_status = "status" in info.subresources
        key = info.storage_key(namespace if info.namespaced else None, name)

        async def attempt() -> Obj:
            try:
                live = await self.store.get(key)
            except KeyNotFound:
                live = None
            if live is None and subresource:
                raise errors.not_found(info.plural, info.group, name)
            merged = fieldmanager.apply(live, copy.deepcopy(config), node, manager=field_manager,
                                        api_version=info.api_version, subresource=subresource, force=force,
                                        now=self._now(), has_status=has_status)
            if live is None:
                if info.namespaced:
                    merged.setdefault("metadata", {})["namespace"] = namespace
                try:
                    return await self.create(info, namespace, merged, dry_run=dry_run)
                except errors.StatusError as exc:
                    if exc.code == 409 and exc.reason == "AlreadyExists":
                        raise WroteInBetween from None  # created in between: apply onto it
                    raise
            try:
                return await self._finish_update(info, key, live, merged, subresource, None, dry_run)
            except errors.StatusError as exc:
                if exc.code == 409 and exc.reason == "Conflict" and not (exc.details or {}).get("causes"):
                    raise WroteInBetween from None  # someone wrote in between: apply again on the new state
                raise

        return await retry_on_conflict(info, name, attempt)

    async def bind(self, namespace: str, name: str, target_node: str, *, dry_run: bool = False) -> Obj:
        """``pods/binding``: set ``spec.nodeName`` and ``PodScheduled=True`` in one write.

        Upstream's ``BindingREST``: no admission (the pod's update strategy would keep
        nodeName), 409 Conflict on ``pods/binding`` when the pod is being deleted, already
        bound or still gated. Returns a Status of success (code 201), as upstream.
        """
        key = PODS.storage_key(namespace, name)

        async def attempt() -> None:
            old = await self._get_stored(PODS, namespace, name)
            new = pods.bound_pod(old, target_node, self._now())  # checks again on the new state
            if not dry_run:
                await self._write(PODS, key, new, old, name)

        await retry_on_conflict(PODS, name, attempt)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    async def evict(self, namespace: str, name: str, body: Obj, *, dry_run: bool = False) -> Obj:
        """``pods/eviction``: upstream's ``EvictionREST.Create`` without PodDisruptionBudgets
        (jobplane has none, so every eviction is allowed).

        The pod first gets ``DisruptionTarget=True`` (``addConditionAndDeletePod``; skipped on
        dry run), then is deleted with the Eviction's ``deleteOptions`` (graceful as usual).
        A resourceVersion precondition is checked against the pod before the condition write
        and then moved to the version that write made. Returns a Status of success (201).
        """
        opts = pods.eviction_delete_options(name, body)
        dry_run = dry_run or "All" in (opts.get("dryRun") or ())
        preconditions = opts.get("preconditions") or None
        key = PODS.storage_key(namespace, name)

        async def attempt() -> Obj | None:
            """Add the condition; returns the preconditions the delete then checks."""
            old = await self._get_stored(PODS, namespace, name)
            _check_preconditions(PODS, name, old["metadata"], preconditions)
            if self.admission_plugins:
                await self._admit_plugins("CREATE", PODS, body, old, "eviction")
            new = pods.disruption_target_pod(old, self._now())
            if dry_run or new == old:
                return preconditions
            try:
                stored = await self._write(PODS, key, new, old, name)
            except WroteInBetween:
                if preconditions and preconditions.get("resourceVersion"):
                    raise errors.conflict(PODS.plural, PODS.group, name, errors.STALE_OBJECT) from None
                raise  # add the condition to the new state
            if preconditions and preconditions.get("resourceVersion"):
                return dict(preconditions, resourceVersion=stored["metadata"]["resourceVersion"])
            return preconditions

        preconditions = await retry_on_conflict(PODS, name, attempt)
        await self.delete_ex(PODS, namespace, name, propagation_policy=opts.get("propagationPolicy"),
                             grace_period_seconds=opts.get("gracePeriodSeconds"), preconditions=preconditions,
                             dry_run=dry_run)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    # ------------------------------------------------------------------ tokens

    async def token_request(self, namespace: str, name: str, body: Obj, *, dry_run: bool = False) -> Obj:
        """``serviceaccounts/<name>/token``: a signed, expiring token for the account, as
        upstream's TokenREST (``expirationSeconds`` 3600 by default, at least 600; audiences
        default to the issuer). 404 when the account is missing."""
        from jobplane.api.registry import SERVICEACCOUNTS

        if self.tokens is None:
            raise errors.StatusError(503, "ServiceUnavailable", "service account token signing is not configured")
        if body.get("kind") not in (None, "", "TokenRequest"):
            raise errors.bad_request(f"the kind in the data ({body.get('kind')}) does not match the expected "
                                     "kind (TokenRequest)")
        sa = await self._get_stored(SERVICEACCOUNTS, namespace, name)
        spec = dict(body.get("spec") or {})
        seconds = spec.get("expirationSeconds")
        seconds = 3600 if seconds is None else seconds
        errs = []
        if not isinstance(seconds, int) or seconds < 600:
            errs.append(errors.invalid("spec.expirationSeconds", seconds,
                                       "may not specify a duration less than 10 minutes"))
        elif seconds > 2**32:
            errs.append(errors.invalid("spec.expirationSeconds", seconds,
                                       "may not specify a duration larger than 2^32 seconds"))
        bound = spec.get("boundObjectRef")
        if bound and bound.get("kind") not in ("Pod", "Secret", "Node"):
            errs.append(errors.not_supported("spec.boundObjectRef.kind", bound.get("kind"),
                                             ["Pod", "Node", "Secret"]))
        if errs:
            raise errors.invalid_object("TokenRequest", "authentication.k8s.io", name, errs)
        obj = None
        if bound:
            kinds = {"Pod": PODS, "Secret": SECRETS, "Node": NODES}
            target = kinds[bound["kind"]]
            obj = await self._get_stored(target, namespace if target.namespaced else None, bound.get("name") or "")
            if bound.get("uid") and bound["uid"] != obj["metadata"].get("uid"):
                raise errors.conflict(target.plural, "", bound.get("name") or "",
                                      "the UID in the bound object reference does not match")
        from jobplane.apiserver.node_authorizer import check_token_binding

        check_token_binding(current_user.get(), name, bound, obj)
        if bound and obj is not None:
            bound = {"kind": bound["kind"], "name": bound.get("name") or "", "uid": obj["metadata"].get("uid")}
            if bound["kind"] == "Pod":
                bound["node"] = (obj.get("spec") or {}).get("nodeName") or ""
        audiences = list(spec.get("audiences") or [self.tokens.issuer])
        now = self.clock.now()
        token = "" if dry_run else self.tokens.issue(namespace, name, sa["metadata"].get("uid") or "", audiences,
                                                    now, seconds, bound)
        spec.update(audiences=audiences, expirationSeconds=seconds, boundObjectRef=spec.get("boundObjectRef"))
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
                "spec": spec, "status": {"token": token, "expirationTimestamp": meta.rfc3339(now + seconds)}}

    async def authenticate_service_account(self, token: str) -> UserInfo | None:
        """The user a service-account token stands for (``system:serviceaccount:NS:NAME``,
        groups ``system:serviceaccounts``, ``system:serviceaccounts:NS``,
        ``system:authenticated``), while its account still exists with the uid it was issued
        for (upstream's legacy and bound-token validators); RBAC then decides what it may do."""
        from jobplane.api.registry import SERVICEACCOUNTS

        if self.tokens is None:
            return None
        ident = self.tokens.verify(token, self.clock.now())
        if ident is None:
            return None
        try:
            sa = await self.store.get(SERVICEACCOUNTS.storage_key(ident.namespace, ident.name))
        except KeyNotFound:
            return None
        if ident.uid and sa["metadata"].get("uid") != ident.uid:
            return None
        extra: dict[str, tuple[str, ...]] = {}
        if ident.jti:
            extra["authentication.kubernetes.io/credential-id"] = (f"JTI={ident.jti}",)
        for kind, info in (("Pod", PODS), ("Secret", SECRETS), ("Node", NODES)):
            ref = ident.bound_to(kind)
            if ref is None:
                continue
            # a bound token lives only as long as its object (upstream's bound-token validator):
            # gone, replaced (another uid) or deleted more than a minute ago means refused
            try:
                obj = await self.store.get(info.storage_key(ident.namespace if info.namespaced else None, ref[0]))
            except KeyNotFound:
                return None
            md = obj.get("metadata") or {}
            if ref[1] and md.get("uid") != ref[1]:
                return None
            deleted = meta.parse_time(md.get("deletionTimestamp"))
            if deleted is not None and deleted < self.clock.now() - 60:
                return None
            if kind == "Pod":
                extra["authentication.kubernetes.io/pod-name"] = (ref[0],)
                extra["authentication.kubernetes.io/pod-uid"] = (ref[1],)
        if ident.node:
            extra["authentication.kubernetes.io/node-name"] = (ident.node,)
        return service_account_user(ident.namespace, ident.name, sa["metadata"].get("uid", ""), extra or None)

    # ------------------------------------------------------------------ delete

    async def delete(self, info: ResourceInfo, namespace: str | None, name: str, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: Obj | None = None, dry_run: bool = False) -> Obj:
        obj, _ = await self.delete_ex(info, namespace, name, propagation_policy=propagation_policy,
                                      grace_period_seconds=grace_period_seconds,
                                      preconditions=preconditions, dry_run=dry_run)
        return obj

    async def delete_ex(self, info: ResourceInfo, namespace: str | None, name: str, *,
                        propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                        preconditions: Obj | None = None, dry_run: bool = False) -> tuple[Obj, bool]:
        """Like ``delete``; also says whether the object is gone (False: it stays, with a
        deletionTimestamp, until finalizers or its agent let it go)."""
        if info.read_only:
            raise errors.method_not_supported(info.plural, info.group, "delete")
        deletion.check_policy(propagation_policy)
        if grace_period_seconds is not None and grace_period_seconds < 0:
            grace_period_seconds = 0
        key = info.storage_key(namespace if info.namespaced else None, name)

        async def attempt() -> tuple[Obj, bool]:
            obj = await self._get_stored(info, namespace, name)
            md = obj["metadata"]
            _check_preconditions(info, name, md, preconditions)
            if self.admission_plugins:
                await self._admit_plugins("DELETE", info, None, obj)
            deletion.check_deletable(info, name)
            new = deletion.marked_for_deletion(info, obj, propagation_policy=propagation_policy,
                                               grace_period_seconds=grace_period_seconds, now=self.clock.now())
            if dry_run:
                return _with_type(info, new), False
            if deletion.deletable_now(info, new):
                try:
                    gone = await self.store.delete(key, md.get("resourceVersion"))
                except RevisionConflict:
                    raise WroteInBetween from None
                except KeyNotFound:
                    raise errors.not_found(info.plural, info.group, name) from None
                await self._released(info, gone)
                return _with_type(info, gone), True
            if new == obj:
                return _with_type(info, obj), False
            return _with_type(info, await self._write(info, key, new, obj, name)), False

        return await retry_on_conflict(info, name, attempt)

    async def delete_collection(self, info: ResourceInfo, namespace: str | None, *,
                                label_selector: str | None = None, field_selector: str | None = None,
                                propagation_policy: str | None = None, dry_run: bool = False) -> Obj:
        listed = await self.list(info, namespace, label_selector=label_selector, field_selector=field_selector)
        items = []
        for item in listed["items"]:
            md = item["metadata"]
            try:
                items.append(await self.delete(info, md.get("namespace"), md["name"],
                                               propagation_policy=propagation_policy, dry_run=dry_run))
            except errors.StatusError as exc:
                if exc.code != 404:
                    raise
        listed["items"] = items
        return listed


def _exact_start(at_revision: int | None) -> str | None:
    """A list from the start of the prefix at ``at_revision``: the continue point the store
    already knows how to serve (its history rolls changed keys back to that revision)."""
    return None if at_revision is None else encode_continue(at_revision, "")


def _list_expired(exc: Expired, at_revision: int | None) -> errors.StatusError:
    if at_revision is not None:  # etcd's answer to an exact read of a compacted revision
        return errors.gone("The resourceVersion for the provided list is too old.")
    return errors.gone(str(exc) or "The provided continue parameter is too old to display a "
                       "consistent list result.")
