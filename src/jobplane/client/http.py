"""HTTP transport: the ``Client`` verbs over HTTPS with a bearer token (agent on another
machine, CLI).

One aiohttp session per client (keep-alive connection pool), TLS verified against the
cluster CA from the kubeconfig. URLs come from ``api.registry``; every non-2xx answer
becomes ``StatusError`` (from the server's ``Status`` body when it sent one, otherwise
with upstream's generic message). Watches read newline-delimited JSON events; an
``ERROR`` event is raised as ``StatusError`` (410 Expired included). ``Warning: 299``
response headers are handed to ``on_warning``.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from jobplane.api import errors
from jobplane.api.errors import StatusError
from jobplane.api.registry import ResourceInfo
from jobplane.client.base import MERGE_PATCH, Client, Obj
from jobplane.client.targets import resource_info, update_target

log = logging.getLogger(__name__)

USER_AGENT = "jobplane"
JSON = "application/json"

# Reason of an error answer that carries no Status, by code (apimachinery's
# NewGenericServerResponse).
_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
    503: "ServiceUnavailable", 504: "Timeout",
}


def error_from_response(status: int, body: bytes, method: str = "", what: str = "") -> StatusError:
    """The ``StatusError`` for a non-2xx answer."""
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        err = StatusError.from_status(data)
        if not data.get("code"):
            err.code = status
        return err
    reason = _REASONS.get(status, "Unknown")
    text = body.decode("utf-8", "replace").strip()
    if text:
        message = f'an error on the server ("{text}") has prevented the request from succeeding'
    else:
        message = "the server has prevented the request from succeeding"
    if method and what:
        message += f" ({method.lower()} {what})"
    return StatusError(status, reason, message)


def parse_warning(header: str) -> str:
    """``299 - "text"`` -> ``text`` (RFC 7234 warn-text, as client-go unquotes it)."""
    parts = header.split(" ", 2)
    if len(parts) == 3 and parts[0].isdigit():
        text = parts[2].strip()
        if text.startswith('"'):
            try:
                return str(orjson.loads(text))
            except orjson.JSONDecodeError:
                return text.strip('"')
        return text
    return header


def delete_options(propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                   preconditions: Obj | None = None) -> Obj:
    body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy:
        body["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    if preconditions:
        body["preconditions"] = preconditions
    return body


def _params(**kw: Any) -> dict[str, str]:
    """Query parameters, dropping None/False; booleans as ``true``."""
    out: dict[str, str] = {}
    for key, value in kw.items():
        if value is None or value is False or value == "":
            continue
        out[key] = "true" if value is True else str(value)
    return out


def _path(info: ResourceInfo, namespace: str | None, name: str | None = None,
          subresource: str | None = None) -> str:
    ns = namespace if info.namespaced else None
    path = info.object_path(ns, name) if name else info.collection_path(ns)
    return f"{path}/{subresource}" if subresource else path


async def iter_lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """Split a byte stream into lines of any length (aiohttp's readline caps them)."""
    buf = b""
    async for chunk in chunks:
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1:]
            if line.strip():
                yield line
    if buf.strip():
        yield buf


def ssl_context(ca_file: str | None = None, ca_data: str | bytes | None = None, *, insecure: bool = False,
                cert_file: str | None = None, key_file: str | None = None,
                cert_data: bytes | None = None, key_data: bytes | None = None) -> ssl.SSLContext:
    """A client TLS context trusting the cluster CA (and presenting a client certificate if given)."""
    if insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_file or ca_data:
        cadata = ca_data.decode() if isinstance(ca_data, bytes) else ca_data
        ctx = ssl.create_default_context(cafile=ca_file, cadata=cadata)
    else:
        ctx = ssl.create_default_context()
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    elif cert_data and key_data:
        # ssl only loads chains from files: write them to a private temp dir briefly.
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for path, data in ((cert_path, cert_data), (key_path, key_data)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            ctx.load_cert_chain(cert_path, key_path)
    return ctx


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    warnings: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


class HttpClient(Client):
    def __init__(self, server: str, token: str | None = None, ca_file: str | None = None,
                 ca_data: str | bytes | None = None, *, insecure: bool = False,
                 cert_file: str | None = None, key_file: str | None = None,
                 cert_data: bytes | None = None, key_data: bytes | None = None,
                 namespace: str = "default", request_timeout: float = 60.0,
                 user_agent: str = USER_AGENT, on_warning: Callable[[str], None] | None = None,
                 max_connections: int = 100, session: Any = None, unix_socket: str | None = None,
                 typed_after: int | None = None) -> None:
        self.server = server.rstrip("/")
        self.unix_socket = unix_socket  # reach ``server`` over this socket (the server's own agent process)
        # the server's ``ApiService.typed_after``, when this client talks to one server that
        # says so (its own agent process): informers need not type-check what it wrote
        self._typed_after = typed_after
        self.token = token
        self.namespace = namespace  # the kubeconfig context's namespace, for callers (CLI)
        self.request_timeout = request_timeout
        self.on_warning = on_warning
        self.max_connections = max_connections
        self._ssl: ssl.SSLContext | None = None
        if self.server.startswith("https://"):
            self._ssl = ssl_context(ca_file, ca_data, insecure=insecure, cert_file=cert_file, key_file=key_file,
                                    cert_data=cert_data, key_data=key_data)
        self._headers = {"User-Agent": user_agent, "Accept": JSON}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session = session  # injectable for tests

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str] | None = None, context: str | None = None,
                        **kwargs: Any) -> HttpClient:
        from jobplane.client.kubeconfig import load_kubeconfig

        cfg = load_kubeconfig(path, context)
        return cls(cfg.server, cfg.token, ca_file=cfg.ca_file, ca_data=cfg.ca_data, insecure=cfg.insecure,
                   cert_file=cfg.cert_file, key_file=cfg.key_file, cert_data=cfg.cert_data,
                   key_data=cfg.key_data, namespace=cfg.namespace, **kwargs)

    def typed_after(self) -> int | None:
        """Revisions above this were type-checked when the server wrote them (None: unknown)."""
        return self._typed_after

    @staticmethod
    def informer_watch_timeout() -> int:
        """``timeoutSeconds`` for informer watches: random in [300, 600) as client-go does, so
        a silently dead connection is replaced and reconnects spread out."""
        return random.randint(300, 599)

    # -- plumbing ----------------------------------------------------------------------
    def _get_session(self) -> Any:
        if self._session is None and self.unix_socket is not None:
            self._session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(
                path=self.unix_socket, limit=self.max_connections, keepalive_timeout=60))
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False,
                                             limit=self.max_connections, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _warn(self, resp: Any) -> list[str]:
        found = [parse_warning(w) for w in resp.headers.getall("Warning", [])] \
            if hasattr(resp.headers, "getall") else []
        for w in found:
            if self.on_warning is not None:
                self.on_warning(w)
            else:
                log.warning("server warning: %s", w)
        return found

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = JSON, accept: str | None = None,
                      headers: dict[str, str] | None = None, raise_for_status: bool = True) -> RawResponse:
        """One request on a path of the server (``/api/v1/...``, ``/apis``, ``/version``);
        ``body`` is JSON-encoded unless it is bytes. Raises StatusError on non-2xx unless
        ``raise_for_status`` is False."""
        hdrs = {**self._headers, **(headers or {})}
        if accept:
            hdrs["Accept"] = accept
        data = None
        if body is not None:
            data = body if isinstance(body, bytes | bytearray) else orjson.dumps(body)
            hdrs["Content-Type"] = content_type
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        async with self._get_session().request(method, self.server + path, params=params, data=data,
                                               headers=hdrs, timeout=timeout) as resp:
            raw = await resp.read()
            warnings = self._warn(resp)
            if raise_for_status and not 200 <= resp.status < 300:
                raise error_from_response(resp.status, raw, method, path)
            return RawResponse(resp.status, dict(resp.headers), raw, warnings)

    async def _json(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None,
                    content_type: str = JSON) -> Obj:
        resp = await self.request(method, path, params=params, body=body, content_type=content_type)
        return resp.json()

    async def _stream(self, path: str, params: dict[str, str], accept: str = JSON) -> AsyncGenerator[bytes, None]:
        """GET with no read timeout, yielding body chunks as they come."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
        hdrs = {**self._headers, "Accept": accept}
        async with self._get_session().request("GET", self.server + path, params=params, headers=hdrs,
                                               timeout=timeout) as resp:
            if not 200 <= resp.status < 300:
                raise error_from_response(resp.status, await resp.read(), "GET", path)
            async for chunk in resp.content.iter_any():
                yield chunk

    # -- verbs -------------------------------------------------------------------------
    async def get(self, resource: str, name: str, namespace: str | None = None,
                  subresource: str | None = None) -> Obj:
        info = resource_info(resource)
        return await self._json("GET", _path(info, namespace, name, subresource))

    async def list(self, resource: str, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None) -> Obj:
        info = resource_info(resource)
        return await self._json("GET", _path(info, namespace), params=_params(
            labelSelector=label_selector, fieldSelector=field_selector, limit=limit, **{"continue": continue_}))

    async def create(self, resource: str, body: Obj, namespace: str | None = None,
                     subresource: str | None = None) -> Obj:
        info = resource_info(resource)
        if namespace is None and info.namespaced:
            namespace = (body.get("metadata") or {}).get("namespace")
        if info.namespaced and not namespace:
            raise errors.bad_request("the namespace of the object is required for a namespaced resource")
        if subresource:
            name = (body.get("metadata") or {}).get("name") or ""
            return await self._json("POST", _path(info, namespace, name, subresource), body=body)
        return await self._json("POST", _path(info, namespace), body=body)

    async def update(self, resource: str, body: Obj, namespace: str | None = None,
                     subresource: str | None = None) -> Obj:
        info, namespace, name = update_target(resource, body, namespace)
        return await self._json("PUT", _path(info, namespace, name, subresource), body=body)

    async def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None,
                    patch_type: str = MERGE_PATCH, subresource: str | None = None) -> Obj:
        info = resource_info(resource)
        return await self._json("PATCH", _path(info, namespace, name, subresource), body=patch,
                                content_type=patch_type)

    async def delete(self, resource: str, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None,
                     preconditions: Obj | None = None) -> Obj:
        info = resource_info(resource)
        return await self._json("DELETE", _path(info, namespace, name),
                                body=delete_options(propagation_policy, grace_period_seconds, preconditions))

    async def delete_collection(self, resource: str, namespace: str | None = None, *,
                                label_selector: str | None = None,
                                field_selector: str | None = None,
                                propagation_policy: str | None = None) -> Obj:
        info = resource_info(resource)
        return await self._json("DELETE", _path(info, namespace),
                                params=_params(labelSelector=label_selector, fieldSelector=field_selector),
                                body=delete_options(propagation_policy))

    async def watch(self, resource: str, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = False) -> AsyncGenerator[tuple[str, Obj], None]:
        info = resource_info(resource)
        params = _params(watch=True, resourceVersion=resource_version, labelSelector=label_selector,
                         fieldSelector=field_selector, timeoutSeconds=timeout_seconds,
                         allowWatchBookmarks=allow_bookmarks)
        async for line in iter_lines(self._stream(_path(info, namespace), params)):
            event = orjson.loads(line)
            etype, obj = event.get("type", ""), event.get("object") or {}
            if etype == "ERROR":
                raise StatusError.from_status(obj)
            yield etype, obj

    async def read_log(self, name: str, namespace: str, *, container: str | None = None, follow: bool = False,
                       tail_lines: int | None = None, since_seconds: int | None = None,
                       timestamps: bool = False, previous: bool = False) -> AsyncGenerator[bytes, None]:
        """The pod's ``log`` subresource as raw byte chunks (until the server ends it)."""
        from jobplane.api.registry import PODS

        params = _params(container=container, follow=follow, tailLines=tail_lines, sinceSeconds=since_seconds,
                         timestamps=timestamps, previous=previous)
        async for chunk in self._stream(_path(PODS, namespace, name, "log"), params, "application/json, */*"):
            yield chunk
