"""Helpers for the Job/CronJob end-to-end tests: polling with deadlines, plain-dict reads
through the ``kubernetes`` client, and small manifest builders."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from jobplane.agent import rundir

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
NS = "default"
TERMINAL = ("Succeeded", "Failed")

T = TypeVar("T")


def wait_for(probe: Callable[[], T], timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> T:
    """Calls ``probe`` until it returns something truthy; fails with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


class Cluster:
    """Plain-dict access to one server (one ApiClient, re-made after a server restart)."""

    def __init__(self, srv: Any) -> None:
        self.srv = srv
        self._api: Any = None

    @property
    def api(self) -> Any:
        if self._api is None:
            self._api = self.srv.kube_client()
        return self._api

    def reconnect(self) -> None:
        self._api = None

    @property
    def batch(self) -> k8s.BatchV1Api:
        return k8s.BatchV1Api(self.api)

    @property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api)

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess:
        return self.srv.kubectl(*args, **kw)

    def apply(self, manifest: dict | str) -> str:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.kubectl("apply", "-f", "-", input=text, check=True).stdout

    def job(self, name: str) -> dict | None:
        try:
            resp = self.batch.read_namespaced_job(name, NS, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return json.loads(resp.data)

    def pods(self, selector: str) -> list[dict]:
        resp = self.core.list_namespaced_pod(NS, label_selector=selector, _preload_content=False)
        return json.loads(resp.data)["items"]

    def job_pods(self, job: str) -> list[dict]:
        return self.pods(f"job-name={job}")

    def log(self, pod: str) -> str:
        return self.core.read_namespaced_pod_log(pod, NS)

    def wait_finished(self, name: str, timeout: float = 30.0) -> dict:
        """The job once it has a true Complete or Failed condition."""

        def probe() -> dict | None:
            job = self.job(name)
            if job and (condition(job, "Complete") or condition(job, "Failed")):
                return job
            return None

        return wait_for(probe, timeout, what=f"job {name} to finish")

    def wait_complete(self, name: str, timeout: float = 30.0) -> dict:
        job = self.wait_finished(name, timeout)
        assert condition(job, "Complete"), f"job {name} did not complete: {job.get('status')}"
        return job

    def wait_no_pods(self, selector: str, timeout: float = 30.0) -> None:
        wait_for(lambda: not self.pods(selector), timeout, what=f"pods {selector} to be gone")

    def kill_server(self) -> None:
        """SIGKILL the server process (its pods' shims keep running in their own sessions)."""
        proc, self.srv.proc = self.srv.proc, None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.reconnect()

    def restart(self) -> None:
        self.srv.start()
        self.reconnect()


def condition(obj: dict, ctype: str) -> dict | None:
    """The condition of type ``ctype`` when its status is "True"."""
    for cond in obj.get("status", {}).get("conditions") or ():
        if cond.get("type") == ctype and cond.get("status") == "True":
            return cond
    return None


def phase(pod: dict) -> str:
    return pod.get("status", {}).get("phase", "")


def parse_time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def job_manifest(name: str, command: list[str], restart: str = "Never", **spec: Any) -> dict:
    """A batch/v1 Job running ``command`` in one container named ``c``."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {
                "restartPolicy": restart,
                "containers": [{"name": "c", "image": "busybox", "command": command}]}}}}


def process_running(marker: str) -> bool:
    """Whether a process whose command line contains ``marker`` exists (pods are host processes)."""
    out = subprocess.run(["pgrep", "-f", "--", marker], capture_output=True, text=True)
    return out.returncode == 0


def load_example(rel: str) -> dict:
    return yaml.safe_load((EXAMPLES / rel).read_text())


def set_env(manifest: dict, values: dict[str, str]) -> dict:
    """Sets ``env`` values of every container in a Job manifest (the examples' placeholders)."""
    for container in manifest["spec"]["template"]["spec"]["containers"]:
        for env in container.get("env", ()):
            if env["name"] in values:
                env["value"] = values[env["name"]]
    return manifest


def runtime_pods_dir(data_dir: Path) -> Path:
    """Where the agent on ``data_dir`` keeps its pods' runtime files (volume contents, tokens,
    run state; agent/rundir.py): the first candidate in memory that exists, else the data dir."""
    for path in rundir.candidates(data_dir.resolve(), os.geteuid(), os.environ):
        if (path / "pods").is_dir():
            return path / "pods"
    return data_dir / "pods"


def kill_pod_processes(data_dir: Path) -> None:
    """SIGKILLs the process groups of everything under the node supervisor serving ``data_dir``
    (its waiters and their containers, which are the waiters' children), then the supervisor:
    pods outlive their agent by design, and a test must not leave its processes behind."""
    stats: dict[int, int] = {}  # pid -> parent pid
    supervisors = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            stats[int(entry.name)] = int((entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if any(arg.endswith(b"jobplane/agent/supervisor.py") for arg in cmdline) and \
                str(data_dir).encode() in cmdline:
            supervisors.append(int(entry.name))
    killed: list[int] = []
    for sup in supervisors:
        below, frontier = [], [sup]
        while frontier:  # every descendant, not only the children
            frontier = [pid for pid, ppid in stats.items() if ppid in frontier]
            below += frontier
        for pid in reversed(below):  # containers before the waiters that would record them
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        try:
            os.kill(sup, signal.SIGKILL)
        except ProcessLookupError:
            pass
        killed += [*below, sup]
    # Until they are gone from /proc, as after a reboot: a killed container that is a zombie
    # not yet reaped (its waiter died first) counts as running for a restarted agent.
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.02)
    run = runtime_pods_dir(data_dir)
    if run != data_dir / "pods":  # and what they left in memory
        shutil.rmtree(run.parent, ignore_errors=True)


class AgentProcess:
    """A standalone ``jobplane agent`` started by a test: its output is collected, and ``stop``
    ends it, then SIGKILLs what its node supervisor still runs (pods outlive their agent)."""

    def __init__(self, agent_args: list[str], data_dir: Path, env: dict[str, str],
                 prefix: list[str] | None = None) -> None:
        self.data_dir = data_dir
        cmd = [*(prefix or []), sys.executable, "-m", "jobplane", "agent", *agent_args,
               "--data-dir", str(data_dir)]
        self.output: list[str] = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**env, "PYTHONUNBUFFERED": "1"})
        stdout = self.proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: self.output.extend(stdout), daemon=True).start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        kill_pod_processes(self.data_dir)


def cluster_factory(server_factory: Callable[..., Any]) -> Iterator[Callable[..., Cluster]]:
    """Body of a ``cluster`` fixture: ``make(*flags)`` starts a server with the node agent;
    teardown stops it and then kills whatever pod processes it left running."""
    made: list[Cluster] = []

    def make(*flags: str) -> Cluster:
        cl = Cluster(server_factory(*flags))
        made.append(cl)
        return cl

    yield make
    for cl in made:
        cl.srv.stop()
        kill_pod_processes(cl.srv.data_dir)


def pinged_in_order(log: str, count: int = 3) -> bool:
    """The pod-to-pod example's log: each peer pinged once, in index order, the last line the
    last peer's success. A failure may sit between two successes: a name appears when its
    pod is ready, so the next peer may not be resolvable yet."""
    lines = log.splitlines()
    successes = [line for line in lines if line.startswith("Successfully pinged")]
    return bool(lines) and lines[-1] == successes[-1] and successes == [
        f"Successfully pinged pod: example-job-{n}.headless-svc" for n in range(count)]
