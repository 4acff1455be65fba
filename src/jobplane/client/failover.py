"""An HTTPS client over several API servers that share one store: when the current server
cannot be reached, the next one is used, so a node agent survives the loss of the server
it was talking to. All servers must share the CA and token (``jobplane server --pki-dir``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import aiohttp

from jobplane.client.http import JSON, HttpClient, RawResponse

log = logging.getLogger(__name__)


class FailoverHttpClient(HttpClient):
    """``HttpClient`` on ``servers[0]``, moving on to the next server on connection errors.

    A request that failed to connect is retried on the other servers (nothing reached the
    failed one); a request cut off mid-way is not retried (it may have been applied), but
    later requests go to the next server. Watches switch the same way and the informer's
    reconnect resumes them there: resourceVersions are the shared store's."""

    def __init__(self, servers: Sequence[str], token: str | None = None, **kwargs: Any) -> None:
        if not servers:
            raise ValueError("at least one server URL is required")
        super().__init__(servers[0], token, **kwargs)
        self.servers = [s.rstrip("/") for s in servers]
        self._index = 0

    def _fail_over(self, failed: str, exc: BaseException) -> None:
        if len(self.servers) < 2 or self.server != failed:
            return  # another request already moved on
        self._index = (self._index + 1) % len(self.servers)
        self.server = self.servers[self._index]
        log.warning("API server %s unreachable (%s); using %s", failed, exc, self.server)

    async def request(self, method: str, path: str, **kwargs: Any) -> RawResponse:
        for attempt in range(len(self.servers)):
            server = self.server
            try:
                return await super().request(method, path, **kwargs)
            except aiohttp.ClientConnectorError as exc:
                self._fail_over(server, exc)
                if attempt == len(self.servers) - 1:
                    raise
            except (aiohttp.ClientConnectionError, OSError) as exc:
                self._fail_over(server, exc)
                raise
        raise AssertionError("unreachable")

    async def _stream(self, path: str, params: dict[str, str], accept: str = JSON) -> AsyncGenerator[bytes, None]:
        server = self.server
        try:
            async for chunk in super()._stream(path, params, accept):
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:
            self._fail_over(server, exc)
            raise
