"""Fault harness: kill -9 the server, the node supervisor or a standalone agent at random
moments of running Indexed Jobs, or fill the disk under the data directory, and check that
every Job still ends exactly as it should.

Each pod appends ``start <index>`` and ``end <index>`` to a file outside the data dir, so the
harness can tell an index that ran twice from one that ran once. A scenario keeps starting
Jobs (one after the other) until all its faults have been injected, then checks:

* every Job Complete with ``succeeded == completions`` and ``failed == 0``;
* no index started twice (a re-run after a fault);
* no process left behind once everything was stopped (zombies, which a PID 1 that does not
  reap orphans leaves, are counted apart);
* time to recover: from each fault until the Job's ``succeeded`` count moves again.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
READY_RE = re.compile(r"ready at (https://\S+)")
POLL = 0.2


# --------------------------------------------------------------------------- processes


class Proc:
    """A jobplane process with its output in a file (appended across restarts)."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, ready: re.Pattern | None = None, timeout: float = 60.0) -> str:
        """Start; with ``ready``, wait for that line in what *this* run prints and return its group."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                         stdin=subprocess.DEVNULL)
        if ready is None:
            return ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                match = ready.search(f.read().decode(errors="replace"))
            if match:
                return match.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[2:4]} exited:\n{self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.argv[2:4]} not ready in {timeout}s:\n{self.tail()}")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def processes_mentioning(marker: str) -> list[int]:
    """Live (not zombie) pids whose command line holds ``marker``."""
    live = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and marker.encode() in cmd.replace(b"\0", b" "):
            live.append(int(entry))
    return live


def zombies_of_init() -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == b"Z" and fields[1] == b"1":
            found.add(int(entry))
    return found


def supervisor_pid(data_dir: Path) -> int | None:
    """The supervisor serving ``data_dir``: the one process holding ``supervisor.lock`` open
    (its waiters share its command line, and a killed one's waiters live on)."""
    lock = str(data_dir / "supervisor.lock")
    for pid in processes_mentioning(f"supervisor.py {data_dir}"):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == lock:
                        return pid
    return None


# --------------------------------------------------------------------------- API


class Api:
    def __init__(self, url: str, token: str, ca_file: Path) -> None:
        self.url = url
        self.token = token
        self.ctx = ssl.create_default_context(cafile=str(ca_file))

    def call(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
            return json.loads(resp.read())

    def try_call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self.call(method, path, body)
        except Exception:  # noqa: BLE001 - the server may be down right now: the caller retries
            return None


def job_manifest(name: str, completions: int, parallelism: int, record: Path, work: tuple[float, float]) -> dict:
    lo, hi = work
    script = (f'echo "start $JOB_COMPLETION_INDEX" >> {record}; '
              f'sleep $(awk -v s=$JOB_COMPLETION_INDEX "BEGIN {{srand(s); printf \\"%.2f\\", {lo}+rand()*{hi - lo}}}"); '
              f'echo "end $JOB_COMPLETION_INDEX" >> {record}')
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"completions": completions, "parallelism": parallelism, "completionMode": "Indexed",
                     "backoffLimit": 6,
                     "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
                                           "containers": [{"name": "w", "image": "busybox",
                                                           "command": ["sh", "-c", script]}]}}}}


# --------------------------------------------------------------------------- scenarios


@dataclass
class Options:
    backend: str = "sqlite"  # or a postgresql:// DSN (a throw-away schema is used)
    completions: int = 200
    parallelism: int = 10
    work: tuple[float, float] = (0.1, 0.6)  # seconds each pod sleeps
    kills: int = 5
    gap: tuple[float, float] = (1.0, 4.0)  # seconds between faults
    job_timeout: float = 1800.0  # 20 server kills on PostgreSQL each wait out a 15 s leader lease
    disk_hold: float = 8.0  # seconds the disk stays full
    tmpfs_mb: int = 96
    seed: int = 0


@dataclass
class Result:
    scenario: str
    backend: str
    faults: int = 0
    jobs: int = 0
    finished: int = 0
    exact: int = 0  # jobs with succeeded == completions and failed == 0
    twice: int = 0  # indexes started more than once
    orphans: int = 0
    zombies: int = 0
    recover: list[float] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.finished == self.jobs and self.exact == self.jobs and self.twice == 0
                and self.orphans == 0 and self.faults > 0)

    def row(self) -> str:
        rec = (f"{max(self.recover):.1f}/{sum(self.recover) / len(self.recover):.1f}"
               if self.recover else "-")
        return (f"{self.scenario:<16} {self.backend:<8} {self.faults:>6} {self.jobs:>4} {self.finished:>8} "
                f"{self.exact:>5} {self.twice:>5} {self.orphans:>7} {self.zombies:>7} {rec:>12} "
                f"{self.seconds:>7.0f}  {'ok' if self.ok else 'FAIL'}")


HEADER = (f"{'scenario':<16} {'backend':<8} {'faults':>6} {'jobs':>4} {'finished':>8} {'exact':>5} "
          f"{'twice':>5} {'orphans':>7} {'zombies':>7} {'recover max/avg s':>12} {'time s':>7}  result")


class Cluster:
    """A server (embedded agent, or ``--no-agent`` plus one standalone agent) on a private dir."""

    def __init__(self, root: Path, opts: Options, standalone_agent: bool) -> None:
        self.root = root
        self.opts = opts
        self.data = root / "data"
        self.agent_data = root / "agent"
        self.record_dir = root / "records"
        self.record_dir.mkdir(parents=True, exist_ok=True)
        self.standalone = standalone_agent
        env = {**os.environ, "HOME": str(root), "PYTHONUNBUFFERED": "1"}
        env.pop("KUBECONFIG", None)
        self.env = env
        self.schema = ""
        database = "sqlite"
        if opts.backend.startswith("postgres"):
            self.schema = f"faults_{os.getpid()}_{random.randrange(1 << 30):x}"
            sep = "&" if "?" in opts.backend else "?"
            database = f"{opts.backend}{sep}schema={self.schema}"
        flags = ["--no-agent"] if standalone_agent else []
        self.server = Proc([sys.executable, "-m", "jobplane", "server", "--data-dir", str(self.data),
                            "--port", "0", "--database", database, "--pod-backoff-base", "1",
                            "--node-name", "faults-node", *flags], root / "server.log", env)
        self.agent: Proc | None = None
        self.api: Api | None = None

    def start_server(self) -> None:
        url = self.server.start(READY_RE)
        self.api = Api(url, (self.data / "pki" / "token").read_text().strip(), self.data / "pki" / "ca.crt")

    def start_agent(self) -> None:
        assert self.api is not None
        if self.agent is None:
            self.agent = Proc([sys.executable, "-m", "jobplane", "agent", "--server", self.api.url,
                               "--token-file", str(self.data / "pki" / "token"),
                               "--ca-file", str(self.data / "pki" / "ca.crt"), "--name", "faults-node",
                               "--data-dir", str(self.agent_data), "--port", "-1"],
                              self.root / "agent.log", self.env)
        self.agent.start()

    @property
    def node_data(self) -> Path:
        return self.agent_data if self.standalone else self.data

    def start(self) -> None:
        self.start_server()
        if self.standalone:
            self.start_agent()

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.stop()
        self.server.stop()
        if self.schema:
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(self.opts.backend, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def job(self, name: str) -> dict | None:
        assert self.api is not None
        return self.api.try_call("GET", f"/apis/batch/v1/namespaces/default/jobs/{name}")


class Scenario:
    """Runs Jobs one after the other while ``inject`` is called at random moments."""

    name = "base"
    standalone = False

    def __init__(self, opts: Options, root: Path) -> None:
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.cluster = Cluster(root, opts, self.standalone)
        self.result = Result(self.name, "postgres" if opts.backend.startswith("postgres") else "sqlite")
        self.orphaned: set[int] = set()  # processes a fault left to init (a killed supervisor's waiters)

    def inject(self) -> None:
        raise NotImplementedError

    def faults_left(self) -> bool:
        return self.result.faults < self.opts.kills

    def run(self) -> Result:
        t0 = time.monotonic()
        c = self.cluster
        before_zombies = zombies_of_init()
        c.start()
        try:
            while self.faults_left():
                self._one_job()
        finally:
            c.stop()
            self._count_leftovers(before_zombies)
            self.result.seconds = time.monotonic() - t0
        return self.result

    def _one_job(self) -> None:
        c, r, o = self.cluster, self.result, self.opts
        r.jobs += 1
        name = f"faults-{r.jobs}"
        record = c.record_dir / f"{name}.txt"
        manifest = job_manifest(name, o.completions, o.parallelism, record, o.work)
        deadline = time.monotonic() + o.job_timeout
        while c.api.try_call("POST", "/apis/batch/v1/namespaces/default/jobs", manifest) is None:
            if c.job(name) is not None or time.monotonic() > deadline:
                break
            time.sleep(POLL)
        next_fault = time.monotonic() + self.rng.uniform(*o.gap)
        fault_at: float | None = None  # the last fault, until the Job moves again
        baseline = 0
        job = None
        while time.monotonic() < deadline:
            job = c.job(name) or job
            succeeded = ((job or {}).get("status") or {}).get("succeeded") or 0
            done = _finished(job)
            if fault_at is not None and (succeeded > baseline or done):
                r.recover.append(time.monotonic() - fault_at)
                fault_at = None
            if done:
                break
            if fault_at is None and self.faults_left() and time.monotonic() >= next_fault:
                baseline = succeeded
                self.inject()
                r.faults += 1
                fault_at = time.monotonic()
                next_fault = fault_at + self.rng.uniform(*o.gap)
            time.sleep(POLL)
        self._judge(job, record)

    def _judge(self, job: dict | None, record: Path) -> None:
        r, o = self.result, self.opts
        starts: dict[str, int] = {}
        ends: set[str] = set()
        with contextlib.suppress(OSError):
            for line in record.read_text().splitlines():
                kind, _, idx = line.partition(" ")
                if kind == "start":
                    starts[idx] = starts.get(idx, 0) + 1
                elif kind == "end":
                    ends.add(idx)
        if _finished(job):
            assert job is not None
            r.finished += 1
            status = job["status"]
            complete = any(cd.get("type") == "Complete" and cd.get("status") == "True"
                           for cd in status.get("conditions") or ())
            # The pods' own record must agree: every index ended (a record the pods could not
            # write, e.g. under a /tmp the sandbox hides, is no evidence).
            recorded = ends == {str(i) for i in range(o.completions)}
            if complete and status.get("succeeded") == o.completions and not status.get("failed") and recorded:
                r.exact += 1
            else:
                r.notes.append(f"{job['metadata']['name']}: succeeded={status.get('succeeded')} "
                               f"failed={status.get('failed')} conditions="
                               f"{[cd.get('reason') for cd in status.get('conditions') or ()]}, "
                               f"{len(ends)} of {o.completions} indexes recorded as ended")
        else:
            r.notes.append(f"{(job or {}).get('metadata', {}).get('name')}: not finished: "
                           f"{json.dumps((job or {}).get('status'))[:300]}")
        twice = sorted(int(i) for i, n in starts.items() if n > 1)
        r.twice += len(twice)
        if twice:
            r.notes.append(f"indexes started more than once: {twice[:20]}")

    def _count_leftovers(self, _before: set[int]) -> None:
        """After a clean stop the supervisor exits once idle; nothing of ours may remain."""
        marker = str(self.cluster.root)
        deadline = time.monotonic() + 30
        live: list[int] = []
        while time.monotonic() < deadline:
            live = processes_mentioning(marker)
            if not live:
                break
            time.sleep(0.5)
        self.result.orphans = len(live)
        if live:
            self.result.notes.append(f"left behind: {[_cmdline(p) for p in live][:5]}")
            for pid in live:  # do not leave them for the next scenario
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        self.result.zombies = len(self.orphaned & zombies_of_init())


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        return "?"


def _finished(job: dict | None) -> bool:
    for cd in ((job or {}).get("status") or {}).get("conditions") or ():
        if cd.get("type") in ("Complete", "Failed") and cd.get("status") == "True":
            return True
    return False


class ServerKill(Scenario):
    name = "server-kill"

    def inject(self) -> None:
        self.cluster.server.kill9()
        self.cluster.start_server()


class SupervisorKill(Scenario):
    name = "supervisor-kill"

    def inject(self) -> None:
        pid = None
        for _ in range(50):
            pid = supervisor_pid(self.cluster.node_data)
            if pid:
                break
            time.sleep(0.1)
        if pid:
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    self.orphaned.update(int(x) for x in f.read().split())
            os.kill(pid, signal.SIGKILL)
        else:
            self.result.notes.append("no supervisor found to kill")


class AgentKill(Scenario):
    name = "agent-kill"
    standalone = True

    def inject(self) -> None:
        assert self.cluster.agent is not None
        self.cluster.agent.kill9()
        self.cluster.start_agent()


class DiskFull(Scenario):
    """The data directory on a small tmpfs; a filler file takes every free byte for a while."""

    name = "disk-full"

    def __init__(self, opts: Options, root: Path) -> None:
        super().__init__(opts, root)
        self.mounted = False

    def run(self) -> Result:
        c = self.cluster
        c.data.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.opts.tmpfs_mb}m,mode=0700", "tmpfs",
                        str(c.data)], check=True)
        self.mounted = True
        try:
            return super().run()
        finally:
            subprocess.run(["umount", "-l", str(c.data)], check=False)

    def inject(self) -> None:
        filler = self.cluster.data / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 4096, 1):  # every free byte, down to the last one
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)
        time.sleep(self.opts.disk_hold)
        filler.unlink()


SCENARIOS = {cls.name: cls for cls in (ServerKill, SupervisorKill, AgentKill, DiskFull)}


def can_mount_tmpfs() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = Path(tempfile.mkdtemp(prefix="jobplane-tmpfs-probe-"))
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=False)
        return ok
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


def run_scenario(name: str, opts: Options, root: Path | None = None) -> Result:
    own = root is None
    # Not under /tmp: each pod has its own /tmp in the sandbox, and the pods write their
    # start/end records under the root.
    root = root or Path(tempfile.mkdtemp(prefix=f"jobplane-faults-{name}-",
                                         dir=os.environ.get("JOBPLANE_FAULTS_DIR", "/var/tmp")))
    result = SCENARIOS[name](opts, root).run()
    if own and result.ok:
        shutil.rmtree(root, ignore_errors=True)
    elif own:
        result.notes.append(f"kept for inspection: {root}")
    return result
