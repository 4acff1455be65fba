"""Connection limits for the HTTPS listener: what Go's ``http.Server`` gives kube-apiserver
(``ReadHeaderTimeout`` 32 s, ``IdleTimeout`` 90 s) plus two guards against a flood of idle
connections, which aiohttp and asyncio lack.

* **Header read timeout**: a connection that has not sent a complete request within
  ``header_timeout`` seconds of being accepted (TLS handshake included) is closed.
* **Idle keep-alive timeout**: aiohttp's ``keepalive_timeout`` (set by the server from
  ``idle_timeout``) closes a connection idle that long after a response; it also bounds
  the headers of a later request on the same connection.
* **Unauthenticated connections**: every accepted connection counts as unauthenticated
  until one of its requests carries valid credentials. Beyond ``max_unauthenticated``, the
  oldest unauthenticated connection is closed, so new connections (a real client's
  included) always get their chance, and idle ones can never eat the file descriptors.
* **Out of file descriptors**: ``accept`` failing with EMFILE/ENFILE closes the oldest
  unauthenticated connections to free descriptors, logs one line at most once a second
  (no traceback), and lets asyncio retry the listener a second later.

The guard sees connections at ``accept`` through ``GuardedSocket``, the listening socket
handed to the event loop, so it holds the very socket object the transport owns: closing is
a ``shutdown``, after which the transport closes itself and frees the descriptor.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ASYNCIO_ACCEPT_MESSAGE = "socket.accept() out of system resource"
SWEEP_PERIOD = 1.0
LOG_INTERVAL = 1.0
EVICT_ON_EMFILE = 16  # connections closed per EMFILE, so the retry a second later succeeds


def effective_limit(configured: int) -> int:
    """The unauthenticated-connection limit, at most half of this process's file
    descriptors so the store, pods and authenticated clients always keep the rest."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return configured
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return configured
    return max(1, min(configured, soft // 2))


class _Conn:
    __slots__ = ("sock", "accepted", "seen")

    def __init__(self, sock: socket.socket, accepted: float) -> None:
        self.sock = sock
        self.accepted = accepted
        self.seen = False  # a complete request arrived (a public one: still unauthenticated)


class ConnectionGuard:
    """Tracks unauthenticated connections by file descriptor, in accept order."""

    def __init__(self, *, max_unauthenticated: int, header_timeout: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_unauthenticated = max(1, max_unauthenticated)
        self.header_timeout = header_timeout
        self.monotonic = monotonic
        self.pending: dict[int, _Conn] = {}
        self.closed_for_limit = 0
        self.closed_for_timeout = 0
        self.accept_failures = 0
        self._last_log = float("-inf")
        self._suppressed = 0
        self._sweeper: asyncio.Task | None = None

    # -- accept side --------------------------------------------------------------------------

    def accepted(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        self.pending.pop(fd, None)  # a descriptor number reused after an earlier close
        if len(self.pending) >= self.max_unauthenticated:
            self._prune()
            while len(self.pending) >= self.max_unauthenticated:
                if self._close_oldest():
                    self.closed_for_limit += 1
        self.pending[fd] = _Conn(sock, self.monotonic())

    def accept_failed(self, exc: OSError) -> None:
        """EMFILE and friends: free descriptors, say so once a second at most."""
        self.accept_failures += 1
        self._prune()
        freed = 0
        while freed < EVICT_ON_EMFILE and self.pending:
            if self._close_oldest():
                freed += 1
        self.closed_for_limit += freed
        now = self.monotonic()
        if now - self._last_log >= LOG_INTERVAL:
            extra = f" ({self._suppressed} more since the last message)" if self._suppressed else ""
            log.warning("accept failed: %s; closed %d unauthenticated connections, retrying in 1 s%s",
                        exc.strerror or exc, freed, extra)
            self._last_log, self._suppressed = now, 0
        else:
            self._suppressed += 1

    # -- request side -------------------------------------------------------------------------

    def request_seen(self, transport: Any, authenticated: bool) -> None:
        """A complete request arrived on this connection; an authenticated one is no longer
        tracked at all."""
        if not self.pending or transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is None:
            return
        fd = sock.fileno()
        conn = self.pending.get(fd)
        if conn is None:
            return
        if authenticated:
            del self.pending[fd]
        else:
            conn.seen = True

    # -- housekeeping -------------------------------------------------------------------------

    def sweep(self) -> int:
        """Close connections that sent no complete request within the header timeout."""
        deadline = self.monotonic() - self.header_timeout
        closed = 0
        for fd, conn in list(self.pending.items()):
            if conn.sock.fileno() == -1:
                del self.pending[fd]
            elif not conn.seen and conn.accepted <= deadline:
                del self.pending[fd]
                _shutdown(conn.sock)
                closed += 1
        self.closed_for_timeout += closed
        return closed

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_PERIOD)
            self.sweep()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = loop.create_task(self.run_sweeper(), name="connection-guard")
        previous = loop.get_exception_handler()

        def handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if context.get("message") == ASYNCIO_ACCEPT_MESSAGE:
                return  # already counted and logged (rate-limited) by accept_failed
            if previous is not None:
                previous(lp, context)
            else:
                lp.default_exception_handler(context)

        loop.set_exception_handler(handler)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    def _prune(self) -> None:
        for fd in [fd for fd, c in self.pending.items() if c.sock.fileno() == -1]:
            del self.pending[fd]

    def _close_oldest(self) -> bool:
        """Close the oldest tracked connection; False when it had closed already."""
        fd = next(iter(self.pending))
        conn = self.pending.pop(fd)
        if conn.sock.fileno() == -1:
            return False
        _shutdown(conn.sock)
        return True


def _shutdown(sock: socket.socket) -> None:
    """The transport sees end of file and closes (and frees the descriptor) itself."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class GuardedSocket(socket.socket):
    """A listening socket that reports every accepted connection (and every failed accept)
    to its guard; asyncio's accept loop calls ``accept`` on it directly."""

    guard: ConnectionGuard | None = None

    def accept(self) -> tuple[socket.socket, Any]:
        try:
            conn, addr = super().accept()
        except OSError as exc:
            if exc.errno in OUT_OF_FDS and self.guard is not None:
                self.guard.accept_failed(exc)
            raise
        if self.guard is not None:
            self.guard.accepted(conn)
        return conn, addr


def listen_socket(host: str, port: int, guard: ConnectionGuard) -> GuardedSocket:
    """A bound (not yet listening) socket for ``host:port``; asyncio calls ``listen``."""
    bind_host = host or "0.0.0.0"
    family, _type, proto, _canon, addr = socket.getaddrinfo(
        bind_host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = GuardedSocket(family, socket.SOCK_STREAM, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    sock.guard = guard
    return sock
