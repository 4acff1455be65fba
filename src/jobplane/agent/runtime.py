"""The ``Runtime`` interface and the host-process runtime.

A container is a host process in its own session/process group, started by the node's
container supervisor (``agent/supervisor.py``): one small long-lived process that spawns,
logs and reaps every container and outlives the agent. Stopping a container signals its
group: SIGTERM, the grace period, then SIGKILL. Memory limits use a cgroup v2 child group
when one can be created, else ``RLIMIT_AS``; cpu limits need cgroup v2 (``cpu.max``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobplane.agent import sandbox as sbx
from jobplane.agent.execsession import ExecSpec, ProcessSession
from jobplane.agent.supervisor import PID_FILE, children, claim_held, proc_start_time, sandbox_init
from jobplane.agent.supervisor_client import SupervisorClient, SupervisorLost
from jobplane.clock import Clock

if TYPE_CHECKING:
    from jobplane.agent.engine import ImageSpec

log = logging.getLogger(__name__)

START_ATTEMPTS = 3  # a start whose supervisor died under it, or whose run was claimed, is tried again

__all__ = ["ContainerHandle", "ExitInfo", "HostProcessRuntime", "ProcessSpec", "Runtime", "proc_start_time",
           "read_exit_file", "read_pid_file", "terminate"]


@dataclass
class ProcessSpec:
    """Everything needed to start one container process (already resolved and expanded)."""

    argv: list[str]
    executable: str
    env: dict[str, str]
    cwd: str | None
    state_dir: Path  # one per container run (claim, pid.json, exit.json): a run is started at most once
    log_path: Path
    done_path: Path
    memory_limit: int | None = None  # bytes
    cpu_limit: float | None = None  # cores
    cgroup_name: str = ""
    sandbox: sbx.SandboxSpec | None = None  # run in a bwrap sandbox (when the runtime has one)
    image: ImageSpec | None = None  # run from an image (the image runtime)


@dataclass
class ExitInfo:
    exit_code: int
    finished_at: float | None = None
    reason: str | None = None  # OOMKilled, StartError, ContainerStatusUnknown
    message: str | None = None
    signal: int | None = None
    # The container could not be located at all (kubelet's ContainerStatusUnknown): its
    # terminated state carries no times and no container id, as kubelet writes it.
    unlocated: bool = False


class ContainerHandle(abc.ABC):
    pid: int
    pid_start: str | None

    @abc.abstractmethod
    async def wait(self) -> ExitInfo:
        """Wait for the process to end; may be called more than once."""

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def running_since(self) -> float | None:
        """When the container began to run, once it does (epoch seconds); None when it ended
        without running. Asked only of runtimes whose ``confirms_start`` is set."""
        return None


class Runtime(abc.ABC):
    # Whether (and how) containers run in a per-container sandbox; none unless a runtime says so.
    sandbox: sbx.SandboxSupport = sbx.SandboxSupport(None, reason="not supported by this runtime")
    # Whether containers run from their images (``ProcessSpec.image``; ``agent/engine.py``).
    runs_images: bool = False
    # Whether a started container runs only once its handle's ``running_since`` says so (the
    # image runtime: the engine creates and starts it after its client starts); else it runs
    # from the moment ``start`` returns, as a host process does.
    confirms_start: bool = False

    @property
    def runtime_version(self) -> str:
        """The Node's ``status.nodeInfo.containerRuntimeVersion``."""
        return "jobplane://0.1.0"

    async def pod_done(self, uid: str, thorough: bool = True) -> None:  # noqa: B027 - optional hook
        """The pod has ended for good or is deleted: release what the runtime holds for it
        (not ``thorough``: its worker saw every container end)."""

    async def collect_orphans(self, live: set[str]) -> list[str]:
        """Remove what the runtime holds for pods not in ``live`` (uids); the uids removed."""
        return []

    async def list_images(self) -> list[dict[str, Any]]:
        """The node's images (``status.images``); none for a runtime without images."""
        return []

    # The image runtime's pull step (``runs_images``); see ``agent/engine.py``.
    async def image_id(self, image: str) -> str | None:
        raise NotImplementedError

    async def pull(self, image: str, auth: dict[str, Any] | None = None) -> str:
        raise NotImplementedError

    async def image_size(self, ref: str) -> int | None:
        return None

    @abc.abstractmethod
    async def start(self, spec: ProcessSpec) -> ContainerHandle:
        """Start the process; OSError when it cannot be (the pod reports StartError)."""

    async def prepare(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Called before ``adopt``: reach whatever holds containers of an earlier agent."""

    def enter_argv(self, pid: int, identity: sbx.Identity) -> list[str] | None:
        """The argv prefix that enters the running container ``pid`` (None: not sandboxed)."""
        return None

    async def exec(self, handle: ContainerHandle | None, spec: ExecSpec) -> ProcessSession:
        """``pods/exec``: run ``spec`` inside the running container ``handle``. The host runtime
        runs it as a host process with the container's environment and working directory (what
        a host-process container is); a sandboxing runtime enters the container's namespaces."""
        return await ProcessSession.start(spec)

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """The agent stops: let go of connections (containers keep running)."""

    @abc.abstractmethod
    def adopt(self, pid: int, pid_start: str | None, state_dir: Path, done_path: Path) -> ContainerHandle | None:
        """Re-attach to a container started by an earlier agent: a handle when it still runs
        or left an exit file, None when it is gone without one."""


def read_exit_file(state_dir: Path) -> ExitInfo | None:
    try:
        data = json.loads((state_dir / "exit.json").read_text())
    except (OSError, ValueError):
        return None
    return exit_info(data)


def read_pid_file(state_dir: Path) -> dict[str, Any] | None:
    """The supervisor's record of a container it started in ``state_dir`` (pid, start,
    startedAt), written before the agent is told: None when it never started."""
    try:
        data = json.loads((state_dir / PID_FILE).read_text())
        int(data["pid"])
        return data
    except (OSError, ValueError, KeyError, TypeError):
        return None


def exit_info(data: dict[str, Any]) -> ExitInfo:
    """The supervisor's exit record (``exit.json``, or its exit notification) as an ExitInfo."""
    return ExitInfo(exit_code=int(data["exitCode"]), finished_at=data.get("finishedAt"),
                    reason=data.get("reason"), message=data.get("message"), signal=data.get("signal"))


UNSUPERVISED_MESSAGE = "The container's supervisor exited before the container did; its exit code is unknown"


def _alive(pid: int, pid_start: str | None) -> bool:
    current = proc_start_time(pid)
    return current is not None and (pid_start is None or current == pid_start)


class _Handle(ContainerHandle):
    """A container process. Its end comes from the supervisor's exit notification when the
    supervisor holds it, else (its supervisor died) by polling the pid and the exit file."""

    def __init__(self, pid: int, pid_start: str | None, runtime: HostProcessRuntime, state_dir: Path,
                 done_path: Path, exit_future: asyncio.Future | None) -> None:
        self.pid = pid
        self.pid_start = pid_start
        self._rt = runtime
        self._sup = runtime.supervisor
        self._state_dir = state_dir
        self._done_path = done_path
        self._exit = exit_future
        self._info: ExitInfo | None = None

    async def wait(self) -> ExitInfo:
        if self._info is None:
            raw = await asyncio.shield(self._exit) if self._exit is not None else None
            info = exit_info(raw) if raw is not None else await self._poll()
            self._info = self._info or info
        return self._info

    async def _poll(self) -> ExitInfo:
        clock, poll = self._rt.clock, self._rt.poll_interval
        while _alive(self.pid, self.pid_start):
            await clock.sleep(poll)
        info = read_exit_file(self._state_dir)
        if info is None:  # a supervisor may still be writing it
            await clock.sleep(poll)
            info = read_exit_file(self._state_dir)
        if info is not None:
            return info
        with contextlib.suppress(OSError):
            self._done_path.touch()
        return ExitInfo(137, clock.now(), "ContainerStatusUnknown", UNSUPERVISED_MESSAGE)

    def signal_group(self, sig: int) -> None:
        if self._info is not None:
            return
        if self._exit is not None and not self._exit.done() and self._sup is not None and self._sup.signal(self.pid, sig):
            return
        if _alive(self.pid, self.pid_start):
            super().signal_group(sig)


class _FinishedHandle(ContainerHandle):
    """A container that ended while no agent ran: its exit file answers."""

    def __init__(self, pid: int, pid_start: str | None, info: ExitInfo) -> None:
        self.pid = pid
        self.pid_start = pid_start
        self._info = info

    async def wait(self) -> ExitInfo:
        return self._info

    def signal_group(self, sig: int) -> None:
        pass


class HostProcessRuntime(Runtime):
    """Runs containers through the supervisor serving ``data_dir`` (a private temporary
    directory when none is given), starting it on first use."""

    def __init__(self, clock: Clock, *, data_dir: Path | None = None, poll_interval: float = 0.5,
                 cgroup_root: Path | None = None, sandbox: sbx.SandboxSupport | None = None) -> None:
        self.clock = clock
        self.sandbox = sandbox if sandbox is not None else sbx.SandboxSupport(None, reason="disabled")
        self.poll_interval = poll_interval
        self.cgroup_root = cgroup_root if cgroup_root is not None else _default_cgroup_root()
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="jobplane-rt-"))
        self.cwd = os.getcwd()  # where containers without workingDir start
        self.supervisor: SupervisorClient | None = None
        self._connecting: asyncio.Lock | None = None
        self._restart: asyncio.Task | None = None

    async def prepare(self) -> None:
        await self._connected()

    async def _connected(self) -> SupervisorClient:
        if self.supervisor is not None and self.supervisor.alive:
            return self.supervisor
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self.supervisor is None or not self.supervisor.alive:
                self.supervisor = await SupervisorClient.connect(self.data_dir, self.clock)
                self.supervisor.on_lost = self._supervisor_lost
        return self.supervisor

    def _supervisor_lost(self) -> None:
        """Start a new supervisor at once (the running containers' waiters carry on without
        one; new containers need it)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the loop is gone (the agent is being torn down)
            return
        if self._restart is None or self._restart.done():
            self._restart = loop.create_task(self._restart_supervisor())

    async def _restart_supervisor(self) -> None:
        delay = 0.1
        while True:
            try:
                sup = await self._connected()
                log.info("container supervisor restarted (pid %d)", sup.pid)
                return
            except OSError as exc:
                log.warning("cannot restart the container supervisor: %s; retrying in %gs", exc, delay)
            await self.clock.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def start(self, spec: ProcessSpec) -> ContainerHandle:
        cgroup = None
        if self.cgroup_root is not None and (spec.memory_limit or spec.cpu_limit):
            cgroup = str(self.cgroup_root / (spec.cgroup_name or f"c{os.getpid()}"))
        argv, executable, cwd, sandboxed = spec.argv, spec.executable, spec.cwd or self.cwd, False
        if spec.sandbox is not None and self.sandbox.available:
            argv = sbx.bwrap_argv(self.sandbox, spec.sandbox, [spec.executable, *spec.argv[1:]], cwd)
            executable, cwd, sandboxed = argv[0], "/", True
        request = {
            "argv": argv, "executable": executable, "env": spec.env, "cwd": cwd, "sandbox": sandboxed,
            "state_dir": str(spec.state_dir), "log": str(spec.log_path), "done": str(spec.done_path),
            "memory_limit": spec.memory_limit, "cpu_limit": spec.cpu_limit, "cgroup": cgroup,
        }
        for attempt in range(START_ATTEMPTS):
            sup = await self._connected()
            try:
                reply = await sup.start(request)
            except SupervisorLost:  # it died under us, perhaps after its waiter claimed the run
                if attempt == START_ATTEMPTS - 1:
                    raise
                reply = {"claimed": True}
            if not reply.get("claimed"):
                break
            # The run is (being) started by the waiter of an earlier request: never a second
            # time. Wait for that waiter's record; if it died before starting it, start anew.
            earlier = await self._await_claim(spec)
            if earlier is not None:
                return earlier
        if reply.get("claimed"):
            raise OSError(errno.EAGAIN, "the container's run is claimed by a waiter that never started it")
        if "error" in reply:
            exc = OSError(reply["error"])
            exc.errno = reply.get("errno")  # ENOSPC and friends: the worker retries those
            raise exc
        pid = reply["pid"]
        return _Handle(pid, reply.get("start"), self, spec.state_dir, spec.done_path, sup.exit_future(pid))

    async def _await_claim(self, spec: ProcessSpec) -> ContainerHandle | None:
        """Wait while a live waiter holds the run's claim and has not recorded a start; then
        a handle on what it started (or what ended), or None when it started nothing."""
        state_dir = str(spec.state_dir)
        while claim_held(state_dir) and read_pid_file(spec.state_dir) is None \
                and read_exit_file(spec.state_dir) is None:
            await self.clock.sleep(self.poll_interval)
        started = read_pid_file(spec.state_dir)
        if started is not None:
            pid = int(started["pid"])
            sup = self.supervisor
            return _Handle(pid, started.get("start"), self, spec.state_dir, spec.done_path,
                           sup.exit_future(pid) if sup is not None else None)
        info = read_exit_file(spec.state_dir)  # it ran, but its start could not be recorded (a full disk)
        return _FinishedHandle(0, None, info) if info is not None else None

    def adopt(self, pid: int, pid_start: str | None, state_dir: Path, done_path: Path) -> ContainerHandle | None:
        sup = self.supervisor
        pending = sup.exit_future(pid) if sup is not None else None
        if pending is not None:
            return _Handle(pid, pid_start, self, state_dir, done_path, pending)
        info = read_exit_file(state_dir)
        if info is not None:
            return _FinishedHandle(pid, pid_start, info)
        if _alive(pid, pid_start):
            return _Handle(pid, pid_start, self, state_dir, done_path, None)
        return None

    def enter_argv(self, pid: int, identity: sbx.Identity) -> list[str] | None:
        """The argv prefix that runs a command inside the running container whose process
        (as started, ``ContainerRecord.pid``) is ``pid``, as the container's user: for
        ``kubectl exec``. None when the container does not run (or is not sandboxed: then
        run the command on the host, with the container's environment and working dir)."""
        if not self.sandbox.available:
            return None
        init = sandbox_init(pid)
        inner = children(init) if init else []
        return sbx.enter_argv(inner[0], identity) if inner else None

    async def close(self) -> None:
        if self._restart is not None:
            self._restart.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._restart
        if self.supervisor is not None:
            await self.supervisor.close()
            self.supervisor = None


def _default_cgroup_root() -> Path | None:
    """A writable cgroup v2 directory whose children may use the memory controller, or None.

    ``JOBPLANE_CGROUP_ROOT`` names one explicitly (e.g. a systemd-delegated slice)."""
    explicit = os.environ.get("JOBPLANE_CGROUP_ROOT")
    candidates = [Path(explicit)] if explicit else []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                candidates.append(Path("/sys/fs/cgroup") / line[3:].lstrip("/"))
    except OSError:
        return None
    for root in candidates:
        controllers = root / "cgroup.subtree_control"
        try:
            if "memory" in controllers.read_text().split() and os.access(root, os.W_OK):
                return root
        except OSError:
            continue
    return None


async def terminate(handle: ContainerHandle, grace: float, clock: Clock) -> ExitInfo:
    """SIGTERM to the process group, up to ``grace`` seconds, then SIGKILL."""
    waiter = asyncio.ensure_future(handle.wait())
    handle.signal_group(signal.SIGTERM)
    if grace > 0:
        sleeper = asyncio.ensure_future(clock.sleep(grace))
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
    if not waiter.done():
        handle.signal_group(signal.SIGKILL)
    return await waiter
