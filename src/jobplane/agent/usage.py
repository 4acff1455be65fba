"""CPU and memory use of containers and of the node, for ``metrics.k8s.io`` (what kubelet's
``/metrics/resource`` gives metrics-server).

A container's figures come from its cgroup v2 group when it has one (``cpu.stat``
``usage_usec``, ``memory.current``), else from its process tree: every process of the
tree under the container's first process (utime + stime, resident set size). CPU is a rate:
the change in CPU time since the previous sample of the same container, or, on the first
sample, the average since the process started.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
MIN_WINDOW = 1.0  # seconds: a newer sample than this reuses the previous rate


@dataclass
class Usage:
    cpu_cores: float
    memory_bytes: int
    window: float  # seconds the CPU rate covers


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


class ProcessTable:
    """Every process's parent, CPU seconds and resident bytes, from one pass over ``/proc``;
    a container's figures are the sums over its process tree (a sandboxed container's
    processes start a session of their own below the container's first process)."""

    def __init__(self) -> None:
        self.stats: dict[int, tuple[float, int]] = {}
        self.children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            fields = _stat_fields(pid)
            if fields is None:
                continue
            self.stats[pid] = ((int(fields[11]) + int(fields[12])) / _TICKS, int(fields[21]) * _PAGE)
            self.children.setdefault(int(fields[1]), []).append(pid)

    def tree(self, root: int) -> tuple[float, int] | None:
        if root not in self.stats:
            return None
        cpu, rss, todo = 0.0, 0, [root]
        while todo:
            pid = todo.pop()
            c, r = self.stats.get(pid, (0.0, 0))
            cpu, rss = cpu + c, rss + r
            todo.extend(self.children.get(pid, ()))
        return cpu, rss


def started_at(pid: int) -> float | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return _boot_time() + int(fields[19]) / _TICKS  # field 22: start time in ticks since boot


def cgroup_totals(path: Path) -> tuple[float, int] | None:
    try:
        usec = next(int(line.split()[1]) for line in (path / "cpu.stat").read_text().splitlines()
                    if line.startswith("usage_usec "))
        memory = int((path / "memory.current").read_text())
    except (OSError, StopIteration, ValueError):
        return None
    return usec / 1e6, memory


def node_totals() -> tuple[float, int]:
    """(busy CPU seconds of the machine, memory in use: MemTotal - MemAvailable)."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(v) for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    busy = (sum(values[:8]) - idle) / _TICKS
    mem: dict[str, int] = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            mem[key] = int(rest.split()[0]) * 1024
    return busy, mem.get("MemTotal", 0) - mem.get("MemAvailable", 0)


class Sampler:
    """Turns cumulative CPU seconds into rates, one memory per key."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now  # the agent's clock: seconds since the epoch
        self._last: dict[str, tuple[float, float, float, float]] = {}  # key -> (time, cpu, rate, window)

    def rate(self, key: str, cpu: float, started: float | None = None) -> tuple[float, float]:
        now = self.now()
        prev = self._last.get(key)
        if prev is not None and now - prev[0] < MIN_WINDOW:
            return prev[2], prev[3]
        if prev is not None and cpu >= prev[1]:
            window = now - prev[0]
            rate = (cpu - prev[1]) / window
        else:
            window = max(now - (started or now), 1e-3)
            rate = cpu / window if started else 0.0
        self._last[key] = (now, cpu, rate, window)
        return rate, window

    def forget_except(self, keys: set[str]) -> None:
        for key in [k for k in self._last if k not in keys]:
            del self._last[key]

    def container(self, key: str, pid: int | None, cgroup: Path | None,
                  table: ProcessTable | None) -> Usage | None:
        """``table``: the ``ProcessTable`` of this round (read once for all containers)."""
        if cgroup is not None:
            totals = cgroup_totals(cgroup)
            if totals is not None:
                rate, window = self.rate(key, totals[0])
                return Usage(rate, totals[1], window)
        found = table.tree(pid) if pid is not None and table is not None else None
        if found is None or pid is None:
            return None
        cpu, rss = found
        rate, window = self.rate(key, cpu, started_at(pid) if key not in self._last else None)
        return Usage(rate, rss, window)

    def node(self) -> Usage:
        busy, memory = node_totals()
        rate, window = self.rate("<node>", busy, _boot_time())
        return Usage(rate, memory, window)
