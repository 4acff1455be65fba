"""End-to-end fixtures: a real ``jobplane server`` subprocess (own data dir, own HOME, port 0)
driven by ``/usr/bin/kubectl`` and the ``kubernetes`` client.

The servers run in the mode ``JOBPLANE_PROCESSES`` names (the flag's environment twin, passed
on to each server; unset: the default, one process); ``scripts/test.sh`` runs the suite in
both modes."""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jobs_helpers import cluster_factory, kill_pod_processes

KUBECTL = "/usr/bin/kubectl"
READY_TIMEOUT = 60.0
_READY = re.compile(r"ready at (https://\S+)")
_OWN_COMPONENT_REFUSED = re.compile(r'is forbidden: User "system:(serviceaccount:kube-system:|kube-|node:)')


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


class JobplaneServer:
    """One server process; ``start``/``stop`` may be called again on the same data dir."""

    def __init__(self, root: Path, flags: tuple[str, ...] = ()) -> None:
        self.data_dir = root / "data"
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = self.data_dir / "kubeconfig"
        self.flags = flags
        self.url = ""
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        self.env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home)}
        self.nofile: int | None = None  # RLIMIT_NOFILE of the server process (``ulimit -n``)

    def start(self) -> None:
        # JOBPLANE_E2E_LAUNCHER: a script to run instead of ``-m jobplane`` (debugging hook).
        launcher = os.environ.get("JOBPLANE_E2E_LAUNCHER")
        entry = [launcher] if launcher else ["-m", "jobplane"]
        cmd = [sys.executable, *entry, "server", "--data-dir", str(self.data_dir), "--port", "0",
               *self.flags]
        server_env = {**self.env, "PYTHONUNBUFFERED": "1"}
        nofile = self.nofile

        def limit_files() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=server_env, preexec_fn=limit_files if nofile else None)
        ready = threading.Event()

        def pump(stream) -> None:
            for line in stream:
                self.output.append(line)
                match = _READY.search(line)
                if match and not ready.is_set():
                    self.url = match.group(1)
                    ready.set()
            ready.set()  # the process ended: stop waiting

        threading.Thread(target=pump, args=(self.proc.stdout,), daemon=True).start()
        if not ready.wait(READY_TIMEOUT) or not self.url:
            self.stop()
            raise RuntimeError("jobplane server did not become ready:\n" + "".join(self.output[-80:]))

    def stop(self, timeout: float = 20.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None

    def kubectl(self, *args: str, check: bool = False, timeout: float = 60,
                input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([KUBECTL, *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def kubectl_popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([KUBECTL, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def kube_client(self):
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def token(self) -> str:
        return (self.data_dir / "pki" / "token").read_text().strip()

    def ca_file(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"


def _servers(new_root: Callable[[int], Path]) -> Iterator[Callable[..., JobplaneServer]]:
    """Body of the server fixtures: ``make(*flags)`` starts a server in ``new_root(n)``;
    teardown stops each one, ends what its node supervisor still runs, and prints its output
    (shown by pytest only when a test failed)."""
    started: list[JobplaneServer] = []

    def make(*flags: str) -> JobplaneServer:
        srv = JobplaneServer(new_root(len(started)), flags)
        started.append(srv)
        srv.start()
        return srv

    yield make
    refused = []
    for srv in started:
        srv.stop()
        kill_pod_processes(srv.data_dir)  # pods outlive their server by design; not a test's
        print(f"--- server output ({srv.data_dir}) ---\n" + "".join(srv.output[-200:]))
        refused += [line for line in srv.output if _OWN_COMPONENT_REFUSED.search(line)]
    # the controllers and the embedded agent act with least-privilege identities: a refusal of
    # one of their own requests is an RBAC mistake, whatever the test checked
    assert not refused, "a control-plane component was refused:\n" + "".join(refused[:5])


@pytest.fixture
def server_factory(tmp_path) -> Iterator:
    """``server_factory("--no-agent", ...)`` starts a server with extra flags."""
    yield from _servers(lambda n: tmp_path / f"s{n}")


@pytest.fixture
def jp(server_factory) -> JobplaneServer:
    """A server without the node agent: pods are created but never run."""
    return server_factory("--no-agent")


@pytest.fixture
def cluster(server_factory) -> Iterator:
    """``cluster(*flags)`` starts a server with its node agent and the ``Cluster`` helpers
    (kubectl, the Python client, waits); teardown kills whatever pod processes it left."""
    yield from cluster_factory(server_factory)


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory) -> Iterator:
    """``server_factory`` for a server shared by every test of a module (start it once
    when the tests only add objects of their own)."""
    yield from _servers(lambda n: tmp_path_factory.mktemp("srv"))
