"""The agent's log endpoint, kubelet's ``GET /containerLogs/{namespace}/{pod}/{container}``:
lets an API server that does not share this agent's data dir serve ``kubectl logs``.

HTTPS with a self-signed certificate (``DIR/pki/agent.crt``), as kubelet's default
serving certificate; requests must carry the cluster's bearer token. Query options are
the pods/log subresource's (follow, previous, timestamps, tailLines, sinceSeconds,
sinceTime, limitBytes); the files are read by ``jobplane.podlogs``, the same code the API
server uses for local pods.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from jobplane import certs, podlogs
from jobplane import remotecommand as rc
from jobplane.api import errors
from jobplane.clock import Clock
from jobplane.logstream import TEXT_HEADERS, stream_text

log = logging.getLogger(__name__)
Obj = dict[str, Any]

DEFAULT_PORT = 10250  # kubelet's
CERT_FILE = "agent.crt"
KEY_FILE = "agent.key"

PodGetter = Callable[[str, str], Awaitable[Obj | None]]


@dataclass(frozen=True)
class LogEndpoint:
    """How a standalone agent serves logs: bind ``host:port``, advertise ``address``."""

    token: str | None  # None: callers are checked with the API server (TokenReview + SubjectAccessReview)
    address: str = "127.0.0.1"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT

    def cert_names(self, hostname: str) -> tuple[list[str], list[str]]:
        """(DNS names, IPs) for the serving certificate."""
        dns = sorted({"localhost", hostname.lower()} - {""})
        ips = ["127.0.0.1"]
        try:
            ipaddress.ip_address(self.address)
            if self.address not in ips:
                ips.append(self.address)
        except ValueError:
            dns.append(self.address)
        return dns, ips


def _status(exc: errors.StatusError) -> web.Response:
    return web.Response(body=orjson.dumps(exc.to_status()), status=exc.code,
                        headers={"Content-Type": "application/json"})


class LogServer:
    """Serves this node's container logs until ``stop``."""

    def __init__(self, pods_dir: Path, token: str | None, get_pod: PodGetter, clock: Clock, *,
                 host: str = "127.0.0.1", port: int = DEFAULT_PORT, cert_dir: Path | None = None,
                 names: tuple[list[str], list[str]] | None = None, open_stream: Any = None,
                 usage: Callable[[], dict[str, Any]] | None = None,
                 review: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self.pods_dir = pods_dir
        self.usage = usage  # Agent.resource_usage: served for metrics.k8s.io
        self.open_stream = open_stream  # Agent.open_stream: exec / attach sessions
        self._expected = ("Bearer " + token).encode() if token else None
        # kubelet's webhook authentication and authorization: ask the API server who a bearer
        # token is and whether it may use this node's API; answers kept two minutes
        self.review = review
        self._reviewed: dict[str, tuple[bool, float]] = {}
        self.get_pod = get_pod
        self.clock = clock
        self.host = host
        self.port = port
        self.cert_dir = cert_dir or pods_dir.parent / "pki"
        self.names = names or (["localhost", socket.gethostname()], ["127.0.0.1"])
        self.runner: web.AppRunner | None = None
        self.closing = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/stats/usage", self.stats)
        app.router.add_get("/exec/{namespace}/{pod}/{container}", self.stream)
        app.router.add_get("/attach/{namespace}/{pod}/{container}", self.stream)
        return app

    async def stats(self, request: web.Request) -> web.Response:
        """CPU and memory use of the node and its containers (what the API server serves as
        ``metrics.k8s.io``), as JSON."""
        if not await self.authorized(request):
            return _status(errors.unauthorized())
        if self.usage is None:
            return _status(errors.resource_not_found_path())
        return web.Response(body=orjson.dumps(self.usage()), headers={"Content-Type": "application/json"})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """kubelet's ``/exec`` and ``/attach``: the API server relays ``pods/exec`` here."""
        if not await self.authorized(request):
            return _status(errors.unauthorized())
        if self.open_stream is None or not rc.is_websocket(request):
            return _status(errors.bad_request("Upgrade request required"))
        kind = request.path.split("/", 2)[1]
        ns, name = request.match_info["namespace"], request.match_info["pod"]
        opts = replace(rc.StreamOptions.from_query(request.query), container=request.match_info["container"])
        opener = self.open_stream
        return await rc.serve(request, opts, lambda o: opener(kind, ns, name, o))

    def ssl_context(self) -> ssl.SSLContext:
        cert, key = self.cert_dir / CERT_FILE, self.cert_dir / KEY_FILE
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        dns, ips = self.names
        certs.ensure_self_signed(cert, key, f"{socket.gethostname()}@jobplane-agent", dns, ips)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))
        return ctx

    async def start(self) -> int:
        """Listen; returns the bound port (``port=0`` picks a free one)."""
        self.runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, ssl_context=self.ssl_context(), reuse_address=True)
        await site.start()
        for sock in getattr(site._server, "sockets", None) or ():
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                self.port = sock.getsockname()[1]
                break
        return self.port

    async def stop(self) -> None:
        self.closing = True
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization")
        if not header:
            return False
        if self._expected is not None and hmac.compare_digest(
                header.encode("utf-8", "surrogateescape"), self._expected):  # non-UTF-8 bytes: 401, not 500
            return True
        scheme, _, token = header.partition(" ")
        if self.review is None or scheme.lower() != "bearer" or not token.strip():
            return False
        now = self.clock.now()
        cached = self._reviewed.get(token)
        if cached is not None and now < cached[1]:
            return cached[0]
        try:
            allowed = await self.review(token.strip())
        except Exception as exc:  # noqa: BLE001 - the API server unreachable: refuse, do not cache
            log.warning("could not review a caller's token with the API server: %s", exc)
            return False
        if len(self._reviewed) > 1000:
            self._reviewed.clear()
        self._reviewed[token] = (allowed, now + 120.0)
        return allowed

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok", headers=TEXT_HEADERS)

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        try:
            if not await self.authorized(request):
                raise errors.unauthorized()
            ns, name = request.match_info["namespace"], request.match_info["pod"]
            opts = podlogs.LogOptions.from_query(request.query)
            opts.container = request.match_info["container"]
            pod = await self.get_pod(ns, name)
            if pod is None:
                raise errors.not_found("pods", "", name)
            podlogs.resolve_target(pod, opts)
        except errors.StatusError as exc:
            return _status(exc)
        uid = pod["metadata"].get("uid")

        async def pod_exists() -> bool:
            if self.closing:
                return False
            try:
                current = await self.get_pod(ns, name)
            except Exception:  # noqa: BLE001 - the server is unreachable: keep following
                return True
            return current is not None and current["metadata"].get("uid") == uid

        chunks = podlogs.stream_log(self.pods_dir, pod, opts, self.clock.now(), pod_exists)
        return await stream_text(request, chunks)


def route_address(server_url: str) -> str:
    """This machine's address on the route to the API server: what the server can reach
    the agent at (kubelet picks its node IP similarly). 127.0.0.1 when it cannot tell."""
    from urllib.parse import urlsplit

    host = urlsplit(server_url).hostname or "127.0.0.1"
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((host, 9))  # UDP connect sends nothing; it only picks the route
            return sock.getsockname()[0]
    except OSError:
        return "127.0.0.1"
