"""``pods/portforward``: kubelet's port-forward protocol (``portforward.k8s.io``) over a SPDY
session tunnelled in a WebSocket, which is what kubectl 1.32 opens first.

Per forwarded connection the client opens an ``error`` and a ``data`` stream with the same
``requestID`` and ``port``; the server connects to the port, copies bytes both ways on the
data stream and reports a failure on the error stream. Pods use their node's network, so
the port is reached on the node's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from jobplane import spdy

log = logging.getLogger(__name__)

TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
Connector = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def is_tunnel(request: web.Request) -> bool:
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    return request.headers.get("Upgrade", "").lower() == "websocket" and TUNNEL_PROTOCOL in offered


class _Pair:
    def __init__(self, port: int) -> None:
        self.port = port
        self.error: int | None = None
        self.data: int | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pending: list[bytes] = []
        self.client_done = False
        self.task: asyncio.Task | None = None


class Session:
    """One SPDY session: streams paired by request id, one TCP connection per pair."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], connect: Connector, pod_name: str,
                 pod_uid: str) -> None:
        self.codec = spdy.Codec()
        self.send = send
        self.connect = connect
        self.pod = (pod_name, pod_uid)
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, _Pair] = {}
        self._lock = asyncio.Lock()

    async def _write(self, data: bytes) -> None:
        async with self._lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send(data)

    async def feed(self, data: bytes) -> None:
        for frame in self.codec.feed(data):
            if frame.control:
                await self._control(frame)
            else:
                await self._data(frame)

    async def _control(self, frame: spdy.Frame) -> None:
        if frame.type == spdy.SYN_STREAM:
            await self._write(self.codec.syn_reply(frame.stream_id))
            kind = frame.headers.get("streamtype", "")
            request_id = frame.headers.get("requestid", str(frame.stream_id))
            try:
                port = int(frame.headers.get("port", ""))
            except ValueError:
                await self._write(self.codec.rst_stream(frame.stream_id, 1))
                return
            pair = self.pairs.setdefault(request_id, _Pair(port))
            if kind == "error":
                pair.error = frame.stream_id
            elif kind == "data":
                pair.data = frame.stream_id
            self.by_stream[frame.stream_id] = pair
            if frame.flags & spdy.FLAG_FIN and kind == "data":
                pair.client_done = True
            if pair.error is not None and pair.data is not None and pair.task is None:
                pair.task = asyncio.create_task(self._forward(pair))
        elif frame.type == spdy.PING:
            await self._write(self.codec.ping(int.from_bytes(frame.data[:4], "big")))
        elif frame.type == spdy.RST_STREAM:
            reset = self.by_stream.get(frame.stream_id)
            if reset is not None and reset.writer is not None:
                reset.writer.close()

    async def _data(self, frame: spdy.Frame) -> None:
        pair = self.by_stream.get(frame.stream_id)
        if pair is None or frame.stream_id != pair.data:
            return
        if frame.data:
            if pair.writer is None:
                pair.pending.append(frame.data)
            else:
                pair.writer.write(frame.data)
                with contextlib.suppress(ConnectionError):
                    await pair.writer.drain()
        if frame.flags & spdy.FLAG_FIN:
            pair.client_done = True
            if pair.writer is not None and pair.writer.can_write_eof():
                with contextlib.suppress(OSError):
                    pair.writer.write_eof()

    async def _forward(self, pair: _Pair) -> None:
        assert pair.data is not None and pair.error is not None
        name, uid = self.pod
        try:
            reader, writer = await self.connect(pair.port)
        except OSError as exc:
            message = (f"error forwarding port {pair.port} to pod {name}, uid {uid}: failed to connect to "
                       f"localhost:{pair.port}: {exc}")
            await self._write(self.codec.data(pair.error, message.encode(), fin=True))
            await self._write(self.codec.data(pair.data, b"", fin=True))
            return
        pair.writer = writer
        for chunk in pair.pending:
            writer.write(chunk)
        pair.pending.clear()
        if pair.client_done and writer.can_write_eof():
            writer.write_eof()
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                await self._write(self.codec.data(pair.data, chunk))
        except (ConnectionError, OSError):
            pass
        finally:
            await self._write(self.codec.data(pair.data, b"", fin=True))
            await self._write(self.codec.data(pair.error, b"", fin=True))
            writer.close()

    async def close(self) -> None:
        for pair in self.pairs.values():
            if pair.task is not None:
                pair.task.cancel()
            if pair.writer is not None:
                pair.writer.close()


async def serve(request: web.Request, connect: Connector, pod_name: str, pod_uid: str) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL,), max_msg_size=0)
    await ws.prepare(request)
    session = Session(ws.send_bytes, connect, pod_name, pod_uid)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                break
            await session.feed(msg.data)
    finally:
        await session.close()
    return ws
