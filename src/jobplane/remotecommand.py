"""Remote command streams (``pods/exec``, ``pods/attach``) over WebSocket, as kubelet serves
them and kube-apiserver passes them on: the ``channel.k8s.io`` subprotocols.

Every message is binary (text accepted from clients): one byte naming the channel, then the
data. Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (v4+: a ``metav1.Status`` as JSON, the
last thing sent), 4 resize (``{"Width": w, "Height": h}``); ``v5`` adds 255 "close" (the client
closed the channel named by the next byte: end of stdin). kubectl 1.32 offers v5 first (and
falls back to SPDY only when the upgrade itself fails); the Python client's ``stream()``
offers v4.

Shared by the API server (embedded agent) and the node agent's HTTPS endpoint, so it sits
beside ``logstream`` below both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson
from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
FIRST_RESIZE_WAIT = 1.0  # seconds a TTY session waits for the client's terminal size
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
             "channel.k8s.io")


@dataclass(frozen=True)
class StreamOptions:
    """``pods/exec`` / ``pods/attach`` query: which streams, a TTY, the container and command."""

    container: str
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    size: tuple[int, int] | None = None  # (width, height) of the client's terminal, sent first

    @classmethod
    def from_query(cls, query: Any) -> StreamOptions:
        def flag(name: str) -> bool:
            return (query.get(name) or "").lower() in ("true", "1")

        tty = flag("tty")
        return cls(container=query.get("container") or "", command=tuple(query.getall("command", [])),
                   stdin=flag("stdin"), stdout=flag("stdout"), stderr=flag("stderr") and not tty, tty=tty)


class Session(Protocol):
    """A running command (or an attachment to a container) the streams are wired to."""

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """``(STDOUT|STDERR, data)`` until the command's output ends."""
        ...

    async def wait(self) -> dict[str, Any]:
        """The final ``metav1.Status`` (Success, or Failure with the exit code)."""
        ...

    async def close(self) -> None:
        """The client went away: stop (exec) or detach (attach)."""
        ...


SessionOpener = Callable[[StreamOptions], Awaitable[Session]]


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(argv: list[str] | tuple[str, ...], code: int) -> dict[str, Any]:
    """kubelet's status for a non-zero exit; client-go turns it into exit code ``code`` and
    kubectl prints ``command terminated with exit code N``."""
    if code == 0:
        return success_status()
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(argv)}], exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def failure_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
            "code": 500}


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def await_terminal_size(ws: web.WebSocketResponse, opts: StreamOptions) -> tuple[StreamOptions, list[Any]]:
    """For a TTY session: the client's first messages until its terminal size (clients send
    it right away, so the command starts at that size), ``FIRST_RESIZE_WAIT`` at most.
    Returns the options with the size and the messages read (the caller still owes them to
    the session or the relay)."""
    pending: list[Any] = []
    deadline = asyncio.get_running_loop().time() + FIRST_RESIZE_WAIT
    with contextlib.suppress(TimeoutError):
        while True:
            msg = await asyncio.wait_for(ws.receive(), deadline - asyncio.get_running_loop().time())
            pending.append(msg)
            data = msg.data if msg.type == WSMsgType.BINARY else \
                msg.data.encode() if msg.type == WSMsgType.TEXT else b""
            size = _resize(data) if data[:1] == bytes([RESIZE]) else None
            if size:
                return replace(opts, size=size), pending
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT) or len(data) > 1:
                break  # stdin data or the end: start now
    return opts, pending


async def serve(request: web.Request, opts: StreamOptions, open_session: SessionOpener) -> web.StreamResponse:
    """Upgrade to a channel WebSocket, run the session, send its status, close."""
    ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True, max_msg_size=0)
    await ws.prepare(request)
    version = ws.ws_protocol or "channel.k8s.io"
    pending: list[Any] = []
    if opts.tty:
        opts, pending = await await_terminal_size(ws, opts)
    try:
        session = await open_session(opts)
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported on the error channel
        await send_status(ws, version, failure_status(str(exc)))
        await ws.close()
        return ws
    reader = asyncio.create_task(_pump_input(ws, session, version, pending))
    try:
        async for channel, data in session.output():
            if channel == STDOUT and not opts.stdout or channel == STDERR and not opts.stderr:
                continue
            await ws.send_bytes(bytes([channel]) + data)
        status = await session.wait()
        await send_status(ws, version, status)
    except (ConnectionError, asyncio.CancelledError):
        raise
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        await session.close()
        if not ws.closed:
            await ws.close()
    return ws


async def send_status(ws: web.WebSocketResponse, version: str, status: dict[str, Any]) -> None:
    if ws.closed:
        return
    if version in ("v4.channel.k8s.io", "v5.channel.k8s.io"):
        body = orjson.dumps(status)
    elif status.get("status") == "Success":
        return
    else:
        body = (status.get("message") or "").encode()
    with contextlib.suppress(ConnectionError):
        await ws.send_bytes(bytes([ERROR]) + body)


def _resize(data: bytes) -> tuple[int, int] | None:
    try:
        size = orjson.loads(data[1:])
        return int(size.get("Width") or 0), int(size.get("Height") or 0)
    except (ValueError, TypeError, AttributeError):
        return None


async def _messages(ws: web.WebSocketResponse, pending: list[Any]) -> AsyncIterator[Any]:
    for msg in pending:
        yield msg
    async for msg in ws:
        yield msg


async def _pump_input(ws: web.WebSocketResponse, session: Session, version: str, pending: list[Any]) -> None:
    """Client messages: stdin data, resize, (v5) close; the connection closing detaches."""
    async for msg in _messages(ws, pending):
        if msg.type == WSMsgType.BINARY:
            data = msg.data
        elif msg.type == WSMsgType.TEXT:
            data = msg.data.encode()
        else:
            break
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == STDIN and payload:
            await session.write_stdin(payload)
        elif channel == RESIZE and payload:
            size = _resize(data)
            if size:
                session.resize(*size)
        elif channel == CLOSE and version == "v5.channel.k8s.io" and payload[:1] == bytes([STDIN]):
            await session.close_stdin()
    await session.close_stdin()
    if ws.closed:
        await session.close()  # the client went away: an exec'd command is stopped
