"""kubernetes/website's task "Fine Parallel Processing Using a Work Queue" with its manifests
unchanged (``tests/e2e/manifests/redis``: a Redis pod, its Service, a work-queue Job with
parallelism 2), run by ``jobplane agent --runtime podman``.

The images are made here: ``redis`` from Debian's redis-server and redis-cli (their libraries,
busybox as /bin/sh, an entrypoint that starts the server as the official image does without a
configuration file) and ``gcr.io/myproject/job-wq-2`` from the host's python3 with Debian's
python3-redis and our own worker (``tests/e2e/images``). Both names are untagged, so the pods
pull them (``Always``): a real registry (Debian's docker-registry) serves them, and the agent's
podman reaches it as a mirror of docker.io and gcr.io (``CONTAINERS_REGISTRIES_CONF``).

Everything that listens runs in a network namespace made by the test, joined to the host by a
veth pair: the agent (so redis-server binds 6379 there, on the node's address), its containers
and the registry (127.0.0.1:5000 there). The machine's own Redis on 127.0.0.1:6379 is neither
used nor changed. Podman keeps this test's images and containers in a store of its own
(``CONTAINERS_STORAGE_CONF``), so fixed names such as docker.io/library/redis:latest never meet
other tests' or the host's images, and teardown removes all of it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from image_helpers import (
    LIMITS,
    PATH,
    busybox_rootfs,
    debian_python_packages,
    end_lost_containers,
    import_image,
    podman,
    why_no_podman,
)
from jobs_helpers import AgentProcess, Cluster, wait_for

HERE = Path(__file__).parent
MANIFESTS = HERE / "manifests" / "redis"
IMAGE_FILES = HERE / "images"
ITEMS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange"]  # the task's
REGISTRY = shutil.which("docker-registry")
PYTHON = "/usr/bin/python3"
REDIS = ("/usr/bin/redis-server", "/usr/bin/redis-cli")
# what the worker does not need from the standard library (keeps the image about 40 MB)
STDLIB_LEFT_OUT = ("__pycache__", "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                   "pydoc_data")
NSSWITCH = "hosts: files dns\n"
# where the registry keeps each image, as the mirrors map docker.io/library/redis and gcr.io/myproject/job-wq-2
PUSHED = {"redis": "library/redis", "worker": "myproject/job-wq-2"}


def _why_not() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces, rootful podman)"
    why = why_no_podman()
    if why:
        return why
    for tool, package in (("ip", "iproute2"), ("nsenter", "util-linux"), ("ldd", "libc-bin")):
        if not shutil.which(tool):
            return f"{tool} is not installed (apt-get install {package})"
    if REGISTRY is None:
        return "Debian's docker-registry is not installed (apt-get install docker-registry)"
    if not all(os.access(path, os.X_OK) for path in REDIS):
        return "redis-server and redis-cli are not installed (apt-get install redis-server)"
    if not os.access(PYTHON, os.X_OK) or not Path("/usr/lib/python3/dist-packages/redis").is_dir():
        return "Debian's python3 with python3-redis is not installed (apt-get install python3-redis)"
    return ""


pytestmark = pytest.mark.skipif(bool(_why_not()), reason=_why_not() or "runs")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="session")
def tutorial_rootfs(tmp_path_factory) -> dict[str, Path]:
    """The two images' root file systems as tars (made once per test session)."""
    root = tmp_path_factory.mktemp("redis-images")
    entry = (IMAGE_FILES / "redis" / "docker-entrypoint.sh").read_text()
    redis = busybox_rootfs(["sh", "grep", "cat"]).add_host(*REDIS)
    redis.add_text("/usr/local/bin/docker-entrypoint.sh", entry, 0o755)
    redis.add_dir("/data").add_dir("/tmp", 0o1777).add_text("/etc/nsswitch.conf", NSSWITCH)
    where = subprocess.run([PYTHON, "-c", "import os, sysconfig; print(sysconfig.get_path('stdlib')); "
                            "print(os.path.basename(sysconfig.get_config_var('LIBPL')))"],
                           capture_output=True, text=True, check=True).stdout.split()
    stdlib, static_libs = where[0], where[1]  # /usr/lib/python3.X and its config-3.X-<arch> (not needed)
    worker = busybox_rootfs(["sh"]).add_host(PYTHON, stdlib, exclude=(*STDLIB_LEFT_OUT, static_libs))
    worker.add_host(*debian_python_packages("python3-redis"), exclude=("__pycache__",))
    worker.add_symlink("/usr/bin/python", "python3").add_dir("/tmp", 0o1777).add_text("/etc/nsswitch.conf", NSSWITCH)
    worker.add_text("/app/worker.py", (IMAGE_FILES / "job-wq-2" / "worker.py").read_text())
    return {"redis": redis.write(root / "redis.tar"), "worker": worker.write(root / "worker.tar")}


IMAGE_CHANGES = {
    # as the official image: ENTRYPOINT docker-entrypoint.sh, CMD redis-server, WORKDIR /data
    "redis": [f"ENV PATH={PATH}", "WORKDIR /data", 'ENTRYPOINT ["docker-entrypoint.sh"]', 'CMD ["redis-server"]'],
    # as the task's Dockerfile: WORKDIR /app, CMD python worker.py
    "worker": [f"ENV PATH={PATH}", "WORKDIR /app", 'CMD ["python", "worker.py"]'],
}


@dataclass
class Sandbox:
    netns: str
    node_ip: str  # the agent's side of the veth pair
    host_ip: str  # the server's side
    env: dict[str, str]  # podman's store and registries for this test
    storage_args: list[str]
    registry_log: Path

    def enter(self) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}"]

    def podman(self, *args: str, in_netns: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        return podman(*self.storage_args, *args, env=self.env, check=check, timeout=120,
                      prefix=self.enter() if in_netns else None)


def _container_files(root: Path, run: Path) -> tuple[dict[str, str], list[str]]:
    """podman's store (``run``: podman refuses a run root of more than 50 characters) and the
    registries: docker.io and gcr.io, each with the namespace's registry as an insecure mirror."""
    graph = root / "graph"
    storage = root / "storage.conf"
    storage.write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{graph}"\nrunroot = "{run}"\n')
    registries = root / "registries.conf"
    registries.write_text("".join(
        f'[[registry]]\nprefix = "{name}"\nlocation = "{name}"\n'
        '[[registry.mirror]]\nlocation = "127.0.0.1:5000"\ninsecure = true\n\n' for name in ("docker.io", "gcr.io")))
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(storage), "CONTAINERS_REGISTRIES_CONF": str(registries)}
    return env, ["--root", str(graph), "--runroot", str(run), "--storage-driver", "overlay"]


def _start_registry(sb: Sandbox, root: Path) -> subprocess.Popen:
    config = root / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {root / 'blobs'}\n"
                      "http:\n  addr: 127.0.0.1:5000\n")
    assert REGISTRY is not None
    with sb.registry_log.open("w") as out:
        proc = subprocess.Popen([*sb.enter(), REGISTRY, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    wait_for(lambda: proc.poll() is not None or "listening on 127.0.0.1:5000" in sb.registry_log.read_text(), 20,
             0.05, "the registry to listen")
    assert proc.poll() is None, sb.registry_log.read_text()
    return proc


def _teardown_engine(sb: Sandbox, roots: tuple[Path, Path]) -> None:
    """Whatever podman still holds in this test's store (``roots``: graph and run root):
    containers, pods, images, runc's records, mounts."""
    ids = sb.podman("ps", "--all", "--quiet", check=False).stdout.split()
    if ids:
        sb.podman("rm", "--force", "--time", "0", *ids, check=False)
    pods = sb.podman("pod", "ps", "--quiet", check=False).stdout.split()
    if pods:
        sb.podman("pod", "rm", "--force", *pods, check=False)
    sb.podman("rmi", "--all", "--force", check=False)
    lost = end_lost_containers(*roots)
    if lost:
        print(f"ended {len(lost)} container(s) podman had lost track of: {lost}")
    for line in reversed(Path("/proc/mounts").read_text().splitlines()):
        mountpoint = line.split()[1]
        if mountpoint.startswith((f"{roots[0]}/", f"{roots[1]}/")):
            subprocess.run(["umount", "--lazy", mountpoint], capture_output=True)


def _free_subnet(seed: int) -> str:
    """A 10.214.N.0/24 no interface here uses (another run of this test may hold one)."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for step in range(200):
        subnet = f"10.214.{(seed + step) % 200 + 20}"
        if f" {subnet}." not in used:
            return subnet
    raise AssertionError("no free 10.214.N.0/24 subnet")


@pytest.fixture(scope="module")
def sandbox(tutorial_rootfs, tmp_path_factory) -> Iterator[Sandbox]:
    """The network namespace (with a veth pair to the host), podman's own store, the registry
    in the namespace, and the two images pushed to it under the names the mirrors map to."""
    root = tmp_path_factory.mktemp("redis-sandbox")
    tag = secrets.token_hex(2)
    subnet = _free_subnet(int(tag, 16))
    netns, outer, inner = f"jprq{tag}", f"jprq{tag}h", f"jprq{tag}n"
    made = subprocess.run(["ip", "netns", "add", netns], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    run = Path(tempfile.mkdtemp(prefix="jpe2e-", dir="/run"))
    env, storage_args = _container_files(root, run)
    sb = Sandbox(netns, f"{subnet}.2", f"{subnet}.1", env, storage_args, root / "registry.log")
    registry: subprocess.Popen | None = None
    try:
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", netns)
        _ip("addr", "add", f"{sb.host_ip}/24", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("-n", netns, "addr", "add", f"{sb.node_ip}/24", "dev", inner)
        _ip("-n", netns, "link", "set", inner, "up")
        registry = _start_registry(sb, root)
        for name, tar in tutorial_rootfs.items():
            local = f"localhost/jpe2e-tutorial-{name}:1"
            import_image(tar, local, IMAGE_CHANGES[name], env=env)
            if name == "redis":
                probe = sb.podman("run", "--rm", "--network", "host", *LIMITS, local, "redis-server", "--version",
                                  check=False)
                if probe.returncode != 0 or "Redis server" not in probe.stdout:
                    pytest.skip(f"podman cannot run a container here: {(probe.stderr or probe.stdout).strip()[-300:]}")
            sb.podman("push", "--tls-verify=false", local, f"127.0.0.1:5000/{PUSHED[name]}:latest", in_netns=True)
            sb.podman("rmi", local)  # the pods get them from the registry only
        yield sb
    finally:
        _teardown_engine(sb, (root / "graph", run))
        if registry is not None:
            os.killpg(registry.pid, signal.SIGTERM)
            registry.wait(10)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        subprocess.run(["ip", "link", "del", outer], capture_output=True)  # gone with the namespace already
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="module")
def cl(sandbox, module_server_factory, tmp_path_factory) -> Iterator[Cluster]:
    """A server on the host's side of the veth pair and ``jobplane agent --runtime podman`` in
    the namespace, its podman using the test's store and registry mirrors."""
    srv = module_server_factory("--no-agent", "--host", sandbox.host_ip)
    pki = srv.data_dir / "pki"
    agent = AgentProcess(["--server", srv.url, "--token-file", str(pki / "token"), "--ca-file", str(pki / "ca.crt"),
                          "--name", "redis-node", "--port", "0", "--runtime", "podman"],
                         tmp_path_factory.mktemp("redis-agent"), {**srv.env, **sandbox.env}, prefix=sandbox.enter())
    cl = Cluster(srv)
    try:
        def ready() -> bool:
            nodes = json.loads(cl.kubectl("get", "nodes", "-o", "json", check=True).stdout)["items"]
            return any(c["type"] == "Ready" and c["status"] == "True" for n in nodes for c in n["status"]["conditions"])

        wait_for(ready, 30, 0.2, "the agent's node to be Ready")
        yield cl
    finally:
        # the agent stops what it runs, as on a node; what it leaves is the sandbox's to remove
        with contextlib.suppress(subprocess.TimeoutExpired):
            cl.kubectl("delete", "jobs,pods", "--all", "--wait=true", "--timeout=30s", timeout=40)
        agent.stop()
        print("--- agent output ---\n" + "".join(agent.output[-150:]))


def _host_redis() -> tuple[str, list[str]] | None:
    """The machine's own Redis on 127.0.0.1:6379, read only: (DBSIZE, keys like the task's);
    None when none answers."""
    cli = [REDIS[1], "-h", "127.0.0.1", "-p", "6379"]
    size = subprocess.run([*cli, "dbsize"], capture_output=True, text=True, timeout=10)
    if size.returncode != 0 or not size.stdout.strip().isdigit():
        return None
    keys = subprocess.run([*cli, "--scan", "--pattern", "job2*"], capture_output=True, text=True, timeout=10)
    return size.stdout.strip(), sorted(keys.stdout.split())


def test_redis_work_queue_task(cl, sandbox):
    host_before = _host_redis()
    assert host_before is None or not host_before[1], f"the host's Redis already has job2 keys: {host_before}"

    # Starting Redis
    cl.kubectl("apply", "-f", str(MANIFESTS / "redis-pod.yaml"), check=True)
    cl.kubectl("apply", "-f", str(MANIFESTS / "redis-service.yaml"), check=True)
    cl.kubectl("wait", "--for=condition=Ready", "pod/redis-master", "--timeout=60s", check=True, timeout=70)
    # the Service's name is in the image-run pod's /etc/hosts, at the node's address
    hosts_line = re.compile(rf"^{re.escape(sandbox.node_ip)}\s+redis\.default\.svc\.cluster\.local\b.*\sredis$",
                            re.MULTILINE)
    seen: list[str] = []

    def hosts_file() -> bool:
        out = cl.kubectl("exec", "redis-master", "--", "cat", "/etc/hosts")
        seen[:] = [out.stdout + out.stderr]
        return bool(hosts_line.search(out.stdout))

    try:
        wait_for(hosts_file, 30, 0.2, "the redis Service in the pod's /etc/hosts")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {seen}") from None

    # Filling the queue with tasks: the task's commands, typed into a shell in a temporary pod
    script = "".join(f'redis-cli -h redis rpush job2 "{item}"\n' for item in ITEMS) + \
        "redis-cli -h redis lrange job2 0 -1\n"
    out = cl.kubectl("run", "-i", "--rm", "temp", "--image", "redis", "--restart=Never", "--command", "--", "/bin/sh",
                     input=script, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line and not line.startswith("pod ")]
    assert lines[-2 * len(ITEMS):] == [str(n) for n in range(1, len(ITEMS) + 1)] + ITEMS, out.stdout

    # Running the Job
    cl.kubectl("apply", "-f", str(MANIFESTS / "job.yaml"), check=True)
    job = cl.wait_complete("job-wq-2", 90)
    assert job["status"]["succeeded"] >= 1 and not job["status"].get("failed"), job["status"]
    described = cl.kubectl("describe", "jobs/job-wq-2", check=True).stdout
    assert re.search(r"^Parallelism:\s+2$", described, re.MULTILINE), described
    assert re.search(r"^Completions:\s+<unset>$", described, re.MULTILINE), described
    assert re.search(r"^\s+Image:\s+gcr\.io/myproject/job-wq-2$", described, re.MULTILINE), described

    # every item worked on exactly once, across the workers, as their logs say
    pods = cl.job_pods("job-wq-2")
    assert len(pods) == 2 and all(p["status"]["phase"] == "Succeeded" for p in pods), [p["status"] for p in pods]
    worked: collections.Counter[str] = collections.Counter()
    sessions = set()
    per_pod = []
    for pod in pods:
        log = cl.kubectl("logs", f"pods/{pod['metadata']['name']}", check=True).stdout.splitlines()
        print(f"--- {pod['metadata']['name']} ---", *log, sep="\n")
        first = re.fullmatch(r"Worker with sessionID: ([0-9a-f-]{36})", log[0])
        assert first, log
        sessions.add(first.group(1))
        assert re.fullmatch(r"Initial queue state: empty=(True|False)", log[1]), log
        assert log[-1] == "Queue empty, exiting", log
        items = [line[len("Working on "):] for line in log if line.startswith("Working on ")]
        assert all(line.startswith(("Working on ", "Waiting for work")) for line in log[2:-1]), log
        per_pod.append(items)
        worked.update(items)
        status = pod["status"]["containerStatuses"][0]
        assert status["imageID"].startswith("sha256:") and status["containerID"].startswith("podman://")
    assert len(sessions) == 2
    assert worked == collections.Counter(ITEMS), per_pod
    assert max(len(items) for items in per_pod) > 1, per_pod  # "one of our pods worked on several work units"

    # the queue, its processing list and every lease are gone from the pod's Redis
    keys = cl.kubectl("exec", "redis-master", "--", "redis-cli", "--scan", "--pattern", "job2*", check=True)
    assert keys.stdout.split() == []
    assert cl.kubectl("exec", "redis-master", "--", "redis-cli", "dbsize", check=True).stdout.strip() == "0"

    # both images came from the registry, through the mirrors of docker.io and gcr.io
    served = sandbox.registry_log.read_text()
    for path in PUSHED.values():
        assert re.search(rf'"GET /v2/{re.escape(path)}/manifests/latest HTTP/1\.1" 200', served), path

    # the machine's own Redis was neither used nor changed
    assert _host_redis() == host_before
