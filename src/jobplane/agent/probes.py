"""Container probes and lifecycle hooks as the kubelet decides them: pure, no I/O.

One ``ProbeTracker`` per probe of one container run holds what kubelet's probe worker
(``pkg/kubelet/prober/worker.go``) keeps: the published result (initial value Failure for
readiness, Success for liveness, Unknown for startup), the run of equal results counted
against ``successThreshold``/``failureThreshold``, and the hold after a liveness or startup
failure (no more probing until the container is replaced). Messages are the prober's
(``prober.go``) and the runtime manager's (``kuberuntime_manager.go``, ``killContainer``).

The I/O (running exec, HTTP and TCP checks, timers) lives in ``agent/prober.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from jobplane.api.netaddr import join_host_port

Obj = dict[str, Any]

LIVENESS = "Liveness"
READINESS = "Readiness"
STARTUP = "Startup"
# spec key -> kind, in the order kubelet's prober manager adds the workers
PROBE_KEYS = (("startupProbe", STARTUP), ("readinessProbe", READINESS), ("livenessProbe", LIVENESS))

# Output kept from an exec probe or an HTTP body (pkg/probe: maxReadLength, maxRespBodyLength).
MAX_OUTPUT = 10 * 1024
# A probe that errors (could not be run at all) is tried this often before its result counts.
MAX_RETRIES = 3
# killContainer: what is left of the grace period after a preStop hook is never below this.
MINIMUM_GRACE = 2.0
KUBE_VERSION = "1.32"


class Result(enum.Enum):
    """kubelet's ``results.Result``: what the probe managers publish."""

    UNKNOWN = "Unknown"
    SUCCESS = "Success"
    FAILURE = "Failure"


class Outcome(enum.Enum):
    """``pkg/probe.Result``: what one check returned (Warning counts as success, with an event)."""

    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"
    UNKNOWN = "unknown"


HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


@dataclass(frozen=True)
class ProbeSpec:
    kind: str
    handler: str  # one of HANDLERS, "" when none is set
    action: Obj
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace: float | None = None  # probe-level terminationGracePeriodSeconds

    @classmethod
    def parse(cls, kind: str, probe: Obj) -> ProbeSpec:
        """A probe from the spec, with upstream's defaults where a field is unset."""
        handler = next((h for h in HANDLERS if probe.get(h) is not None), "")
        grace = probe.get("terminationGracePeriodSeconds")
        return cls(kind=kind, handler=handler, action=dict(probe.get(handler) or {}) if handler else {},
                   initial_delay=float(probe.get("initialDelaySeconds") or 0),
                   period=float(probe.get("periodSeconds") or 10),
                   timeout=float(probe.get("timeoutSeconds") or 1),
                   success_threshold=int(probe.get("successThreshold") or 1),
                   failure_threshold=int(probe.get("failureThreshold") or 3),
                   termination_grace=None if grace is None else float(grace))


def container_probes(cspec: Obj) -> dict[str, ProbeSpec]:
    """The probes a container declares, by kind."""
    return {kind: ProbeSpec.parse(kind, cspec[key]) for key, kind in PROBE_KEYS if isinstance(cspec.get(key), dict)}


def initial_result(kind: str) -> Result:
    """The result published for a new container before any probe ran (worker.go newWorker)."""
    return {READINESS: Result.FAILURE, LIVENESS: Result.SUCCESS}.get(kind, Result.UNKNOWN)


def first_probe_delay(spec: ProbeSpec) -> float:
    """When the first check runs after the container started. kubelet's workers tick every
    period from the pod's start and find no container at the first tick; the readiness
    worker is also triggered at once by each status update of a container not yet ready."""
    return 0.0 if spec.kind == READINESS else spec.period


@dataclass
class ProbeTracker:
    """One probe's state for one container run (worker.go doProbe after the container checks)."""

    spec: ProbeSpec
    result: Result = Result.UNKNOWN
    last: Result | None = None
    run: int = 0
    on_hold: bool = False
    published: bool = field(default=False)

    def __post_init__(self) -> None:
        self.result = initial_result(self.spec.kind)

    def due(self, now: float, started_at: float, container_started: bool) -> bool:
        """Whether a check runs at this tick: not on hold, past ``initialDelaySeconds``
        (whole seconds, as kubelet compares), and gated by the startup probe: the startup
        probe runs only until the container has started, the others only after."""
        if self.on_hold:
            return False
        if int(now - started_at) < self.spec.initial_delay:
            return False
        if container_started:
            return self.spec.kind != STARTUP
        return self.spec.kind == STARTUP

    def observe(self, result: Result) -> Result | None:
        """Count one check's result; the result to publish once its threshold is reached
        (None: below it, nothing changes). A published liveness or startup failure puts
        the probe on hold: the container is to be killed and replaced."""
        if result == self.last:
            self.run += 1
        else:
            self.last = result
            self.run = 1
        if (result == Result.FAILURE and self.run < self.spec.failure_threshold) or (
                result == Result.SUCCESS and self.run < self.spec.success_threshold):
            return None
        self.result = result
        self.published = True
        if self.spec.kind in (LIVENESS, STARTUP) and result == Result.FAILURE:
            self.on_hold = True
            self.run = 0
        return result


def to_result(outcome: Outcome) -> Result:
    """prober.go probe(): Success and Warning succeed; Failure and Unknown fail."""
    return Result.SUCCESS if outcome in (Outcome.SUCCESS, Outcome.WARNING) else Result.FAILURE


def probe_event(kind: str, outcome: Outcome, output: str, error: str | None) -> tuple[str, str] | None:
    """The Warning event a check records (reason, message), or None (prober.go probe())."""
    if error is not None:
        return "Unhealthy", f"{kind} probe errored and resulted in {outcome.value} state: {error}"
    if outcome == Outcome.FAILURE:
        return "Unhealthy", f"{kind} probe failed: {output}"
    if outcome == Outcome.WARNING:
        return "ProbeWarning", f"{kind} probe warning: {output}"
    return None


def kill_message(container: str, kind: str, restart: bool) -> str:
    """The ``Killing`` event of a container that failed its liveness or startup probe."""
    message = f"Container {container} failed {kind.lower()} probe"
    return message + ", will be restarted" if restart else message


def is_started(startup: Result | None) -> bool:
    """``containerStatus.started`` of a running container: its startup probe succeeded, or it
    has none (prober_manager.go isContainerStarted)."""
    return startup is None or startup == Result.SUCCESS


def is_ready(started: bool, readiness: Result | None) -> bool:
    """``containerStatus.ready`` of a running container: started, and its readiness probe's
    published result is Success, or it has none."""
    return started and (readiness is None or readiness == Result.SUCCESS)


def kill_grace(pod_grace: float | None, probe: ProbeSpec | None = None) -> float:
    """The grace period of a kill: the probe's own ``terminationGracePeriodSeconds`` for a
    liveness or startup kill, else the pod's (30 s when unset)."""
    if probe is not None and probe.termination_grace is not None:
        return probe.termination_grace
    return 30.0 if pod_grace is None else float(pod_grace)


def grace_after_hook(grace: float, hook_seconds: float) -> float:
    """What is left of the grace period once a preStop hook took ``hook_seconds``; never less
    than kubelet's minimum shutdown window."""
    return max(grace - int(hook_seconds), MINIMUM_GRACE)


# ------------------------------------------------------------------ ports and requests


class ProbeConfigError(ValueError):
    """The probe or hook cannot be run as written (a port that does not resolve)."""


def resolve_port(port: Any, cspec: Obj) -> int:
    """``probe.ResolveContainerPort``: a number, a named container port, or a number written
    as a string; 1-65535."""
    if isinstance(port, bool):
        raise ProbeConfigError(f"intOrString had no kind: {port!r}")
    if isinstance(port, int):
        value = port
    elif isinstance(port, str):
        named = next((p.get("containerPort") for p in cspec.get("ports") or () if p.get("name") == port), None)
        if named is not None:
            value = int(named)
        else:
            try:
                value = int(port, 10)
            except ValueError:
                raise ProbeConfigError(f'strconv.Atoi: parsing "{port}": invalid syntax') from None
    else:
        raise ProbeConfigError(f"intOrString had no kind: {port!r}")
    if 0 < value < 65536:
        return value
    raise ProbeConfigError(f"invalid port number: {value}")


def go_duration(seconds: float) -> str:
    """Go's time.Duration String for whole seconds: ``10s``, ``1m20s``, ``5m0s`` (kubelet's
    messages: back-off delays, probe timeouts)."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"


@dataclass(frozen=True)
class HttpRequest:
    url: str
    host: str  # where to connect
    port: int
    scheme: str  # http or https
    target: str  # path and query as sent
    headers: tuple[tuple[str, str], ...]


def http_request(action: Obj, cspec: Obj, pod_ip: str, purpose: str) -> HttpRequest:
    """``NewRequestForHTTPGetAction``: scheme (http), host (the pod IP), port, path; headers
    as given, with ``User-Agent: kube-<purpose>/<version>`` and ``Accept: */*`` unless set
    (an ``Accept`` set to "" is dropped); a ``Host`` header names the virtual host."""
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = str(action.get("host") or pod_ip)
    port = resolve_port(action.get("port"), cspec)
    path = str(action.get("path") or "")
    target = path if path.startswith("/") else "/" + path
    headers: list[tuple[str, str]] = [(str(h.get("name") or ""), str(h.get("value") or ""))
                                      for h in action.get("httpHeaders") or () if h.get("name")]
    names = {name.lower() for name, _ in headers}
    if "user-agent" not in names:
        headers.append(("User-Agent", f"kube-{purpose}/{KUBE_VERSION}"))
    if "accept" not in names:
        headers.append(("Accept", "*/*"))
    else:
        headers = [(n, v) for n, v in headers if not (n.lower() == "accept" and v == "")]
    url = f"{scheme}://{join_host_port(host, port)}{target}"
    return HttpRequest(url=url, host=host, port=port, scheme=scheme, target=target, headers=tuple(headers))


def http_outcome(status: int, body: str) -> tuple[Outcome, str]:
    """``DoHTTPProbe``: 2xx succeeds with the body as output; a redirect that was not
    followed (another host) is a warning; anything else fails, without the body."""
    if 200 <= status < 400:
        if status >= 300:
            return Outcome.WARNING, f"Probe terminated redirects, Response body: {body}"
        return Outcome.SUCCESS, body
    return Outcome.FAILURE, f"HTTP probe failed with statuscode: {status}"


# ---------------------------------------------------------------------- lifecycle hooks

POST_START = "PostStart"
PRE_STOP = "PreStop"


def hook(cspec: Obj, which: str) -> Obj | None:
    """The container's ``lifecycle.postStart`` / ``lifecycle.preStop`` handler, or None."""
    lifecycle = cspec.get("lifecycle") or {}
    handler = lifecycle.get("postStart" if which == POST_START else "preStop")
    return handler if isinstance(handler, dict) and handler else None


def hook_failure_message(handler: Obj, container: str, pod: str, error: str, output: str = "") -> str:
    """lifecycle/handlers.go Run: the message of a failed hook (kept in the container's
    status, never in an event, so that secrets in it do not spread)."""
    if handler.get("exec") is not None:
        command = " ".join(str(a) for a in (handler["exec"].get("command") or ()))
        return (f'Exec lifecycle hook ([{command}]) for Container "{container}" in Pod "{pod}" failed - '
                f'error: {error}, message: "{output}"')
    if handler.get("httpGet") is not None:
        return (f'HTTP lifecycle hook ({handler["httpGet"].get("path") or ""}) for Container "{container}" in Pod '
                f'"{pod}" failed - error: {error}')
    if handler.get("sleep") is not None:
        return (f'Sleep lifecycle hook ({handler["sleep"].get("seconds")}) for Container "{container}" in Pod '
                f'"{pod}" failed - error: {error}')
    return f"Cannot run handler: {error}"
