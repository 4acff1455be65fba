"""The ``Runtime`` interface and the host-process runtime.

A container is a host process started through the supervisor shim (``agent/shim.py``) in
its own session/process group. Stopping it signals the group: SIGTERM, the grace period,
then SIGKILL. Memory limits use a cgroup v2 child group when the agent can create one,
else ``RLIMIT_AS``; cpu limits need cgroup v2 (``cpu.max``) and are skipped otherwise.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobplane.clock import Clock

log = logging.getLogger(__name__)


@dataclass
class ProcessSpec:
    """Everything needed to start one container process (already resolved and expanded)."""

    argv: list[str]
    executable: str
    env: dict[str, str]
    cwd: str | None
    state_dir: Path  # per-container-run files: spec, exit code, pid
    log_path: Path
    done_path: Path
    memory_limit: int | None = None  # bytes
    cpu_limit: float | None = None  # cores
    cgroup_name: str = ""


@dataclass
class ExitInfo:
    exit_code: int
    finished_at: float | None = None
    reason: str | None = None  # OOMKilled, StartError, ContainerStatusUnknown
    message: str | None = None
    signal: int | None = None


class ContainerHandle(abc.ABC):
    pid: int
    pid_start: str | None

    @abc.abstractmethod
    async def wait(self) -> ExitInfo:
        """Wait for the process to end; may be called more than once."""

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


class Runtime(abc.ABC):
    @abc.abstractmethod
    async def start(self, spec: ProcessSpec) -> ContainerHandle: ...

    @abc.abstractmethod
    def adopt(self, pid: int, pid_start: str | None, state_dir: Path, done_path: Path) -> ContainerHandle | None:
        """Re-attach to a container started by an earlier agent: a handle when it still runs
        or left an exit file, None when it is gone without one."""


def proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks); None if the process is gone
    or a zombie. Distinguishes a re-used pid from the process we started."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def read_exit_file(state_dir: Path) -> ExitInfo | None:
    try:
        data = json.loads((state_dir / "exit.json").read_text())
    except (OSError, ValueError):
        return None
    return ExitInfo(exit_code=int(data["exitCode"]), finished_at=data.get("finishedAt"),
                    reason=data.get("reason"), message=data.get("message"), signal=data.get("signal"))


def _killed_info(done_path: Path, clock: Clock) -> ExitInfo:
    """The shim died with the container (SIGKILL of the group): exit code 137, as runc reports."""
    with contextlib.suppress(OSError):
        done_path.touch()
    return ExitInfo(exit_code=137, finished_at=clock.now(), signal=signal.SIGKILL)


class _ChildHandle(ContainerHandle):
    def __init__(self, proc: asyncio.subprocess.Process, spec: ProcessSpec, clock: Clock) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.pid_start = proc_start_time(proc.pid)
        self._spec = spec
        self._clock = clock

    async def wait(self) -> ExitInfo:
        await self.proc.wait()
        return read_exit_file(self._spec.state_dir) or _killed_info(self._spec.done_path, self._clock)


class _AdoptedHandle(ContainerHandle):
    """A process started by an earlier agent: polled, since it is not our child."""

    def __init__(self, pid: int, pid_start: str | None, state_dir: Path, done_path: Path, clock: Clock,
                 poll: float) -> None:
        self.pid = pid
        self.pid_start = pid_start
        self._state_dir = state_dir
        self._done_path = done_path
        self._clock = clock
        self._poll = poll

    def alive(self) -> bool:
        current = proc_start_time(self.pid)
        return current is not None and (self.pid_start is None or current == self.pid_start)

    async def wait(self) -> ExitInfo:
        while self.alive():
            await self._clock.sleep(self._poll)
        return read_exit_file(self._state_dir) or _killed_info(self._done_path, self._clock)

    def signal_group(self, sig: int) -> None:
        if self.alive():
            super().signal_group(sig)


class HostProcessRuntime(Runtime):
    def __init__(self, clock: Clock, *, poll_interval: float = 0.5, cgroup_root: Path | None = None) -> None:
        self.clock = clock
        self.poll_interval = poll_interval
        self.cgroup_root = cgroup_root if cgroup_root is not None else _default_cgroup_root()

    async def start(self, spec: ProcessSpec) -> ContainerHandle:
        spec.state_dir.mkdir(parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        for stale in ("exit.json", "pid"):
            with contextlib.suppress(FileNotFoundError):
                (spec.state_dir / stale).unlink()
        cgroup = self._make_cgroup(spec)
        shim_spec: dict[str, Any] = {
            "argv": spec.argv, "executable": spec.executable, "env": spec.env, "cwd": spec.cwd,
            "log": str(spec.log_path), "done": str(spec.done_path), "exit": str(spec.state_dir / "exit.json"),
            "pid_file": str(spec.state_dir / "pid"), "cgroup": str(cgroup) if cgroup else None,
            "rlimit_as": spec.memory_limit if (spec.memory_limit and not cgroup) else None,
        }
        spec_file = spec.state_dir / "spec.json"
        fd = os.open(spec_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(shim_spec, f)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobplane.agent.shim", str(spec_file),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )
        return _ChildHandle(proc, spec, self.clock)

    def adopt(self, pid: int, pid_start: str | None, state_dir: Path, done_path: Path) -> ContainerHandle | None:
        handle = _AdoptedHandle(pid, pid_start, state_dir, done_path, self.clock, self.poll_interval)
        if handle.alive() or read_exit_file(state_dir) is not None:
            return handle
        return None

    def _make_cgroup(self, spec: ProcessSpec) -> Path | None:
        if self.cgroup_root is None or not (spec.memory_limit or spec.cpu_limit):
            return None
        path = self.cgroup_root / (spec.cgroup_name or f"c{os.getpid()}")
        try:
            path.mkdir(exist_ok=True)
            if spec.memory_limit:
                (path / "memory.max").write_text(str(int(spec.memory_limit)))
                with contextlib.suppress(OSError):
                    (path / "memory.swap.max").write_text("0")
            if spec.cpu_limit:
                period = 100_000
                (path / "cpu.max").write_text(f"{max(1000, int(spec.cpu_limit * period))} {period}")
            return path
        except OSError as exc:
            log.debug("cgroup %s not usable (%s); falling back to RLIMIT_AS", path, exc)
            return None


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
