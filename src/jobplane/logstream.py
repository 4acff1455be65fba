"""Serving a pod log over HTTP: the ``text/plain`` headers and the chunked copy of a log
stream into an aiohttp response.

Why a module of its own: the API server's ``pods/log`` and the agent's log endpoint send
logs the same way; one implementation keeps their wire behaviour identical.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from aiohttp import web

TEXT_HEADERS = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache, private"}


def _never() -> bool:
    return False


async def stream_text(request: web.Request, chunks: AsyncGenerator[bytes, None],
                      stop: Callable[[], bool] = _never) -> web.StreamResponse:
    """Write ``chunks`` as a chunked 200 response until they end, the client goes away, or
    ``stop()`` (checked after each chunk) says the server is closing; always closes ``chunks``."""
    resp = web.StreamResponse(status=200, headers=TEXT_HEADERS)
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        async for chunk in chunks:
            await resp.write(chunk)
            if stop():
                break
        await resp.write_eof()
    except ConnectionError:
        pass
    finally:
        await chunks.aclose()
    return resp
