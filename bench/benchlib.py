"""Shared pieces of the benchmarks: start a real ``jobplane server`` as a subprocess, talk to it
over HTTPS with its own kubeconfig, read its peak RSS, and print result tables.

Kept separate so each bench script holds only its measurement logic.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import os
import platform
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent
JOBPLANE = ROOT / ".venv" / "bin" / "jobplane"
READY_RE = re.compile(r"ready at (https://\S+)")


@dataclass
class ServerProc:
    """A running ``jobplane server`` subprocess and how to reach it."""

    proc: subprocess.Popen
    data_dir: Path
    url: str
    token: str
    ca_file: Path
    log_file: Path
    owns_dir: bool = False
    _log: Any = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def peak_rss_mb(self) -> float:
        """Peak RSS of every jobplane process of this server together (server, its agent
        child, the node supervisor): the sum of each one's VmHWM (an upper bound of the
        peak of the sum). Read it before ``stop``."""
        return sum(self.peak_rss_by_process().values())

    def peak_rss_by_process(self) -> dict[str, float]:
        """VmHWM in MiB of each jobplane process of this server, by role."""
        out: dict[str, float] = {}
        for pid, role in jobplane_processes(self.pid, self.data_dir).items():
            out[role] = out.get(role, 0.0) + peak_rss_mb(pid)
        return out

    def rss_mb(self) -> float:
        return sum(_status_kb(pid, "VmRSS") for pid in jobplane_processes(self.pid, self.data_dir)) / 1024

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def session(self, limit: int = 100) -> aiohttp.ClientSession:
        conn = aiohttp.TCPConnector(ssl=self.ssl_context(), limit=limit)
        return aiohttp.ClientSession(self.url, connector=conn,
                                     headers={"Authorization": f"Bearer {self.token}"},
                                     json_serialize=lambda o: orjson.dumps(o).decode())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        if self.owns_dir:
            from jobplane.agent.rundir import candidates

            # the pods' runtime files (agent/rundir.py, in /dev/shm here) outlive the server by design
            for path in candidates(self.data_dir.resolve(), os.geteuid(), os.environ):
                shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.log_file.unlink(missing_ok=True)


def start_server(*, agent: bool, data_dir: Path | None = None, extra: list[str] | None = None,
                 timeout: float = 60.0, env: dict[str, str] | None = None, prefix: list[str] | None = None
                 ) -> ServerProc:
    """Start ``jobplane server --port 0`` and wait for its ``ready`` line and kubeconfig.
    ``env``: added to the environment (``PYTHONPATH`` to another checkout's ``src`` runs its
    code for a same-run baseline); ``prefix``: a command to run it under."""
    owns = data_dir is None
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="jp-bench-"))
    log_file = data_dir.parent / f"{data_dir.name}.server.log"
    args = [str(JOBPLANE), "server", "--data-dir", str(data_dir), "--port", "0", "--log-level", "warning",
            "--agent" if agent else "--no-agent", *(extra or [])]
    logf = open(log_file, "w+b")  # noqa: SIM115 - lives as long as the server
    if env and env.get("PYTHONPATH"):
        args[0:1] = [sys.executable, "-m", "jobplane"]  # the console script would pin this checkout
    proc = subprocess.Popen([*(prefix or []), *args], stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        text = log_file.read_text(errors="replace")
        m = READY_RE.search(text)
        if m:
            url = m.group(1)
            break
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{text}")
        time.sleep(0.05)
    if url is None:
        proc.kill()
        raise RuntimeError("server did not become ready")
    kc = yaml.safe_load((data_dir / "kubeconfig").read_text())
    cluster = kc["clusters"][0]["cluster"]
    token = kc["users"][0]["user"]["token"]
    ca_file = data_dir / "bench-ca.pem"
    ca_file.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    return ServerProc(proc, data_dir, url, token, ca_file, log_file, owns, logf)


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MiB."""
    return _status_kb(pid, "VmHWM") / 1024


def _proc_table() -> dict[int, tuple[int, list[bytes], str]]:
    """pid -> (parent pid, argv, executable path) of every live (not zombie) process we may read."""
    out: dict[int, tuple[int, list[bytes], str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            exe = os.readlink(entry / "exe")
        except (OSError, ValueError, IndexError):
            continue
        if fields[0] != b"Z":
            out[int(entry.name)] = (int(fields[1]), argv, exe)
    return out


def node_supervisors(data_dir: Path, table: dict[int, tuple[int, list[bytes], str]] | None = None) -> list[int]:
    """The node supervisor processes serving a data dir inside ``data_dir`` (each has a
    session of its own, so it is no descendant of the server or agent that started it)."""
    table = _proc_table() if table is None else table
    prefix = str(Path(data_dir).resolve()).encode()
    found = {pid for pid, (_, argv, _) in table.items()
             if any(a.endswith(b"jobplane/agent/supervisor.py") for a in argv) and any(a.startswith(prefix) for a in argv)}
    return [pid for pid in found if table[pid][0] not in found]  # not its forks before their exec


def waiters(supervisors: list[int], table: dict[int, tuple[int, list[bytes], str]] | None = None) -> list[int]:
    """The node supervisors' waiters: forks of a supervisor (its command line) that each watch one
    running container or wait, kept, for the next one (the runtime's shim, as conmon or
    containerd-shim are upstream's). Not in ``jobplane_processes``: as forks they share most of
    their pages with the supervisor, so their RSS would count those pages once per waiter;
    ``RssSampler`` adds their proportional share (PSS) instead."""
    table = _proc_table() if table is None else table
    sups = {pid: table[pid][1] for pid in supervisors if pid in table}
    return [pid for pid, (ppid, argv, _) in table.items() if ppid in sups and argv == sups[ppid]]


def _pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def jobplane_processes(server_pid: int, data_dir: Path, more: list[tuple[int, Path]] | None = None
                      ) -> dict[int, str]:
    """pid -> role of the jobplane processes of a server (and of standalone agents, ``more``:
    (pid, data dir) each): the process itself, every Python process below it (the agent
    child, helpers), and the node supervisor(s) of its data dir. Pods are not counted: what
    a supervisor starts is a container (bwrap, ``true``, podman), workload, even while it is
    still the supervisor's fork before its exec."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    roots = [(server_pid, data_dir, "server"), *((pid, d, "agent") for pid, d in (more or []))]
    roles: dict[int, str] = {}
    todo: list[tuple[int, str | None]] = []
    for pid, where, role in roots:
        todo.append((pid, role))
        for sup in node_supervisors(where, table):
            roles[sup] = "node supervisor"  # its children are containers
    while todo:
        pid, role = todo.pop()
        if pid in roles or pid not in table:
            continue
        argv, exe = table[pid][1], table[pid][2]
        if role is None:
            if "python" not in os.path.basename(exe):
                continue  # a container, and what runs below it
            role = "agent process" if b"jobplane.agent.child" in b" ".join(argv) else "python helper"
        roles[pid] = role
        todo += [(child, None) for child in children.get(pid, ())]
    return roles


def kill_node(data_dir: Path) -> None:
    """SIGKILL what the node supervisor(s) of ``data_dir`` still run (each container is its
    own process group), then the supervisors: pods outlive their agent by design, and a
    benchmark must not leave them behind."""
    table = _proc_table()
    for sup in node_supervisors(data_dir, table):
        for pid, (ppid, _, _) in table.items():
            if ppid == sup:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup, signal.SIGKILL)


class RssSampler:
    """Peak of the SUM of resident memory over a server's jobplane processes (``jobplane_processes``),
    sampled every ``period`` seconds in a thread, and the sum of their own peaks (VmHWM; an
    upper bound of the true peak of the sum, which sampling can only under-estimate)."""

    def __init__(self, server_pid: int, data_dir: Path, period: float = 0.25,
                 more: list[tuple[int, Path]] | None = None) -> None:
        import threading

        self.server_pid, self.data_dir, self.period = server_pid, data_dir, period
        self.more = more or []  # (pid, data dir) of standalone agents, counted too
        self.peak_sum_mb = 0.0
        self.last_sum_mb = 0.0
        self.hwm_mb: dict[int, float] = {}  # pid -> its last seen VmHWM
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._rescan = 0.0
        self._pids: list[int] = []
        self.waiters_pss_mb = 0.0  # the waiters' PSS at the last rescan (see ``waiters``)
        self.peak_with_waiters_mb = 0.0  # peak of the RSS sum plus that
        self.peak_waiters = 0

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def sample(self) -> None:
        now = time.monotonic()
        if now >= self._rescan:  # new processes (an agent child, a supervisor) appear rarely
            table = _proc_table()
            found = jobplane_processes(self.server_pid, self.data_dir, self.more)
            self._pids, self._rescan = list(found), now + 2.0
            self.names.update(found)
            shims = waiters([pid for pid, role in found.items() if role == "node supervisor"], table)
            pss = 0
            for pid in shims:
                try:
                    pss += _pss_kb(pid)
                except (OSError, ValueError):
                    continue
            self.waiters_pss_mb = pss / 1024
            self.peak_waiters = max(self.peak_waiters, len(shims))
        total = 0.0
        for pid in self._pids:
            try:
                rss = _status_kb(pid, "VmRSS") / 1024
                self.hwm_mb[pid] = max(self.hwm_mb.get(pid, 0.0), _status_kb(pid, "VmHWM") / 1024)
            except (OSError, ValueError):
                continue
            total += rss
        self.last_sum_mb = total
        self.peak_sum_mb = max(self.peak_sum_mb, total)
        self.peak_with_waiters_mb = max(self.peak_with_waiters_mb, total + self.waiters_pss_mb)

    @property
    def sum_hwm_mb(self) -> float:
        return sum(self.hwm_mb.values())

    def describe(self) -> str:
        parts = [f"{self.names.get(pid, '?')} {mb:.0f}" for pid, mb in sorted(self.hwm_mb.items())]
        return "peak RSS MiB by process: " + ", ".join(parts)


def machine_info() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {"nproc": str(os.cpu_count()), "cpu": model, "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def print_machine() -> None:
    info = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """A plain aligned table (stdout only; stays readable when piped into RESULTS.md)."""
    cells = [header] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    sys.stdout.flush()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v >= 100:
            return f"{v:,.0f}"
        if v >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def indexed_job(name: str, completions: int, parallelism: int, command: list[str], image: str = "local") -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"completions": completions, "parallelism": parallelism, "completionMode": "Indexed",
                 "backoffLimit": 6,
                 "template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "main", "image": image,
                                                       "command": command}]}}},
    }


async def wait_job_finished(api: aiohttp.ClientSession, ns: str, name: str, timeout: float,
                            poll: float = 0.1) -> dict:
    """Poll the Job until it has a Complete or Failed condition; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        async with api.get(f"/apis/batch/v1/namespaces/{ns}/jobs/{name}") as r:
            job = await r.json(loads=orjson.loads)
        for c in (job.get("status") or {}).get("conditions") or []:
            if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
                return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {name} not finished after {timeout}s: {job.get('status')}")
        await asyncio.sleep(poll)


class CpuGroup:
    """A cgroup of this benchmark and so of all it starts (a server, the node supervisor, its
    waiters, the sandboxes and what runs in them): their CPU however each process ends. Sums
    from /proc count a process once something reaps it and adds it up (a live waiter's own and
    reaped children, the supervisor's reaped children), and miss some (bench/RESULTS.md §19b);
    the group's counter needs no such chain. cgroup v1 ``cpuacct`` or v2 ``cpu.stat``; ``create``
    returns None where neither can be made (not root)."""

    def __init__(self, path: Path, usage: Path, v2: bool) -> None:
        self.path, self.usage_file, self.v2 = path, usage, v2

    @classmethod
    def create(cls) -> CpuGroup | None:
        name = f"jp-bench-{os.getpid()}"
        for root, v2 in ((Path("/sys/fs/cgroup/cpuacct"), False), (Path("/sys/fs/cgroup"), True),
                         (Path("/sys/fs/cgroup/unified"), True)):
            usage = "cpu.stat" if v2 else "cpuacct.usage"
            if not (root / usage).exists() and not (root / "cgroup.procs").exists():
                continue
            path = root / name
            try:
                path.mkdir()
            except OSError:
                continue
            group = cls(path, path / usage, v2)
            try:
                (path / "cgroup.procs").write_text(str(os.getpid()))
                group.usage()
            except (OSError, ValueError):
                group.close()
                continue
            return group
        return None

    def usage(self) -> float:
        """CPU seconds of the group so far."""
        text = self.usage_file.read_text()
        if not self.v2:
            return int(text) / 1e9
        return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("usage_usec")) / 1e6

    def close(self) -> None:
        with contextlib.suppress(OSError):
            (self.path.parent / "cgroup.procs").write_text(str(os.getpid()))
        for _ in range(100):  # the last supervisor's waiters may still be exiting
            try:
                self.path.rmdir()
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    return
            time.sleep(0.05)


class PySpy:
    """Optional ``py-spy record`` of the server for the duration of a ``with`` block."""

    def __init__(self, pid: int, out: str | None, rate: int = 100) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> PySpy:
        exe = ROOT / ".venv" / "bin" / "py-spy"
        if self.out and exe.exists():
            fmt = "raw" if self.out.endswith(".txt") else "flamegraph"
            self.proc = subprocess.Popen([str(exe), "record", "--pid", str(self.pid), "--rate", str(self.rate),
                                          "--format", fmt, "-o", self.out, "--nonblocking", "--threads"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


BENCH_IMAGE = "localhost/jobplane-bench-busybox:1"


def bench_image(engine: str) -> str:
    """A small local image for the image runtime's runs (Debian's busybox-static, so ``true``
    and ``sh`` exist in it), built once with ``engine import``; no registry needed."""
    import os
    import tarfile
    import tempfile

    if subprocess.run([engine, "image", "exists" if engine == "podman" else "inspect", BENCH_IMAGE],
                      capture_output=True).returncode == 0:
        return BENCH_IMAGE
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        archive = os.path.join(tmp, "rootfs.tar")
        with tarfile.open(archive, "w") as tar:
            tar.add("/bin/busybox", arcname="bin/busybox")
            for tool in ("sh", "true", "echo", "sleep"):
                info = tarfile.TarInfo(f"bin/{tool}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        subprocess.run([engine, "import", archive, BENCH_IMAGE], check=True, capture_output=True)
    return BENCH_IMAGE


def remove_engine_leftovers(engine: str, data_dir: Path) -> None:
    """What an image-runtime server left in the engine when it was stopped (containers that
    ended as it stopped, podman pods): removed by its agent label, as its next start would."""
    import hashlib

    agent = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
    label = f"label=jobplane.dev/agent={agent}"
    ids = subprocess.run([engine, "ps", "--all", "--quiet", "--filter", label], capture_output=True,
                         text=True).stdout.split()
    if ids:
        subprocess.run([engine, "rm", "--force", *ids], capture_output=True)
    if engine == "podman":
        pods = subprocess.run([engine, "pod", "ps", "--quiet", "--filter", label], capture_output=True,
                              text=True).stdout.split()
        if pods:
            subprocess.run([engine, "pod", "rm", "--force", *pods], capture_output=True)


def record_summary(bench: str, **figures: Any) -> None:
    """Append one benchmark's key figures to ``$JOBPLANE_BENCH_SUMMARY`` (a JSON-lines file) so
    ``bench/targets.py`` can print the issue's target table at the end of ``run_all.sh``."""
    path = os.environ.get("JOBPLANE_BENCH_SUMMARY")
    if path:
        row = {"bench": bench, "time": time.strftime("%H:%M:%S"), "load": os.getloadavg()[0], **figures}
        with open(path, "ab") as f:
            f.write(orjson.dumps(row) + b"\n")
