"""Same-run floors: what the machine does without any control plane, with and without the pod sandbox.

The throughput and latency targets of issue #16 compare jobplane with ``xargs -P`` running bare
``true``. A pod runs in a bubblewrap sandbox by default, and that sandbox costs more than the
process it wraps: its namespaces are made and torn down by the kernel on every start. So each
benchmark also measures the sandbox alone, in the same run: the exact command line the agent
builds (``jobplane.agent.sandbox.bwrap_argv``, a pod's view with its ``kube-api-access`` volume
and the agent's hidden directories) run by ``xargs -P`` or one at a time. No control plane can
start sandboxed pods faster than that; the gap between it and jobplane is jobplane's own cost.
"""

from __future__ import annotations

import resource
import subprocess
import tempfile
import time
from pathlib import Path

from jobplane.agent import sandbox

TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def sandbox_argv(work: Path, command: list[str]) -> list[str] | None:
    """The agent's sandbox command line around ``command`` for a pod laid out under ``work``
    (None: bubblewrap cannot run here, so there is no sandbox to measure)."""
    support = sandbox.detect()
    if not support.available:
        return None
    for sub in ("tmp", "token", "data"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "hosts").write_text("127.0.0.1\tlocalhost\n")
    (work / "hostname").write_text("floor-0\n")
    spec = sandbox.SandboxSpec(
        hostname="floor-0", hosts_file=str(work / "hosts"), hostname_file=str(work / "hostname"),
        tmp_dir=str(work / "tmp"), mounts=[sandbox.Mount(str(work / "token"), TOKEN_MOUNT, read_only=True)],
        hidden=(str(work / "data"),))
    return sandbox.bwrap_argv(support, spec, command, None)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def xargs_run(argv: list[str], n: int, parallelism: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds of ``xargs -P parallelism -n 1 argv...`` over ``n`` inputs:
    ``n`` runs of ``argv`` with one more argument each, ``parallelism`` at a time. The CPU is what
    the reaped processes' rusage says: for a sandboxed command it misses the sandbox's init and
    the command, which outlive bwrap and are reaped by PID 1 (bench_supervisor.py ``--floor``
    counts them, in a cgroup: ~2.9 ms per sandboxed ``true`` here, RESULTS §19b)."""
    inputs = "".join(f"{i}\n" for i in range(1, n + 1)).encode()
    cpu, t = _children_cpu(), time.perf_counter()
    subprocess.run(["xargs", "-P", str(int(parallelism)), "-n", "1", *argv], input=inputs, check=True)
    return time.perf_counter() - t, _children_cpu() - cpu


def sandbox_xargs(n: int, parallelism: int) -> tuple[float, float] | None:
    """``xargs_run`` of the sandboxed ``true`` (None without bubblewrap)."""
    with tempfile.TemporaryDirectory(prefix="jp-floor-") as work:
        argv = sandbox_argv(Path(work), ["true"])
        return xargs_run(argv, n, parallelism) if argv else None


def sandbox_sequential(n: int) -> list[float] | None:
    """Seconds of each of ``n`` sandboxed ``true`` runs one after another, from spawn to exit
    (None without bubblewrap)."""
    with tempfile.TemporaryDirectory(prefix="jp-floor-") as work:
        argv = sandbox_argv(Path(work), ["true"])
        if argv is None:
            return None
        out = []
        for _ in range(n):
            t = time.perf_counter()
            subprocess.run(argv, check=True)
            out.append(time.perf_counter() - t)
        return out
