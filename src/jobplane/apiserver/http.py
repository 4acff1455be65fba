"""The Kubernetes HTTP API on aiohttp: routing from ``api.registry`` to ``ApiService``.

One catch-all handler does authentication, routing and error conversion, so a request
passes through exactly one layer: route tables, discovery bodies and OpenAPI hashes are
built once in ``ApiHandler.__init__``. Every error leaves as a ``Status`` body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import orjson
from aiohttp import web

from jobplane.api import bodyparse, errors, meta, pods, registry
from jobplane.api.query import int_param, list_limit, list_options
from jobplane.api.rbac import Attributes
from jobplane.api.registry import ResourceInfo
from jobplane.apiserver import authz, fieldvalidation, impersonation, negotiation, oidc
from jobplane.apiserver.authn import Authenticator, is_public
from jobplane.apiserver.connguard import ConnectionGuard
from jobplane.apiserver.discovery import DiscoveryBodies
from jobplane.apiserver.identity import UserInfo, current_user
from jobplane.apiserver.openapi_routes import OpenApiV3
from jobplane.apiserver.service import ApiService, decode_body, warnings_var
from jobplane.apiserver.watchstream import EventEncoder, OpenStreams, WatchOptions, serve_watch
from jobplane.clock import Clock
from jobplane.logstream import TEXT_HEADERS, stream_text

log = logging.getLogger(__name__)

API_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
TABLE_CHUNK = 1 << 20  # bytes of a streamed Table written at a time (each write waits for the client)
AGGREGATED_HEADERS = {"Content-Type": negotiation.AGGREGATED_CONTENT_TYPE, "Cache-Control": "no-cache, private"}

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-jobplane",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
# Upstream's MaxRequestBodyBytes (the generic API server's default), the same for every
# content type; JSON patches also have upstream's limit on operations.
MAX_BODY = 3 * 1024 * 1024
MAX_JSON_PATCH_OPERATIONS = 10000
REQUEST_TIMEOUT = 60.0  # kube-apiserver --request-timeout
HANDLER_KEY: web.AppKey[ApiHandler] = web.AppKey("api_handler")
STREAM_SUBRESOURCES = ("exec", "attach", "portforward")
USER_KEY = "jobplane.user"  # the authenticated (and impersonated) user, once known
IMPERSONATOR_KEY = "jobplane.impersonator"  # who asked to act as USER_KEY's user
AUDIT_KEY = "jobplane.audit"  # the request's audit.Record (None: not audited)
AUDIT_BODY_KEY = "jobplane.audit.body"  # the decoded request body as JSON, for Request-level events
ROUTE_KEY = "jobplane.route"  # the parsed Route of a resource request, for whoever observes it
# A mounted non-resource handler (``/metrics``, ``/ui/``): gets the request, returns the response.
MountedHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Called after every request with (request, HTTP status, seconds taken).
RequestObserver = Callable[[web.Request, int, float], None]
# The type DELETE bodies decode into (meta/v1, served with every group).
_DELETE_OPTIONS = ResourceInfo("", "v1", "DeleteOptions", "", "", False)


@dataclass(frozen=True)
class Route:
    """A parsed resource URL."""

    info: ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_prefix: bool

    @property
    def object_name(self) -> str:
        """The name of a per-object URL (only those reach the handlers that ask)."""
        return self.name or ""

    @property
    def pod_namespace(self) -> str:
        """The namespace of a pod subresource URL (pods are namespaced, so the router set it)."""
        return self.namespace or ""


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    if headers:
        return web.Response(body=orjson.dumps(obj), status=status, headers={**API_HEADERS, **headers})
    return web.Response(body=orjson.dumps(obj), status=status, headers=API_HEADERS)


def status_response(exc: errors.StatusError) -> web.Response:
    return json_response(exc.to_status(), exc.code, exc.headers or None)


def _warning_headers(warnings: list[str]) -> dict[str, str] | None:
    """aiohttp takes one value per key in a dict; several warnings go in one header, comma
    separated, which RFC 7234 allows and client-go splits."""
    headers = [fieldvalidation.warning_header(w) for w in warnings if fieldvalidation.valid_warning(w)]
    if not headers:
        return None
    return {"Warning": ", ".join(headers)}


class RouteTable:
    """``(group, version) -> {plural: ResourceInfo}``, built once."""

    def __init__(self) -> None:
        self.by_gv: dict[tuple[str, str], dict[str, ResourceInfo]] = {}
        for r in registry.RESOURCES:
            self.by_gv.setdefault((r.group, r.version), {})[r.plural] = r

    def parse(self, parts: list[str]) -> Route | None:
        """``parts`` is the path split on ``/`` without the leading empty piece."""
        if parts[0] == "api":
            if len(parts) < 3:
                return None
            gv, rest = ("", parts[1]), parts[2:]
        else:
            if len(parts) < 4:
                return None
            gv, rest = (parts[1], parts[2]), parts[3:]
        resources = self.by_gv.get(gv)
        if resources is None:
            return None
        watch_prefix = rest[0] == "watch"
        if watch_prefix:
            rest = rest[1:]
            if not rest:
                return None
        namespace: str | None = None
        info: ResourceInfo | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = resources.get(rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, info, tail = rest[1], candidate, rest[3:]
        if info is None:
            info = resources.get(rest[0])
            tail = rest[1:]
            if info is None:
                return None
        if len(tail) > 2 or any(not p for p in tail) or namespace == "":
            return None
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) == 2 else None
        if sub is not None and sub not in info.subresources:
            return None
        if name is not None and info.namespaced and namespace is None:
            return None
        return Route(info, namespace, name, sub, watch_prefix)


class ApiHandler:
    """Holds the precomputed state and serves every request."""

    def __init__(self, service: ApiService, *, token: str | None, pods_dir: Path | None = None,
                 openapi: OpenApiV3 | None = None, server_address: str = "127.0.0.1:6443",
                 clock: Clock | None = None, authenticator: Authenticator | None = None,
                 guard: ConnectionGuard | None = None, request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.service = service
        self.guard = guard
        self.request_timeout = request_timeout
        # No authenticator and no token: an open server (unit tests of other layers).
        self.auth = authenticator or (Authenticator(token) if token else None)
        self.token = token  # also presented to node agents when proxying pod logs
        self.pods_dir = pods_dir
        self.openapi = openapi
        self.clock = clock or Clock()
        self.routes = RouteTable()
        self.discovery = DiscoveryBodies(server_address)
        self.version_body = orjson.dumps(VERSION_INFO)
        self.streams = OpenStreams()
        self._mounts: dict[str, tuple[MountedHandler, bool]] = {}
        self.observer: RequestObserver | None = None
        self.audit: Any = None  # apiserver.audit.AuditLog (``--audit-log-path``)

    def mount(self, head: str, handler: MountedHandler, *, public: bool = False) -> None:
        """Serve every path whose first segment is ``head`` with ``handler``. ``public``
        paths skip authentication (static pages that carry no data); the others get the
        same bearer-token check as the API, before the handler runs."""
        self._mounts[head] = (handler, public)

    def close_streams(self) -> None:
        """End every open watch and log stream (server shutdown)."""
        self.streams.close_all()

    def set_server_address(self, server_address: str) -> None:
        """Once the real port is known (``--port 0``), rebuild the bodies that name it."""
        self.discovery = DiscoveryBodies(server_address)

    # -- entry point -------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.observer is None:
            return await self._handle(request)
        t0 = perf_counter()
        response = await self._handle(request)
        self.observer(request, response.status, perf_counter() - t0)
        return response

    def authenticated(self, request: web.Request) -> bool:
        """Whether the request carries valid credentials (for mounted handlers that serve
        public and private paths under one prefix)."""
        return self.auth is None or current_user.get() is not None

    def _is_public(self, path: str) -> bool:
        if self.auth is None or is_public(path):
            return True
        mounted = self._mounts.get(path.split("/", 2)[1]) if self._mounts else None
        return mounted is not None and mounted[1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.audit is not None:
            return await self._audited(request)
        return await self._serve(request)

    def _attributes(self, request: web.Request, path: str) -> tuple[Attributes, str]:
        """The request's authorization attributes (and API version), for the audit log."""
        parts = path.strip("/").split("/")
        if parts[0] in ("api", "apis") and not ((parts[0] == "api" and len(parts) <= 2) or
                                                (parts[0] == "apis" and len(parts) <= 3)):
            route = self.routes.parse(parts)
            if route is not None:
                return (authz.resource_attributes(request.method, route.info, route.namespace, route.name,
                                                  route.subresource, request.query, route.watch_prefix),
                        route.info.version)
        return authz.non_resource_attributes(request.method, path), ""

    async def _audited(self, request: web.Request) -> web.StreamResponse:
        """``_serve`` with an audit event at RequestReceived and ResponseComplete."""
        from jobplane.apiserver.identity import ANONYMOUS

        path = request.path
        try:
            user = await self._authenticate(request, path) or ANONYMOUS
        except errors.StatusError:
            user = ANONYMOUS
        attrs, version = self._attributes(request, path)
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        record = self.audit.begin(user, attrs, method=request.method, uri=request.path_qs,
                                  source_ip=peer[0] if peer else None, user_agent=request.headers.get("User-Agent"),
                                  impersonator=request.get(IMPERSONATOR_KEY), api_version=version)
        request[AUDIT_KEY] = record
        response = await self._serve(request)
        if record is not None:
            body = getattr(response, "body", None)
            request_body = request.get(AUDIT_BODY_KEY)
            decision = None
            if user is not ANONYMOUS:
                decision = "forbid" if response.status == 403 else "allow"
            self.audit.finish(record, response.status, request_body=request_body,
                              response_body=body if isinstance(body, bytes) else None, decision=decision)
        return response

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        try:
            user = await self._authenticate(request, path)
            if self.guard is not None:
                self.guard.request_seen(request.transport, user is not None)
            if request.can_read_body:
                await self._read_body_in_time(request)
            if user is None:
                return await self._dispatch(request, path)
            reset = current_user.set(user)
            try:
                return await self._dispatch(request, path)
            finally:
                current_user.reset(reset)
        except errors.StatusError as exc:
            return status_response(exc)
        except (ConnectionError, web.HTTPException):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure leaves as a Status
            log.exception("%s %s failed", request.method, path)
            return status_response(errors.internal_error(str(exc)))

    async def _authenticate(self, request: web.Request, path: str) -> UserInfo | None:
        """The caller (401 when nobody vouches for it), impersonation applied; None on an
        open server and for anonymous calls to the public health and version paths."""
        if self.auth is None:
            return None
        authorization = request.headers.get("Authorization")
        if not authorization and self._is_public(path):
            return None
        cached = request.get(USER_KEY)
        if cached is not None:
            return cached  # already authenticated (the audit log asked first)
        user = await self.auth.authenticate(authorization, request.transport)
        authorizer = getattr(self.service, "authorizer", None)
        if authorizer is not None and impersonation.wants_impersonation(request.headers):
            request[IMPERSONATOR_KEY] = user
            user = impersonation.impersonate(user, request.headers, authorizer)
        request[USER_KEY] = user
        return user

    async def _authorize(self, attrs_fn: Any, *args: Any) -> None:
        authorizer = getattr(self.service, "authorizer", None)
        user = current_user.get()
        if authorizer is None or user is None:
            return
        attrs = attrs_fn(*args)
        if not authorizer.authorize(user, attrs)[0]:  # the common, allowed case stays synchronous
            await authz.check_async(authorizer, user, attrs)

    async def _read_body_in_time(self, request: web.Request) -> None:
        """Read (and cache) the body within ``--request-timeout``, so a client sending one byte
        a second cannot hold a request open; later ``request.read()`` calls get the cache. A body
        over ``MAX_BODY`` is left to ``_body``, which refuses it with upstream's 413."""
        if request.content_length is not None and request.content_length > MAX_BODY:
            return
        try:
            async with asyncio.timeout(self.request_timeout):
                await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise errors.request_entity_too_large(f"limit is {MAX_BODY}") from None
        except TimeoutError:
            raise errors.StatusError(
                504, "Timeout", "Timeout: request did not complete within requested timeout - "
                                "context deadline exceeded") from None

    async def _dispatch(self, request: web.Request, path: str) -> web.StreamResponse:
        parts = path.strip("/").split("/")
        head = parts[0]
        if head in ("api", "apis"):
            if (head == "api" and len(parts) <= 2) or (head == "apis" and len(parts) <= 3):
                await self._authorize(authz.non_resource_attributes, request.method, path)
                return self._discovery(request, path.rstrip("/"))
            route = self.routes.parse(parts)
            if route is None:
                raise errors.resource_not_found_path()
            await self._authorize(authz.resource_attributes, request.method, route.info, route.namespace, route.name,
                            route.subresource, request.query, route.watch_prefix)
            if route.subresource in STREAM_SUBRESOURCES and request.method == "GET":
                # upstream's AuthorizePodWebsocketUpgradeCreatePermission (on since 1.31): a
                # WebSocket exec/attach/portforward also needs ``create`` on the subresource
                await self._authorize(authz.resource_attributes, "POST", route.info, route.namespace, route.name,
                                route.subresource, request.query)
            return await self._resource(request, route)
        mounted = self._mounts.get(head)
        if mounted is None or not mounted[1]:  # public pages carry no data: no check
            await self._authorize(authz.non_resource_attributes, request.method, path)
        if path in HEALTH_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return web.Response(body=b"ok", headers=TEXT_HEADERS)
        if path == "/version":
            return web.Response(body=self.version_body, headers=API_HEADERS)
        if path in oidc.PATHS:
            return self._issuer_discovery(request, path)
        if head == "openapi":
            return self._openapi(request, parts)
        if mounted is not None:
            return await mounted[0](request)
        raise errors.resource_not_found_path()

    # -- discovery, openapi ------------------------------------------------------------------

    def _discovery(self, request: web.Request, path: str) -> web.Response:
        if request.method != "GET":
            raise errors.StatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        wants_agg = negotiation.accept_mode(request.headers.get("Accept")) == negotiation.MODE_AGGREGATED
        found = self.discovery.body(path, wants_agg)
        if found is None:
            raise errors.resource_not_found_path()
        body, aggregated = found
        return web.Response(body=body, headers=AGGREGATED_HEADERS if aggregated else API_HEADERS)

    def _issuer_discovery(self, request: web.Request, path: str) -> web.Response:
        """The service-account issuer's OIDC documents (``apiserver/oidc.py``)."""
        tokens = self.service.tokens
        if tokens is None:
            raise errors.resource_not_found_path()
        if request.method != "GET":
            raise errors.StatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if path.rstrip("/") == oidc.JWKS_PATH:
            body, content_type = oidc.keyset_json(tokens), oidc.JWKS_CONTENT_TYPE
        else:
            body, content_type = oidc.config_json(tokens, request.host), "application/json"
        return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": oidc.CACHE_CONTROL})

    def _openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        from jobplane.apiserver import openapi_routes as oa

        if self.openapi is not None and parts[1:] == ["v2"]:
            if oa.OPENAPI_V2_PROTOBUF_TYPE in (request.headers.get("Accept") or ""):
                return web.Response(body=oa.OPENAPI_V2_PROTOBUF,
                                    headers={"Content-Type": "application/octet-stream"})
            return web.Response(body=oa.OPENAPI_V2_JSON, headers=API_HEADERS)
        if self.openapi is None or len(parts) < 2 or parts[1] != "v3":
            raise errors.resource_not_found_path()
        if len(parts) == 2:
            return web.Response(body=self.openapi.index, headers=API_HEADERS)
        found = self.openapi.document("/".join(parts[2:]), request.query.get("hash"))
        if found is None:
            # kube-openapi's handler3 writes nothing for a group-version it does not serve:
            # 200 with an empty body.
            return web.Response(body=b"", headers={"Vary": "Accept"})
        body, immutable = found
        if immutable:
            from jobplane.apiserver.openapi_routes import IMMUTABLE_HEADERS

            return web.Response(body=body, headers={"Content-Type": "application/json", **IMMUTABLE_HEADERS})
        return web.Response(body=body, headers=API_HEADERS)

    # -- resources ---------------------------------------------------------------------------

    async def _resource(self, request: web.Request, route: Route) -> web.StreamResponse:
        method = request.method
        if self.observer is not None:
            request[ROUTE_KEY] = route
        info = route.info
        if info.group == "metrics.k8s.io":
            if method != "GET" or route.subresource or route.watch_prefix:
                raise errors.method_not_supported(info.plural, info.group, method.lower())
            return await self._metrics(request, route)
        if route.subresource in STREAM_SUBRESOURCES:
            if method not in ("GET", "POST"):
                raise errors.method_not_supported(info.plural, info.group, method.lower())
            return await self._pod_stream(request, route)
        if method == "GET":
            if route.subresource in ("binding", "eviction", "token"):
                raise errors.method_not_supported(info.plural, info.group, "get")
            if route.subresource == "log":
                return await self._log(request, route)
            if route.subresource == "ephemeralcontainers":
                return await self._get(request, route)
            query = request.query
            if route.watch_prefix or negotiation.truthy(query.get("watch")):
                return await self._watch(request, route)
            if route.name is not None:
                return await self._get(request, route)
            return await self._list(request, route)
        if info.read_only or route.subresource == "log":
            raise errors.method_not_supported(info.plural, info.group, method.lower())
        if route.subresource == "binding":
            if method != "POST":
                raise errors.method_not_supported(info.plural, info.group, method.lower())
            return await self._bind(request, route)
        if route.subresource == "eviction":
            if method != "POST":
                raise errors.method_not_supported(info.plural, info.group, method.lower())
            return await self._evict(request, route)
        if route.subresource == "token":
            if method != "POST":
                raise errors.method_not_supported(info.plural, info.group, method.lower())
            body = await self._body(request)
            if not isinstance(body, dict):
                raise errors.bad_request("the object provided is unrecognized (expected a JSON object)")
            return json_response(await self.service.token_request(route.namespace or "", route.name or "", body,
                                                                  dry_run=self._dry_run(request)), 201)
        if method == "POST":
            if route.name is not None:
                raise errors.method_not_supported(info.plural, info.group, "create")
            return await self._create(request, route)
        if method == "PUT" and route.name is not None:
            return await self._update(request, route)
        if method == "PATCH" and route.name is not None:
            return await self._patch(request, route)
        if method == "DELETE":
            if route.name is not None:
                return await self._delete(request, route)
            return await self._delete_collection(request, route)
        raise errors.StatusError(405, "MethodNotAllowed",
                                 "the server does not allow this method on the requested resource")

    def _table_mode(self, request: web.Request) -> bool:
        return negotiation.accept_mode(request.headers.get("Accept")) == negotiation.MODE_TABLE

    def _table(self, request: web.Request, info: ResourceInfo, items: Iterable[dict[str, Any]],
               list_metadata: dict[str, Any]) -> dict[str, Any]:
        from jobplane.api import printers

        include = request.query.get("includeObject") or "Metadata"
        return printers.to_table(info, items, now=self.clock.now(), list_metadata=list_metadata,
                                 include_object=include, encode_objects=True)

    async def _stream_table(self, request: web.Request, info: ResourceInfo, items: Iterable[dict[str, Any]],
                            list_metadata: dict[str, Any]) -> web.StreamResponse:
        """A Table written a row at a time as ``items`` are decoded, in chunks of
        ``TABLE_CHUNK`` bytes: built whole, a Table of 3,000 finished pods held its rows, an
        8 MiB body in orjson's 16 MiB block and the TLS layer's copies at once (+41 MiB traced,
        +55 MiB RSS); 12,500 (what PodGC keeps) four times as much."""
        from jobplane.api import printers

        rows = printers.table_rows(info, items, now=self.clock.now(),
                                   include_object=request.query.get("includeObject") or "Metadata")
        response = web.StreamResponse(headers=API_HEADERS)
        await response.prepare(request)
        buf = bytearray(orjson.dumps(printers.table_head(info, list_metadata))[:-1] + b',"rows":[')
        sep = b""
        for row in rows:
            buf += sep
            buf += orjson.dumps(row)
            sep = b","
            if len(buf) >= TABLE_CHUNK:
                await response.write(bytes(buf))
                buf.clear()
        buf += b"]}"
        await response.write(bytes(buf))
        await response.write_eof()
        return response

    async def _get(self, request: web.Request, route: Route) -> web.Response:
        obj = await self.service.get(route.info, route.namespace, route.object_name)
        if self._table_mode(request):
            rv = (obj.get("metadata") or {}).get("resourceVersion", "")
            return json_response(self._table(request, route.info, [obj], {"resourceVersion": rv}))
        return json_response(obj)

    async def _list(self, request: web.Request, route: Route) -> web.StreamResponse:
        query = request.query
        table = self._table_mode(request)
        # A Table is for a human reading `kubectl get`, which fetches every page anyway, in
        # pages of 500 behind a client-side rate limit (10,000 pods: 20 requests, > 2 s of
        # waiting). One answer with every row is what kubectl prints, much sooner; data
        # lists keep upstream's limit/continue pagination.
        limit = None if table else list_limit(query)
        opts = list_options(query, watch=False)
        rv = opts.resource_version
        if opts.continue_ and rv not in ("", "0"):
            raise errors.bad_request("specifying resource version is not allowed when using continue")
        at_revision = None
        if rv not in ("", "0"):
            # Not older than ``rv``: upstream's cacher waits up to 3 s for its watch cache to
            # reach it; what it hands to etcd instead (a limit, a continue, an exact match)
            # is checked against etcd's revision at once. An exact match reads the state as
            # of ``rv`` (the history's, as etcd's MVCC; 410 once compacted away).
            from_storage = bool(list_limit(query) or opts.continue_ or opts.exact)
            revision = await self.service.wait_for_revision(rv, wait=not from_storage)
            at_revision = revision if opts.exact else None
        if table and not opts.continue_:
            list_meta, items = await self.service.list_lazily(
                route.info, route.namespace, label_selector=query.get("labelSelector") or None,
                field_selector=query.get("fieldSelector") or None, at_revision=at_revision)
            record = request.get(AUDIT_KEY)
            if record is not None and record.level == "RequestResponse":  # the log wants the body
                return json_response(self._table(request, route.info, items, list_meta))
            return await self._stream_table(request, route.info, items, list_meta)
        result = await self.service.list(
            route.info, route.namespace, label_selector=query.get("labelSelector") or None,
            field_selector=query.get("fieldSelector") or None, limit=limit,
            continue_=opts.continue_ or None, at_revision=at_revision)
        if table:
            return json_response(self._table(request, route.info, result["items"], result.get("metadata") or {}))
        return json_response(result)

    async def _watch(self, request: web.Request, route: Route) -> web.StreamResponse:
        query = request.query
        field_selector = query.get("fieldSelector") or None
        if route.name is not None:
            by_name = f"metadata.name={route.name}"
            field_selector = f"{field_selector},{by_name}" if field_selector else by_name
        list_opts = list_options(query, watch=True)
        rv = list_opts.resource_version or None
        if rv not in (None, "0"):
            await self.service.wait_for_revision(rv)  # 400 / 504 before the stream starts
        allow_bookmarks = negotiation.truthy(query.get("allowWatchBookmarks"))
        events = self.service.watch(route.info, route.namespace, resource_version=rv,
                                    label_selector=query.get("labelSelector") or None,
                                    field_selector=field_selector,
                                    send_initial_events=list_opts.send_initial_events,
                                    initial_events_bookmark=allow_bookmarks)
        opts = WatchOptions(timeout_seconds=int_param(query, "timeoutSeconds"),
                            allow_bookmarks=allow_bookmarks,
                            table=self._table_mode(request),
                            include_object=query.get("includeObject") or "Metadata")
        encoder = EventEncoder(route.info, opts, self.clock.now)
        return await serve_watch(request, events, encoder, start_rv=rv, streams=self.streams)

    async def _body(self, request: web.Request, content_type: str | None = None) -> Any:
        """The decoded body: at most ``MAX_BODY`` bytes (413 as upstream, refused from the
        Content-Length before reading when it says so); a large one is parsed in a worker
        thread so this loop keeps answering other requests meanwhile."""
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise errors.request_entity_too_large(f"limit is {MAX_BODY}")
        try:
            data = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise errors.request_entity_too_large(f"limit is {MAX_BODY}") from None
        if content_type is None:
            content_type = request.headers.get("Content-Type")
        if negotiation.parse_inline(content_type, len(data)):
            decoded = negotiation.decode_body(content_type, data)
        else:
            decoded = await asyncio.to_thread(negotiation.decode_body, content_type, data)
        record = request.get(AUDIT_KEY)
        if record is not None and record.level != "Metadata":
            request[AUDIT_BODY_KEY] = orjson.dumps(decoded)  # as received (JSON, YAML or protobuf), before admission
        return decoded

    async def _object_body(self, request: web.Request, info: ResourceInfo) -> dict[str, Any]:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the object provided is unrecognized (expected a JSON object)")
        api_version = body.get("apiVersion")
        if api_version and api_version != info.api_version:
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match "
                                     f"the expected API version ({info.api_version})")
        kind = body.get("kind")
        if kind and kind != info.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
        return body

    @staticmethod
    def _dry_run(request: web.Request, extra: list[str] | None = None) -> bool:
        """``dryRun=All`` (query or DeleteOptions): validate and answer, store nothing."""
        values = request.query.getall("dryRun", []) + list(extra or [])
        for v in values:
            if v != "All":
                raise errors.bad_request(f'unsupported dry run value "{v}"; supported values: "All"')
        return bool(values)

    @staticmethod
    def _manager_kwargs(request: web.Request, verb: str, apply: bool = False) -> dict[str, Any]:
        """``fieldManager`` (default: the User-Agent's product, as upstream; required for
        apply) and ``force`` (apply only) of a ``verb`` request."""
        from jobplane.api import fieldmanager

        query = request.query
        force = query.get("force")
        if force is not None and not apply:
            raise errors.invalid_object("PatchOptions", "meta.k8s.io", "", [
                errors.forbidden("force", "may not be specified for non-apply patch")])
        manager = query.get("fieldManager")
        if manager is not None:
            fieldmanager.validate_manager(manager)
        elif not apply:
            manager = fieldmanager.default_manager(request.headers.get("User-Agent"))
        kwargs: dict[str, Any] = {"field_manager": manager}
        if apply:
            kwargs["force"] = negotiation.truthy(force)
        return kwargs

    @staticmethod
    def _collect_warnings(warnings: list[str]) -> list[str]:
        """Let the service append admission warnings to ``warnings`` during this request."""
        warnings_var.set(warnings)
        return warnings

    async def _create(self, request: web.Request, route: Route) -> web.Response:
        info = route.info
        body = await self._object_body(request, info)
        mode = fieldvalidation.parse_mode(request.query.get("fieldValidation"))
        warnings = self._collect_warnings(fieldvalidation.check_object(info, body, mode))
        obj = await self.service.create(info, route.namespace if info.namespaced else None, body,
                                        dry_run=self._dry_run(request), **self._manager_kwargs(request, "create"))
        return json_response(obj, 201, _warning_headers(warnings))

    async def _bind(self, request: web.Request, route: Route) -> web.Response:
        """POST ``pods/<name>/binding`` with a ``v1.Binding`` body (what kube-scheduler sends)."""
        body = await self._body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the object provided is unrecognized (expected a JSON object)")
        kind = body.get("kind")
        if kind and kind != "Binding":
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind (Binding)")
        node = pods.binding_target(route.object_name, body)
        return json_response(await self.service.bind(route.pod_namespace, route.object_name, node,
                                                     dry_run=self._dry_run(request)), 201)

    async def _evict(self, request: web.Request, route: Route) -> web.Response:
        """POST ``pods/<name>/eviction`` with a ``policy/v1`` Eviction body (``kubectl drain``,
        ``create_namespaced_pod_eviction``); the service checks the body."""
        body = await self._body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the object provided is unrecognized (expected a JSON object)")
        return json_response(await self.service.evict(route.pod_namespace, route.object_name, body,
                                                      dry_run=self._dry_run(request)), 201)

    async def _update(self, request: web.Request, route: Route) -> web.Response:
        info = route.info
        body = await self._object_body(request, info)
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            decode_body(info, body)  # raises upstream's decoding error
        if meta.get("name") and meta["name"] != route.name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on "
                                     f"the URL ({route.name})")
        meta["name"] = route.name
        if route.namespace and meta.get("namespace") and meta["namespace"] != route.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace "
                                     "sent on the request")
        mode = fieldvalidation.parse_mode(request.query.get("fieldValidation"))
        warnings = self._collect_warnings(fieldvalidation.check_object(info, body, mode))
        obj = await self.service.update(info, route.namespace, route.object_name, body, route.subresource,
                                        dry_run=self._dry_run(request), **self._manager_kwargs(request, "update"))
        return json_response(obj, 200, _warning_headers(warnings))

    async def _patch(self, request: web.Request, route: Route) -> web.Response:
        info = route.info
        ptype = negotiation.patch_type(request.headers.get("Content-Type"))
        apply = ptype == negotiation.APPLY_PATCH_YAML
        patch = await self._body(request, ptype if apply else negotiation.JSON)
        if patch is None:
            raise errors.bad_request("the body of the request was empty")
        if ptype == negotiation.JSON_PATCH and isinstance(patch, list) and len(patch) > MAX_JSON_PATCH_OPERATIONS:
            raise errors.request_entity_too_large(
                f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(patch)}")
        bodyparse.check_depth(patch)
        mode = fieldvalidation.parse_mode(request.query.get("fieldValidation"))
        if apply and isinstance(patch, dict):
            warnings = self._collect_warnings(fieldvalidation.check_object(info, patch, mode))
        else:
            warnings = self._collect_warnings(fieldvalidation.check_patch(info, patch, ptype, mode))
        obj = await self.service.patch(info, route.namespace, route.object_name, patch, ptype, route.subresource,
                                       dry_run=self._dry_run(request),
                                       **self._manager_kwargs(request, "patch", apply=apply))
        return json_response(obj, 200, _warning_headers(warnings))

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        query = request.query
        opts: dict[str, Any] = {}
        if query.get("propagationPolicy"):
            opts["propagationPolicy"] = query["propagationPolicy"]
        grace = int_param(query, "gracePeriodSeconds")
        if grace is not None:
            opts["gracePeriodSeconds"] = grace
        if query.get("orphanDependents"):
            opts["orphanDependents"] = negotiation.truthy(query["orphanDependents"])
        if request.body_exists:
            body = await self._body(request)
            if body is not None and not isinstance(body, dict):
                raise errors.bad_request("the object provided is unrecognized (expected a DeleteOptions object)")
            if body:
                decode_body(_DELETE_OPTIONS, body)
                opts.update({k: v for k, v in body.items() if k not in ("kind", "apiVersion")})
        policy = opts.get("propagationPolicy")
        if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
            raise errors.invalid_object("DeleteOptions", "", "", [errors.not_supported(
                "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])])
        if policy is None and "orphanDependents" in opts:
            opts["propagationPolicy"] = "Orphan" if opts["orphanDependents"] else "Background"
        return opts

    async def _delete(self, request: web.Request, route: Route) -> web.Response:
        opts = await self._delete_options(request)
        obj, gone = await self.service.delete_ex(
            route.info, route.namespace, route.object_name, propagation_policy=opts.get("propagationPolicy"),
            grace_period_seconds=opts.get("gracePeriodSeconds"), preconditions=opts.get("preconditions"),
            dry_run=self._dry_run(request, opts.get("dryRun")))
        # Upstream answers 202 only when the object stays and the (deprecated)
        # orphanDependents=false asked for cascading; 200 otherwise.
        status = 202 if not gone and opts.get("orphanDependents") is False else 200
        return json_response(obj, status)

    async def _delete_collection(self, request: web.Request, route: Route) -> web.Response:
        query = request.query
        opts = await self._delete_options(request)
        result = await self.service.delete_collection(
            route.info, route.namespace, label_selector=query.get("labelSelector") or None,
            field_selector=query.get("fieldSelector") or None,
            propagation_policy=opts.get("propagationPolicy"))
        return json_response(result)

    # -- exec, attach, port-forward ------------------------------------------------------------

    def set_local_node(self, node_name: str, opener: Any, usage: Any = None) -> None:
        """The embedded agent: pods on ``node_name`` are streamed through ``opener(kind,
        namespace, name, options)`` and measured by ``usage()`` instead of over the network
        (``opener`` None: an agent process of this server, reached at its log endpoint like
        any node's, but its pods' ports are on this machine's loopback)."""
        self.local_node = (node_name, opener)
        self.local_usage = (node_name, usage) if usage is not None else None

    async def _metrics(self, request: web.Request, route: Route) -> web.Response:
        """``metrics.k8s.io/v1beta1`` nodes and pods, measured now by the agents."""
        from jobplane.api.selectors import parse_label_selector
        from jobplane.apiserver import logs, metrics_api

        nodes = (await self.service.list(registry.NODES, None))["items"]
        reports = await metrics_api.gather(nodes, getattr(self, "local_usage", None), logs.node_endpoint,
                                           self.token)
        now = meta.rfc3339(self.clock.now())
        selector = request.query.get("labelSelector") or None
        if route.info.kind == "NodeMetrics":
            by_name = {n["metadata"]["name"]: n for n in nodes}
            items = [metrics_api.node_metrics(by_name[r["node"]["name"]], r, now) for r in reports
                     if r["node"]["name"] in by_name]
        else:
            pods = (await self.service.list(registry.PODS, route.namespace))["items"]
            by_key = {(p["metadata"].get("namespace"), p["metadata"]["name"]): p for p in pods}
            items = [metrics_api.pod_metrics(by_key[(e["namespace"], e["name"])], e, now)
                     for r in reports for e in r["pods"] if (e["namespace"], e["name"]) in by_key]
        if selector:
            labels = parse_label_selector(selector)
            items = [i for i in items if labels.matches(i["metadata"].get("labels"))]
        items.sort(key=lambda i: (i["metadata"].get("namespace") or "", i["metadata"]["name"]))
        return json_response(metrics_api.answer(route.info, route.name, items))

    async def _pod_stream(self, request: web.Request, route: Route) -> web.StreamResponse:
        from jobplane import remotecommand as rc
        from jobplane.apiserver import podstreams

        if route.info.kind != "Pod" or route.name is None:
            raise errors.resource_not_found_path()
        kind = route.subresource or ""
        pod = await self.service.get(route.info, route.namespace, route.name)
        if kind == "portforward":
            return await self._port_forward(request, pod)
        opts = podstreams.check_options(pod, kind, rc.StreamOptions.from_query(request.query))
        if not rc.is_websocket(request):
            raise errors.bad_request("Upgrade request required")
        node = (pod.get("spec") or {}).get("nodeName")
        local = getattr(self, "local_node", None)
        if local is not None and local[0] == node and local[1] is not None:
            opener = local[1]
            ns, name = route.namespace or "", route.name
            return await rc.serve(request, opts, lambda o: opener(kind, ns, name, o))
        endpoint = await self._node_endpoint(pod)
        if endpoint is None:
            raise errors.internal_error(f"no streaming endpoint for node {node}")
        return await podstreams.relay(request, endpoint, kind, pod, opts, self.token)

    async def _port_forward(self, request: web.Request, pod: dict[str, Any]) -> web.StreamResponse:
        """The SPDY-in-WebSocket tunnel kubectl 1.32 opens first (plain SPDY, its fallback, is
        not served). Pods use their node's network: the port is dialled on the node's address
        (the loopback for the embedded agent's node)."""
        from jobplane import portforward
        from jobplane.apiserver import logs

        if not portforward.is_tunnel(request):
            raise errors.bad_request("Upgrade request required")
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or pods.phase(pod) != pods.RUNNING:
            raise errors.bad_request(f"pod {pod['metadata']['name']} is not running")
        host = "127.0.0.1"
        local = getattr(self, "local_node", None)
        if local is None or local[0] != node_name:
            node = await self.service.get(registry.NODES, None, node_name)
            endpoint = logs.node_endpoint(node)
            if endpoint:
                host = endpoint.rsplit(":", 1)[0].strip("[]")

        async def connect(port: int) -> Any:
            return await asyncio.wait_for(asyncio.open_connection(host, port), 10)

        md = pod["metadata"]
        return await portforward.serve(request, connect, md["name"], md.get("uid", ""))

    # -- logs --------------------------------------------------------------------------------

    async def _log(self, request: web.Request, route: Route) -> web.StreamResponse:
        from jobplane.apiserver import logs

        if route.info.kind != "Pod" or self.pods_dir is None:
            raise errors.resource_not_found_path()
        opts = logs.LogOptions.from_query(request.query)
        pod = await self.service.get(route.info, route.namespace, route.object_name)
        target = logs.resolve_target(pod, opts)  # raise 400s before the stream starts
        endpoint = await self._log_endpoint(pod)

        async def pod_exists() -> bool:
            if self.streams.closing:
                return False
            try:
                current = await self.service.get(route.info, route.namespace, route.object_name)
            except errors.StatusError:
                return False
            return current["metadata"].get("uid") == pod["metadata"].get("uid")

        if endpoint is not None:
            chunks = await logs.open_remote_log(endpoint, pod, target, request.query, self.token)
        else:
            chunks = logs.stream_log(self.pods_dir, pod, opts, self.clock.now(), pod_exists)
        if not opts.follow:
            return web.Response(body=b"".join([c async for c in chunks]), headers=TEXT_HEADERS)
        return await stream_text(request, chunks, lambda: self.streams.closing)

    async def _log_endpoint(self, pod: dict[str, Any]) -> str | None:
        """The pod's node's log endpoint when its files are not in this server's data dir."""
        from jobplane.apiserver import logs

        if logs.is_local(self.pods_dir, pod):
            return None
        return await self._node_endpoint(pod)

    async def _node_endpoint(self, pod: dict[str, Any]) -> str | None:
        """``host:port`` of the pod's node's endpoint (logs, exec, attach, usage)."""
        from jobplane.apiserver import logs

        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return None
        try:
            node = await self.service.get(registry.NODES, None, node_name)
        except errors.StatusError:
            return None
        return logs.node_endpoint(node)


def create_app(service: ApiService, *, token: str | None, pods_dir: Path | None = None,
               openapi: OpenApiV3 | None = None, server_address: str = "127.0.0.1:6443",
               clock: Clock | None = None, authenticator: Authenticator | None = None,
               guard: ConnectionGuard | None = None, request_timeout: float = REQUEST_TIMEOUT) -> web.Application:
    """The aiohttp application: one catch-all route into ``ApiHandler.handle``."""
    handler = ApiHandler(service, token=token, pods_dir=pods_dir, openapi=openapi,
                         server_address=server_address, clock=clock, authenticator=authenticator,
                         guard=guard, request_timeout=request_timeout)
    app = web.Application(client_max_size=MAX_BODY)
    app[HANDLER_KEY] = handler
    app.router.add_route("*", "/{tail:.*}", handler.handle)
    return app
