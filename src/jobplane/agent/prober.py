"""Running probes and lifecycle hooks: the checks themselves (a command run in the container
through the runtime's exec seam, an HTTP GET, a TCP connect, a gRPC health check:
``agent/grpcprobe.py``) and the timers of one container's probes. What the results mean is
decided in ``agent/probes.py``.

Pods use their node's network, so an ``httpGet`` or ``tcpSocket`` without a host, and every
``grpc`` probe (which has no host field), goes to the pod IP (the node's address).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

from jobplane.agent import grpcprobe
from jobplane.agent import probes as pr
from jobplane.agent.spec import expand
from jobplane.api.netaddr import join_host_port
from jobplane.clock import Clock

Obj = dict[str, Any]
# Runs argv in the container: (exit code, combined stdout and stderr, at most MAX_OUTPUT
# bytes); raises TimeoutError once ``timeout`` (None: no limit) passed and the command was
# killed, ValueError or OSError when it cannot run (the container is not running).
ExecFn = Callable[[list[str], "float | None"], Awaitable[tuple[int, bytes]]]
Check = tuple[pr.Outcome, str, "str | None"]  # outcome, output, error (could not be run)

MAX_REDIRECTS = 10


async def within(clock: Clock, awaitable: Awaitable[Any], timeout: float | None) -> Any:
    """``awaitable``'s value, or TimeoutError once ``timeout`` passed on ``clock`` (cancelled)."""
    task = asyncio.ensure_future(awaitable)
    if timeout is None:
        return await task
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise TimeoutError


# ------------------------------------------------------------------------------- HTTP


class HttpError(Exception):
    """A GET that got no response; the text is Go's ``client.Do`` error."""


def _dial_error(host: str, port: int, exc: BaseException) -> str:
    addr = join_host_port(host, port)
    if isinstance(exc, TimeoutError):
        return f"dial tcp {addr}: i/o timeout"
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {addr}: connect: connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return f"dial tcp {addr}: connect: {exc.strerror.lower()}"
    return f"dial tcp {addr}: {exc}"


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], limit: int) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = bytearray()
        while len(out) < limit:
            size_line = await reader.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            out.extend(await reader.readexactly(size))
            await reader.readline()
        return bytes(out[:limit])
    length = headers.get("content-length")
    if length is not None:
        return await reader.readexactly(min(int(length), limit))
    return await reader.read(limit)


async def _get_once(req: pr.HttpRequest, limit: int) -> tuple[int, dict[str, str], bytes]:
    context = None
    if req.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # kubelet's probes skip verification too
    try:
        reader, writer = await asyncio.open_connection(req.host, req.port, ssl=context)
    except (OSError, TimeoutError) as exc:
        raise HttpError(_dial_error(req.host, req.port, exc)) from None
    try:
        host_header = next((v for n, v in req.headers if n.lower() == "host"), join_host_port(req.host, req.port))
        lines = [f"GET {req.target} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{n}: {v}" for n, v in req.headers if n.lower() not in ("host", "connection")]
        lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise HttpError("EOF")
        parts = status_line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise HttpError(f"malformed HTTP response {status_line.decode('latin-1').strip()!r}")
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        try:
            body = await _read_body(reader, headers, limit)
        except (asyncio.IncompleteReadError, ValueError):
            body = b""
        return int(parts[1]), headers, body
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise HttpError("EOF" if isinstance(exc, asyncio.IncompleteReadError) else str(exc).lower()) from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def http_get(req: pr.HttpRequest, limit: int = pr.MAX_OUTPUT) -> tuple[int, str]:
    """GET ``req`` (no keep-alive), following redirects on the same host as kubelet's
    probes do (at most 10); (status, body up to ``limit``). HttpError without a response."""
    current = req
    for _ in range(MAX_REDIRECTS + 1):
        try:
            status, headers, body = await _get_once(current, limit)
        except HttpError as exc:
            raise HttpError(f'Get "{current.url}": {exc}') from None
        location = headers.get("location")
        if not (300 <= status < 400) or not location:
            return status, body.decode("utf-8", "replace")
        target = urljoin(current.url, location)
        parts = urlsplit(target)
        if parts.hostname != urlsplit(req.url).hostname:
            return status, body.decode("utf-8", "replace")  # another host: the 3xx is the answer
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        port = parts.port or (443 if parts.scheme == "https" else 80)
        current = pr.HttpRequest(url=target, host=parts.hostname or current.host, port=port,
                                 scheme=parts.scheme or current.scheme, target=path, headers=current.headers)
    raise HttpError(f'Get "{current.url}": stopped after {MAX_REDIRECTS} redirects')


async def tcp_connect(host: str, port: int) -> None:
    """Open and close a TCP connection; OSError when it cannot be made."""
    _reader, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


# ----------------------------------------------------------------------------- checks


def static_command(command: list[str], cspec: Obj) -> list[str]:
    """``ExpandContainerCommandOnlyStatic``: ``$(VAR)`` from the container's literal ``env``
    values only (a variable set with ``valueFrom`` expands to nothing)."""
    env = {str(e.get("name")): str(e.get("value") or "") for e in cspec.get("env") or () if e.get("name")}
    return [expand(str(arg), env) for arg in command]


async def run_check(spec: pr.ProbeSpec, cspec: Obj, pod_ip: str, exec_fn: ExecFn, clock: Clock) -> Check:
    """One check of a probe, as kubelet's prober runs it (``runProbe``)."""
    timeout = spec.timeout
    if spec.handler == "exec":
        argv = static_command(list(spec.action.get("command") or ()), cspec)
        if not argv:
            return pr.Outcome.UNKNOWN, "", "exec probe has no command"
        try:
            code, output = await exec_fn(argv, timeout)
        except TimeoutError:
            return pr.Outcome.FAILURE, f'command "{" ".join(argv)}" timed out', None
        except (OSError, ValueError) as exc:
            return pr.Outcome.UNKNOWN, "", str(exc)
        return (pr.Outcome.SUCCESS if code == 0 else pr.Outcome.FAILURE), output.decode("utf-8", "replace"), None
    if spec.handler == "httpGet":
        try:
            req = pr.http_request(spec.action, cspec, pod_ip, "probe")
        except pr.ProbeConfigError as exc:
            return pr.Outcome.UNKNOWN, "", str(exc)
        try:
            status, body = await within(clock, http_get(req), timeout)
        except TimeoutError:
            return (pr.Outcome.FAILURE,
                    f'Get "{req.url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)', None)
        except HttpError as exc:
            return pr.Outcome.FAILURE, str(exc), None
        outcome, text = pr.http_outcome(status, body)
        return outcome, text, None
    if spec.handler == "tcpSocket":
        try:
            port = pr.resolve_port(spec.action.get("port"), cspec)
        except pr.ProbeConfigError as exc:
            return pr.Outcome.UNKNOWN, "", str(exc)
        host = str(spec.action.get("host") or pod_ip)
        try:
            await within(clock, tcp_connect(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            return pr.Outcome.FAILURE, _dial_error(host, port, exc), None
        return pr.Outcome.SUCCESS, "", None
    if spec.handler == "grpc":
        port = int(spec.action.get("port") or 0)
        service = str(spec.action.get("service") or "")
        progress = grpcprobe.Progress()
        try:
            outcome, text = await within(clock, grpcprobe.health_check(pod_ip, port, service, progress, clock.sleep),
                                         timeout)
        except TimeoutError:
            return pr.Outcome.FAILURE, grpcprobe.timeout_message(pod_ip, port, timeout or 0, progress), None
        return outcome, text, None
    return pr.Outcome.UNKNOWN, "", f"missing probe handler for container {cspec.get('name')}"


# ------------------------------------------------------------------------------ hooks


async def run_hook(handler: Obj, cspec: Obj, pod_ip: str, exec_fn: ExecFn, clock: Clock) -> str | None:
    """Run a lifecycle hook to its end (lifecycle/handlers.go Run); None when it succeeded,
    else the error (the caller words the message with ``probes.hook_failure_message``).
    An HTTP hook fails only when no response came; its status code is not looked at."""
    if handler.get("exec") is not None:
        argv = [str(a) for a in handler["exec"].get("command") or ()]
        try:
            code, output = await exec_fn(argv, None)
        except (OSError, ValueError, TimeoutError) as exc:
            return str(exc) or type(exc).__name__
        if code != 0:
            return f"command '{' '.join(argv)}' exited with {code}: {output.decode('utf-8', 'replace')}"
        return None
    if handler.get("httpGet") is not None:
        action = {"path": "/", "scheme": "HTTP", **handler["httpGet"]}
        try:
            await http_get(pr.http_request(action, cspec, pod_ip, "lifecycle"))
        except (HttpError, pr.ProbeConfigError) as exc:
            return str(exc)
        return None
    if handler.get("sleep") is not None:
        await clock.sleep(float(handler["sleep"].get("seconds") or 0))
        return None
    return f"invalid handler: {handler}"


# ------------------------------------------------------------------- one container's probes


class ContainerProber:
    """The probes of one container run, one task each, on ``clock``. ``check(spec)`` runs one
    check; ``on_event(reason, message)`` records a Warning event on the pod;
    ``on_result(kind, result)`` is told of each change of a published result."""

    def __init__(self, specs: dict[str, pr.ProbeSpec], clock: Clock, started_at: float,
                 check: Callable[[pr.ProbeSpec], Awaitable[Check]],
                 on_event: Callable[[str, str], None], on_result: Callable[[str, pr.Result], None]) -> None:
        self.specs = specs
        self.clock = clock
        self.started_at = started_at
        self._check = check
        self._on_event = on_event
        self._on_result = on_result
        self.trackers = {kind: pr.ProbeTracker(spec) for kind, spec in specs.items()}
        self._triggers = {kind: asyncio.Event() for kind in specs}
        self._tasks: dict[str, asyncio.Task] = {}

    @property
    def started(self) -> bool:
        startup = self.trackers.get(pr.STARTUP)
        return pr.is_started(startup.result if startup else None)

    @property
    def ready(self) -> bool:
        readiness = self.trackers.get(pr.READINESS)
        return pr.is_ready(self.started, readiness.result if readiness else None)

    def start(self) -> None:
        for kind in self.specs:
            if kind not in self._tasks:
                self._tasks[kind] = asyncio.ensure_future(self._loop(kind))

    def trigger(self, kind: str) -> None:
        """Run that probe now instead of at its next tick (kubelet's manual trigger)."""
        if kind in self._triggers:
            self._triggers[kind].set()

    def stop(self, kinds: tuple[str, ...] | None = None) -> None:
        """Stop the probes of ``kinds`` (all when None)."""
        for kind in list(self._tasks):
            if kinds is None or kind in kinds:
                self._tasks.pop(kind).cancel()

    async def _loop(self, kind: str) -> None:
        spec = self.specs[kind]
        trigger = self._triggers[kind]
        delay = pr.first_probe_delay(spec)
        while True:
            if delay > 0:
                await self._wait(delay, trigger)
            trigger.clear()
            await self.probe(kind)
            delay = spec.period

    async def _wait(self, seconds: float, trigger: asyncio.Event) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waiter = asyncio.ensure_future(trigger.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()

    async def probe(self, kind: str) -> None:
        """One tick of the probe (worker.go doProbe for a running container)."""
        tracker = self.trackers[kind]
        if not tracker.due(self.clock.now(), self.started_at, self.started):
            return
        outcome, output, error = pr.Outcome.UNKNOWN, "", None
        for _ in range(pr.MAX_RETRIES):
            try:
                outcome, output, error = await self._check(tracker.spec)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an unforeseen failure must not end the probe's loop
                outcome, output, error = pr.Outcome.UNKNOWN, "", str(exc) or type(exc).__name__
            if error is None:
                break
        event = pr.probe_event(kind, outcome, output, error)
        if event is not None:
            self._on_event(*event)
        if error is not None:
            return  # the prober errored: the result is thrown away
        before = tracker.result
        published = tracker.observe(pr.to_result(outcome))
        if published is not None and published != before:
            if kind == pr.STARTUP and published == pr.Result.SUCCESS:
                self.trigger(pr.READINESS)  # the status update that follows triggers it in kubelet
            self._on_result(kind, published)
