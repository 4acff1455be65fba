"""Watch responses: chunked, one JSON event per line (kubectl-wire.md §1.7).

The service's watch iterator is pumped into a queue by a separate task so the writer can
wake up for ``timeoutSeconds``, bookmarks and client hang-ups without cancelling the
iterator mid-step. Bursts (the initial ADDED events) are written in one chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from jobplane.api import errors
from jobplane.api.registry import ResourceInfo

log = logging.getLogger(__name__)

BOOKMARK_INTERVAL = 60.0
_IDLE_CHECK = 2.0
_MAX_BATCH = 256
_END = object()

WATCH_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-cache, private"}


@dataclass
class WatchOptions:
    timeout_seconds: float | None = None
    allow_bookmarks: bool = False
    table: bool = False
    include_object: str = "Metadata"


class EventEncoder:
    """Turns ``(type, object)`` into one line; in Table mode each object becomes a one-row
    Table, with column definitions on the first event only."""

    def __init__(self, info: ResourceInfo, opts: WatchOptions, now: Callable[[], float]) -> None:
        self.info = info
        self.opts = opts
        self.now = now
        self.first = True
        self.last_rv: str | None = None

    def encode(self, etype: str, obj: dict[str, Any]) -> bytes:
        if etype != "ERROR":
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.last_rv = rv
        if self.opts.table and etype not in ("ERROR", "BOOKMARK"):
            from jobplane.api import printers

            obj = printers.to_table(self.info, [obj], now=self.now(),
                                    list_metadata={"resourceVersion": self.last_rv or ""},
                                    include_object=self.opts.include_object, with_definitions=self.first)
            self.first = False
        return orjson.dumps({"type": etype, "object": obj}) + b"\n"

    def bookmark(self) -> bytes | None:
        if self.last_rv is None or self.opts.table:
            return None
        obj = {"kind": self.info.kind, "apiVersion": self.info.api_version,
               "metadata": {"resourceVersion": self.last_rv}}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


class OpenStreams:
    """The queues of the watches being served, so shutdown can end them at once
    instead of waiting for aiohttp's shutdown timeout."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue] = set()
        self.closing = False

    def close_all(self) -> None:
        self.closing = True
        for queue in self.queues:
            queue.put_nowait(_END)


def error_event(exc: errors.StatusError) -> tuple[str, dict[str, Any]]:
    return "ERROR", exc.to_status()


async def _pump(events: AsyncIterator[tuple[str, dict[str, Any]]], queue: asyncio.Queue) -> None:
    try:
        async for item in events:
            queue.put_nowait(item)
    except errors.StatusError as exc:
        queue.put_nowait(error_event(exc))
    except Exception as exc:  # noqa: BLE001 - reported to the client as an ERROR event
        log.exception("watch failed")
        queue.put_nowait(error_event(errors.internal_error(str(exc))))
    finally:
        queue.put_nowait(_END)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def serve_watch(request: web.Request, events: AsyncIterator[tuple[str, dict[str, Any]]],
                      encoder: EventEncoder, start_rv: str | None = None,
                      streams: OpenStreams | None = None) -> web.StreamResponse:
    """Stream ``events`` until they end, ``timeoutSeconds`` passes or the client leaves."""
    opts = encoder.opts
    if start_rv and start_rv != "0":
        encoder.last_rv = start_rv
    resp = web.StreamResponse(status=200, headers=WATCH_HEADERS)
    resp.enable_chunked_encoding()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + opts.timeout_seconds if opts.timeout_seconds else None
    queue: asyncio.Queue = asyncio.Queue()
    pump = asyncio.create_task(_pump(events, queue))
    if streams is not None:
        streams.queues.add(queue)
    try:
        await resp.prepare(request)
        next_bookmark = loop.time() + BOOKMARK_INTERVAL
        while True:
            wait = _IDLE_CHECK
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    break
            try:
                if queue.empty():
                    # (not wait_for: in 3.11 it runs the get in a task of its own, two more turns
                    # of the event loop between an event and its write)
                    async with asyncio.timeout(wait):
                        item = await queue.get()
                else:
                    item = queue.get_nowait()
            except TimeoutError:
                if _client_gone(request):
                    break
                if opts.allow_bookmarks and loop.time() >= next_bookmark:
                    next_bookmark = loop.time() + BOOKMARK_INTERVAL
                    line = encoder.bookmark()
                    if line:
                        await resp.write(line)
                continue
            chunks: list[bytes] = []
            ended = False
            while True:
                if item is _END:
                    ended = True
                    break
                chunks.append(encoder.encode(*item))
                if item[0] == "ERROR":
                    ended = True
                    break
                if len(chunks) >= _MAX_BATCH or queue.empty():
                    break
                item = queue.get_nowait()
            if chunks:
                await resp.write(b"".join(chunks))
            if ended:
                break
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
    except ConnectionError:
        # Clients hang up abruptly (kubectl wait); that is a normal end.
        pass
    finally:
        if streams is not None:
            streams.queues.discard(queue)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
    return resp
