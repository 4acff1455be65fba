"""The ``pods/<name>/log`` subresource.

A pod whose files are in this server's data dir (the embedded agent's pods) is read
directly with ``jobplane.podlogs``. Otherwise the request goes to the pod's node, as
kube-apiserver goes to the kubelet: ``GET https://<node address>:<kubeletEndpoint port>
/containerLogs/<namespace>/<pod>/<container>`` with the same query options and the bearer
token. Like kube-apiserver without ``--kubelet-certificate-authority``, the node's
(self-signed) serving certificate is not verified.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from jobplane.api import errors
from jobplane.api.netaddr import join_host_port
from jobplane.podlogs import (  # re-exported: the subresource's options and reader
    LogOptions,
    LogTarget,
    parse_line,
    render,
    resolve_target,
    select_lines,
    stream_log,
)

__all__ = ["LogOptions", "LogTarget", "parse_line", "render", "resolve_target", "select_lines",
           "stream_log", "node_endpoint", "is_local", "open_remote_log", "container_logs_url"]

# kube-apiserver's default --kubelet-preferred-address-types, minus the DNS kinds we never set.
_ADDRESS_PREFERENCE = ("InternalIP", "ExternalIP", "Hostname")
_FORWARDED = ("follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime", "limitBytes")
_CONNECT_TIMEOUT = 10.0
_CHUNK = 64 * 1024


def is_local(pods_dir: Path | None, pod: Mapping[str, Any]) -> bool:
    """The pod's files are in this server's data dir (the embedded agent runs it)."""
    uid = (pod.get("metadata") or {}).get("uid", "")
    return pods_dir is not None and bool(uid) and (pods_dir / uid).is_dir()


def node_endpoint(node: Mapping[str, Any]) -> str | None:
    """``host:port`` of a node's log endpoint, or None when the node serves none (port 0:
    an embedded agent, whose files the server reads itself)."""
    status = node.get("status") or {}
    endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    port = int(endpoint.get("Port") or 0)
    if port <= 0:
        return None
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or () if a.get("address")}
    for kind in _ADDRESS_PREFERENCE:
        host = addresses.get(kind)
        if host:
            return join_host_port(host, port)
    return None


def container_logs_url(endpoint: str, pod: Mapping[str, Any], container: str, query: Mapping[str, str]) -> str:
    """kubelet's URL for one container's log, forwarding only the log options."""
    meta = pod.get("metadata") or {}
    path = "/".join(quote(part, safe="") for part in (meta.get("namespace", ""), meta.get("name", ""), container))
    params = "&".join(f"{k}={quote(str(query[k]), safe='')}" for k in _FORWARDED if query.get(k) not in (None, ""))
    return f"https://{endpoint}/containerLogs/{path}" + (f"?{params}" if params else "")


async def open_remote_log(endpoint: str, pod: Mapping[str, Any], target: LogTarget, query: Mapping[str, str],
                          token: str | None) -> AsyncGenerator[bytes, None]:
    """Connect to the node and check its answer, then return the body as an iterator, so
    errors surface before a streaming response starts."""
    url = container_logs_url(endpoint, pod, target.container, query)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT))
    try:
        resp = await session.get(url, headers=headers, ssl=False)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        await session.close()
        raise errors.internal_error(f'Get "{url}": {exc}') from None
    if resp.status != 200:
        body = await resp.read()
        resp.release()
        await session.close()
        raise _remote_error(resp.status, body)

    async def chunks() -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in resp.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, OSError):
            return
        finally:
            resp.release()
            await session.close()

    return chunks()


def _remote_error(code: int, body: bytes) -> errors.StatusError:
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        return errors.StatusError.from_status(status)
    text = body.decode(errors="replace").strip()
    return errors.StatusError(code=code, reason="", message=text or f"node answered {code}")
