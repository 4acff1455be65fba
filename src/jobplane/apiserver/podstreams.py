"""``pods/exec`` and ``pods/attach`` in the API server: check the request, then run the
stream against the embedded agent directly, or relay it to the pod's node agent as
kube-apiserver relays it to the kubelet (``/exec/{namespace}/{pod}/{container}``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import WSMsgType, web

from jobplane import remotecommand as rc
from jobplane.api import errors

# The embedded agent: node name and ``open(kind, namespace, name, opts) -> Session``.
LocalOpener = Callable[[str, str, str, rc.StreamOptions], Awaitable[rc.Session]]


def check_options(pod: dict[str, Any], kind: str, opts: rc.StreamOptions) -> rc.StreamOptions:
    """400s as upstream's ``PodExecOptions`` / ``PodAttachOptions`` validation and
    ``ExecLocation``; the default container is the pod's first."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    names = [c["name"] for c in (*(spec.get("containers") or ()), *(spec.get("initContainers") or ()),
                                 *(spec.get("ephemeralContainers") or ()))]
    container = opts.container
    if not container:
        containers = [c["name"] for c in spec.get("containers") or ()]
        if len(containers) != 1:
            raise errors.bad_request(f"a container name must be specified for pod {name}, "
                                     f"choose one of: [{' '.join(containers)}]")
        container = containers[0]
    if container not in names:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    if not (opts.stdin or opts.stdout or opts.stderr):
        raise errors.bad_request("you must specify at least one of stdin, stdout, stderr")
    if kind == "exec" and not opts.command:
        raise errors.bad_request("you must specify at least 1 command")
    if not spec.get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    return rc.StreamOptions(container=container, command=opts.command, stdin=opts.stdin, stdout=opts.stdout,
                            stderr=opts.stderr, tty=opts.tty)


def _query(opts: rc.StreamOptions) -> str:
    pairs: list[tuple[str, str]] = [("command", c) for c in opts.command]
    for flag in ("stdin", "stdout", "stderr", "tty"):
        if getattr(opts, flag):
            pairs.append((flag, "true"))
    return urlencode(pairs)


async def relay(request: web.Request, endpoint: str, kind: str, pod: dict[str, Any], opts: rc.StreamOptions,
                token: str | None) -> web.StreamResponse:
    """Proxy the WebSocket to the node agent frame by frame, in the subprotocol the client and
    this server agree on. A TTY session's first resize is read here before the agent is
    dialled and sent first, so the agent (which waits ``rc.FIRST_RESIZE_WAIT`` for it from
    its own accept) starts the command at the client's size however long the dial took."""
    meta = pod["metadata"]
    path = "/".join(quote(p, safe="") for p in (meta.get("namespace", ""), meta["name"], opts.container))
    url = f"wss://{endpoint}/{kind}/{path}?{_query(opts)}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ws = web.WebSocketResponse(protocols=rc.PROTOCOLS, max_msg_size=0)
    await ws.prepare(request)
    version = ws.ws_protocol or "channel.k8s.io"
    pending: list[Any] = []
    if opts.tty:
        _, pending = await rc.await_terminal_size(ws, opts)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
    try:
        upstream = await session.ws_connect(url, protocols=(ws.ws_protocol,) if ws.ws_protocol else rc.PROTOCOLS,
                                            headers=headers, ssl=False, max_msg_size=0)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        await session.close()
        await rc.send_status(ws, version, rc.failure_status(f"error dialing backend: {exc}"))
        await ws.close()
        return ws
    for msg in pending:
        if msg.type == WSMsgType.BINARY:
            await upstream.send_bytes(msg.data)
        elif msg.type == WSMsgType.TEXT:
            await upstream.send_str(msg.data)

    async def down() -> None:
        async for msg in upstream:
            if msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            else:
                break

    async def up() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await upstream.send_str(msg.data)
            else:
                break

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await upstream.close()
        await session.close()
        if not ws.closed:
            await ws.close()
    return ws
