"""The image runtime: each container runs from its image through the ``podman`` or
``docker`` command line (one class; the binary and a few differences are parameters).

How a container runs: the node supervisor (``agent/supervisor.py``) starts the engine's
foreground ``run`` for it (``podman run --name ... IMAGE ...``, never through a shell), so
the supervisor's waiter is the parent of the engine client, reads its stdout/stderr into
the pod's log files as for host processes (``kubectl logs`` unchanged), and records its
exit status, which is the container's. The engine keeps the container itself (conmon or
dockerd), so the agent stops it through the engine (``kill --signal``), reads how it
ended (``inspect``: exit code, OOM kill, start error) and then removes it.

The client starts long before the container does (the engine still creates it), so the
container is running only once the engine says so, as kubelet's are: the client writes the
container's id to a cid file once it has created it (``--cidfile``, both engines; a stat
while waiting), then ``inspect`` (usually once) gives the engine's ``StartedAt``. Until then
the container waits (ContainerCreating): no Ready, no probes, no postStart hook.

Every container carries labels naming its pod (``io.kubernetes.pod.uid``/``namespace``/
``name``, ``io.kubernetes.container.name``) and the agent that made it
(``jobplane.dev/agent``), and a name in the dockershim style
``k8s_<container>_<pod>_<namespace>_<uid>_<restartCount>``, so a restarted agent finds
its containers again and removes those whose pod is gone.

Podman puts a pod's containers in one podman pod (``k8s_POD_<pod>_<namespace>_<uid>``)
with the host's network and a shared IPC and UTS namespace (the pod's hostname); Docker
has no pods: its containers use the host's network and IPC namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobplane import podlogs
from jobplane.agent.execsession import ExecSpec, ProcessSession
from jobplane.agent.runtime import ContainerHandle, ExitInfo, HostProcessRuntime, ProcessSpec
from jobplane.agent.sandbox import Mount
from jobplane.agent.supervisor import claim_held, run_recorded
from jobplane.clock import Clock

log = logging.getLogger(__name__)

ENGINES = ("podman", "docker")
ENGINE_FILE = "engine.json"
CID_FILE = "cid"  # in a container run's state dir: the engine writes the container's id there once it created it
# Seeing a new container run: its cid file is looked for this often (a stat, no process), then
# the engine is asked (one ``inspect`` each) after these pauses, the last one repeated.
CID_POLL = 0.025
START_POLLS = (0.0, 0.05, 0.1, 0.2, 0.4)
IMAGE_ID_TTL = 5.0
NODE_STATUS_MAX_IMAGES = 50
REMOVAL_WAIT = 10.0  # at shutdown, for ended containers still being removed
PULL_TIMEOUT = 3600.0  # a large image over a slow link  # in a container run's state dir: which engine container it is
AGENT_LABEL = "jobplane.dev/agent"
POD_UID_LABEL = "io.kubernetes.pod.uid"
# Environment variables the engine client itself reads: a container's variable of that name
# is given on the command line instead of through the client's environment.
_CLIENT_VARS = ("PATH", "HOME", "TMPDIR", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "REGISTRY_AUTH_FILE",
                "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
_ZERO_TIME = "0001-01-01"
# The engine's own defaults for a container's open files and processes exceed the hard
# limits of some machines (containers inside containers); then they are clamped to ours.
_ENGINE_NOFILE, _ENGINE_NPROC, _CONMON_NPROC = 1048576, 4194304, 32768


class PullError(Exception):
    pass


@dataclass
class ImageSpec:
    """A container to run from an image (the worker's part of a ``ProcessSpec``)."""

    image: str  # as the pod names it
    image_ref: str  # what to run: the image's id on this node
    command: list[str]  # the pod's command and args, $(VAR)-expanded
    args: list[str]
    env: dict[str, str]
    name: str  # engine container name
    pod_name: str  # engine pod name
    hostname: str
    labels: dict[str, str]
    mounts: list[Mount] = field(default_factory=list)
    workdir: str | None = None
    memory: int | None = None
    cpus: float | None = None
    user: str | None = None  # "uid[:gid]"
    groups: list[int] = field(default_factory=list)
    read_only: bool = False
    stdin: bool = False
    tty: bool = False
    # The pod has other containers (init, sidecars): podman puts them in one pod sharing IPC
    # and UTS. A lone container gets its own instead (no pod, no infra container to start).
    shared: bool = True
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    no_new_privileges: bool = False


def container_name(container: str, pod: str, namespace: str, uid: str, attempt: int) -> str:
    return f"k8s_{container}_{pod}_{namespace}_{uid}_{attempt}"


def pod_sandbox_name(pod: str, namespace: str, uid: str) -> str:
    return f"k8s_POD_{pod}_{namespace}_{uid}"


def uid_of(name: str) -> str | None:
    """The pod uid in a name made by ``container_name`` / ``pod_sandbox_name``."""
    parts = name.lstrip("/").split("_")
    return parts[4] if len(parts) >= 5 and parts[0] == "k8s" else None


CREATING, RUNNING, NEVER, ABSENT = "creating", "running", "never", "absent"


def start_seen(state: dict[str, Any] | None) -> tuple[str, float | None]:
    """What the engine's record (``inspect``'s ``State``) says of a container's start:
    (RUNNING, its StartedAt) once it runs or has run (StartedAt None when the engine gives
    none), (CREATING, None) while it is being created or started, (NEVER, None) when it ended
    without running, (ABSENT, None) when the engine has no such container (yet, or any more)."""
    if state is None:
        return ABSENT, None
    started = _engine_time(state.get("StartedAt"))
    status = str(state.get("Status") or "").lower()
    if started is not None or status in ("running", "paused") or state.get("Running") is True:
        return RUNNING, started
    if status in ("exited", "stopped", "dead", "removing"):
        return NEVER, None
    return CREATING, None


def start_poll_delay(attempt: int) -> float:
    """The pause before the ``attempt``-th (from 0) look at a created container's state."""
    return START_POLLS[min(attempt, len(START_POLLS) - 1)]


def entrypoint_argv(engine: str, command: list[str], args: list[str]) -> tuple[list[str], list[str]]:
    """The engine options and trailing words that give Kubernetes's rules: ``command``
    replaces the image's ENTRYPOINT (and drops its CMD), ``args`` replace its CMD; neither
    keeps both. Podman takes the whole entrypoint as JSON; Docker's takes one program."""
    if command:
        if engine == "podman":
            return ["--entrypoint", json.dumps(command)], list(args)
        return ["--entrypoint", command[0]], [*command[1:], *args]
    return [], list(args)


def probe(engine: str, binary: str | None = None) -> tuple[str | None, str]:
    """(the engine's version, "") when its command line answers here, else (None, why)."""
    path = binary or shutil.which(engine)
    if not path:
        return None, f"{engine} is not installed"
    fmt = "{{.Client.Version}}" if engine == "podman" else "{{.Server.Version}}"
    try:
        out = subprocess.run([path, "version", "--format", fmt], capture_output=True, text=True, timeout=30,
                             env=client_environment(engine))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{engine} cannot run: {exc}"
    if out.returncode != 0 or not out.stdout.strip():
        lines = (out.stderr or out.stdout).strip().splitlines()
        return None, f"{engine} does not answer: {lines[-1] if lines else f'exit status {out.returncode}'}"
    return out.stdout.strip(), ""


def client_environment(engine: str, conf: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_") and k != "KUBECONFIG"}
    if engine == "podman" and conf is not None and "CONTAINERS_CONF" not in env:
        env["CONTAINERS_CONF"] = str(conf)
    return env


def _limits_conf(path: Path) -> Path | None:
    """A ``containers.conf`` clamping podman's default ulimits to this process's hard limits
    when those are lower (podman's own defaults then fail every start); None when not needed."""
    lines = []
    for name, which, default, ceiling in (("nofile", resource.RLIMIT_NOFILE, _ENGINE_NOFILE, None),
                                          ("nproc", resource.RLIMIT_NPROC, _ENGINE_NPROC, _CONMON_NPROC)):
        hard = resource.getrlimit(which)[1]
        if hard != resource.RLIM_INFINITY and hard < default:
            # podman starts conmon with at most 32768 processes; without CAP_SYS_RESOURCE
            # nothing below it may raise the limit again.
            value = min(hard, ceiling) if ceiling else hard
            lines.append(f'"{name}={value}:{value}"')
    if not lines:
        return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text("[containers]\ndefault_ulimits = [" + ", ".join(lines) + "]\n")
    return path


class EngineHandle(ContainerHandle):
    """A container run by the engine. Its end: the engine client's exit (through the
    supervisor), then the engine's record (``inspect``), then the container is removed."""

    def __init__(self, runtime: EngineRuntime, name: str, inner: ContainerHandle | None, log_path: Path | None,
                 memory: bool, cid_path: Path | None = None) -> None:
        self.rt = runtime
        self.name = name
        self.inner = inner
        self.pid = inner.pid if inner is not None else 0
        self.pid_start = inner.pid_start if inner is not None else None
        self.log_path = log_path
        self.memory = memory
        self.container_id = f"{runtime.engine}://{name}"
        self._info: ExitInfo | None = None
        self._lock = asyncio.Lock()
        self._signals: set[asyncio.Task] = set()
        self.seen_running = False  # the engine has reported it running (it can be entered)
        self.cid_path = cid_path
        self._client_ended = False
        self._start: asyncio.Future[float | None] | None = None

    async def running_since(self) -> float | None:
        """The engine's start time of the container once it runs (the moment it was seen
        running when the engine gives none); None when it ended without running. One watch
        per container, shared by every caller."""
        if self._start is None:
            self._start = asyncio.ensure_future(self._watch_start())
        return await asyncio.shield(self._start)

    def _client_alive(self) -> bool:
        return self.inner is not None and not self._client_ended and _client_running(self.inner)

    async def _watch_start(self) -> float | None:
        """Until the engine runs it: while its client lives and the engine has not written the
        container's id, only the cid file is looked at; then ``inspect`` with a short back-off.
        A client that is gone leaves the engine's record to decide, once."""
        clock = self.rt.clock
        while self.cid_path is not None and not _has_content(self.cid_path) and self._client_alive():
            await clock.sleep(CID_POLL)
        attempt = 0
        while True:
            alive = self._client_alive()
            seen, at = start_seen(await self.rt.inspect(self.name))
            if seen == RUNNING:
                self.seen_running = True
                return at if at is not None else clock.now()
            if seen == NEVER or not alive:
                return None
            attempt += 1
            await clock.sleep(start_poll_delay(attempt))

    async def wait(self) -> ExitInfo:
        async with self._lock:
            if self._info is None:
                self._info = await self._ended()
        return self._info

    async def _ended(self) -> ExitInfo:
        client = await self.inner.wait() if self.inner is not None else None
        self._client_ended = True
        # the start watch reads the engine's record: it must see it before it is removed
        await self.running_since()
        if client is not None and client.exit_code == 0 and client.reason is None:
            # it ran and exited 0 (the client exits 125-127 when it cannot start it): nothing
            # to learn from the engine's record
            self.rt.remove_soon(self.name)
            return client
        state = await self.rt.inspect(self.name)
        if state is not None and state.get("Status") in ("running", "paused", "stopping") or (
                state is not None and client is None):
            await self.rt.wait_engine(self.name)  # the client is gone; the engine still runs it
            state = await self.rt.inspect(self.name)
        info = self._from_state(state, client)
        self.rt.remove_soon(self.name)
        return info

    def _from_state(self, state: dict[str, Any] | None, client: ExitInfo | None) -> ExitInfo:
        if state is None:  # the engine has no record: what the client said
            if client is not None and client.reason is None and client.exit_code in (125, 126, 127):
                message = self._client_error() or f"{self.rt.engine} run failed with exit code {client.exit_code}"
                return ExitInfo(128, client.finished_at, "StartError", message)
            return client or ExitInfo(137, None, "ContainerStatusUnknown",
                                      "The container could not be located when the agent restarted", unlocated=True)
        finished = _engine_time(state.get("FinishedAt")) or self.rt.clock.now()
        started = str(state.get("StartedAt") or "")
        if not started or started.startswith(_ZERO_TIME):
            message = str(state.get("Error") or "") or self._client_error() or "the container did not start"
            return ExitInfo(128, finished, "StartError", message)
        code = int(state.get("ExitCode") or 0)
        oom = bool(state.get("OOMKilled")) or (code == 137 and self.memory and kernel_oom_kill(str(state.get("Id", ""))))
        return ExitInfo(code, finished, "OOMKilled" if oom else None, None,
                        signal.SIGKILL if code == 137 else None)

    def _client_error(self) -> str:
        """The engine's own complaint: the last line it wrote to the container's stderr."""
        if self.log_path is None:
            return ""
        try:
            lines = self.log_path.read_bytes().splitlines()[-5:]
        except OSError:
            return ""
        for raw in reversed(lines):
            parsed = podlogs.parse_line(raw + b"\n") if not raw.endswith(b"\n") else podlogs.parse_line(raw)
            if parsed is None:
                continue
            text = parsed[1].decode("utf-8", "replace").strip()
            if text.startswith("Error: "):
                return text[len("Error: "):]
        return ""

    def signal_group(self, sig: int) -> None:
        if self._info is not None:
            return
        task = asyncio.ensure_future(self._signal(sig))
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)

    async def _signal(self, sig: int) -> None:
        """``kill --signal`` through the engine; while the container is still being created the
        engine does not know it yet, so keep asking until it does or the client has ended."""
        for _attempt in range(100):
            if await self.rt.kill(self.name, sig):
                return
            if self._info is not None or (self.inner is not None and not _client_running(self.inner)):
                return
            await self.rt.clock.sleep(0.1)


def _has_content(path: Path) -> bool:
    """Whether the engine wrote the cid file (podman opens it empty before it creates the
    container and writes the id after)."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _client_running(inner: ContainerHandle) -> bool:
    try:
        os.kill(inner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _engine_time(raw: Any) -> float | None:
    """``2024-01-02T03:04:05.123456789Z`` (docker) or ``2024-01-02 03:04:05.123 +0000 UTC``
    (podman) as epoch seconds; None for the zero time."""
    text = str(raw or "")
    if not text or text.startswith(_ZERO_TIME):
        return None
    import datetime as dt

    main = text.replace("T", " ").split(" +")[0].rstrip("Z").strip()
    date_part, _, frac = main.partition(".")
    try:
        base = dt.datetime.strptime(date_part, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    digits = "".join(ch for ch in frac if ch.isdigit())
    return base.timestamp() + (float("0." + digits) if digits else 0.0)


def kernel_oom_kill(container_id: str) -> bool:
    """Whether the kernel log records an OOM kill in this container's memory cgroup. Podman's
    conmon misses them on hosts with cgroups v1 in hybrid mode (it reports ``OOMKilled:
    false``); the kernel's ``oom-kill:`` record names the cgroup, which holds the id."""
    if len(container_id) < 12:
        return False
    needle = container_id.encode()
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                return False
            except OSError:  # EPIPE: records overwritten while reading; keep going
                continue
            if not record:
                return False
            if b"oom-kill:" in record and needle in record:
                return True
    finally:
        os.close(fd)


class EngineRuntime(HostProcessRuntime):
    """Pods from images through ``podman`` or ``docker`` (``engine``)."""

    runs_images = True
    confirms_start = True

    def __init__(self, clock: Clock, engine: str = "podman", *, data_dir: Path | None = None,
                 binary: str | None = None, version: str = "", poll_interval: float = 0.5) -> None:
        super().__init__(clock, data_dir=data_dir, poll_interval=poll_interval, cgroup_root=None)
        if engine not in ENGINES:
            raise ValueError(f"unknown container engine {engine!r}")
        self.engine = engine
        self.binary = binary or shutil.which(engine) or engine
        self.version = version
        self.agent_id = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:16]
        conf = _limits_conf(self.data_dir / "engine" / "containers.conf") if engine == "podman" else None
        self.client_env = client_environment(engine, conf)
        self._pods: set[str] = set()
        self._pod_lock = asyncio.Lock()
        self._dirs: dict[tuple[str, str], bool] = {}  # (image id, path): a directory in the image
        self._image_ids: dict[str, tuple[str, float]] = {}  # name -> (id, when looked up)
        self._removals: set[asyncio.Task] = set()

    @property
    def runtime_version(self) -> str:
        return f"{self.engine}://{self.version or 'unknown'}"

    # ------------------------------------------------------------ the engine CLI

    async def _cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600.0,
                   stdin: bytes | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            self.binary, *args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or self.client_env)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return 124, "", f"{self.engine} {args[0]} timed out after {timeout:g}s"
        except asyncio.CancelledError:  # the pod was stopped meanwhile (a pull): stop the client too
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        return proc.returncode or 0, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    async def inspect(self, name: str) -> dict[str, Any] | None:
        """The container's ``State`` (with its ``Id``), None when the engine has no such container."""
        rc, out, _ = await self._cli("container", "inspect", name, timeout=60)
        if rc != 0:
            return None
        try:
            doc = json.loads(out)[0]
        except (ValueError, IndexError, KeyError):
            return None
        return {**(doc.get("State") or {}), "Id": doc.get("Id") or doc.get("ID") or ""}

    async def wait_engine(self, name: str) -> None:
        await self._cli("wait", name, timeout=365 * 86400)

    async def kill(self, name: str, sig: int) -> bool:
        rc, _, err = await self._cli("kill", "--signal", str(int(sig)), name, timeout=60)
        if rc != 0 and "not running" in err.lower():
            return True  # already ended
        return rc == 0

    async def remove(self, name: str) -> None:
        await self._cli("rm", "--force", name, timeout=120)

    def remove_soon(self, name: str) -> None:
        """Remove the ended container without holding up its exit's report."""
        task = asyncio.ensure_future(self.remove(name))
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def image_id(self, image: str) -> str | None:
        """The id of the image the node has under that name (None: not present). A hit is
        remembered for a few seconds: a Job's pods start from the same image in bursts."""
        now = self.clock.now()
        hit = self._image_ids.get(image)
        if hit is not None and now - hit[1] < IMAGE_ID_TTL:
            return hit[0]
        rc, out, _ = await self._cli("image", "inspect", "--format", "{{.Id}}", image, timeout=60)
        found = out.strip().splitlines()[0] if rc == 0 and out.strip() else None
        if found is not None:
            self._image_ids[image] = (found, now)
        else:
            self._image_ids.pop(image, None)
        return found

    async def pull(self, image: str, auth: dict[str, Any] | None = None) -> str:
        """Pull ``image`` (its fully qualified name); the image's id, or PullError with the
        engine's message. Credentials go through a file readable by the agent only, removed
        after the pull."""
        env = dict(self.client_env)
        args = ["pull"]
        tmp: str | None = None
        try:
            if auth is not None:
                tmp = tempfile.mkdtemp(prefix="auth-", dir=self._private_dir())
                path = os.path.join(tmp, "config.json")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    json.dump(auth, f)
                if self.engine == "podman":
                    args += ["--authfile", path]
                else:
                    env["DOCKER_CONFIG"] = tmp
            if self.engine == "podman":
                args.append("--quiet")
            rc, out, err = await self._cli(*args, image, env=env, timeout=PULL_TIMEOUT)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        if rc != 0:
            lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
            errors = [ln for ln in lines if ln.startswith("Error")] or lines or [f"{self.engine} pull failed ({rc})"]
            msg = errors[-1]
            raise PullError(msg[len("Error: "):] if msg.startswith("Error: ") else msg)
        self._image_ids.clear()
        found = await self.image_id(image)
        if found is None:
            raise PullError(f"{image} was pulled but cannot be found")
        return found

    async def image_size(self, ref: str) -> int | None:
        rc, out, _ = await self._cli("image", "inspect", "--format", "{{.Size}}", ref, timeout=60)
        try:
            return int(out.strip()) if rc == 0 else None
        except ValueError:
            return None

    async def list_images(self) -> list[dict[str, Any]]:
        """The node's images as ``status.images`` lists them (names, sizeBytes)."""
        rc, out, _ = await self._cli("images", "--quiet", "--no-trunc", timeout=60)
        ids = list(dict.fromkeys(out.split())) if rc == 0 else []
        if not ids:
            return []
        rc, out, _ = await self._cli("image", "inspect", *ids, timeout=60)
        try:
            docs = json.loads(out) if rc == 0 else []
        except ValueError:
            docs = []
        result: list[dict[str, Any]] = []
        for doc in docs:
            names = [*(doc.get("RepoTags") or ()), *(doc.get("RepoDigests") or ())]
            image_id = str(doc.get("Id") or "")
            names.append(image_id if ":" in image_id else f"sha256:{image_id}")
            result.append({"names": list(dict.fromkeys(names)), "sizeBytes": int(doc.get("Size") or 0)})
        # kubelet reports the largest images first, at most --node-status-max-images (50)
        result.sort(key=lambda image: -int(image["sizeBytes"]))
        return result[:NODE_STATUS_MAX_IMAGES]

    async def load(self, archive: Path) -> str:
        self._image_ids.clear()
        rc, out, err = await self._cli("load", "--input", str(archive))
        if rc != 0:
            raise PullError((err or out).strip())
        return out.strip()

    def _private_dir(self) -> str:
        path = self.data_dir / "engine"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        return str(path)

    # ------------------------------------------------------------ pods

    async def _ensure_pod(self, spec: ImageSpec) -> None:
        if self.engine != "podman" or not spec.shared or spec.pod_name in self._pods:
            return
        async with self._pod_lock:
            if spec.pod_name in self._pods:
                return
            rc, _, err = await self._cli(
                "pod", "create", "--name", spec.pod_name, "--network", "host", "--share", "ipc,uts",
                "--hostname", spec.hostname, "--label", f"{AGENT_LABEL}={self.agent_id}",
                "--label", f"{POD_UID_LABEL}={spec.labels.get(POD_UID_LABEL, '')}", timeout=120)
            if rc != 0 and "exists" not in err:
                raise OSError(f"cannot create the pod's sandbox: {err.strip()}")
            self._pods.add(spec.pod_name)

    async def _has_dir(self, spec: ImageSpec) -> bool:
        """Whether the container's working directory exists: under a volume mount, or in the
        image (podman's ``image mount``; True when it cannot tell: the engine then says why)."""
        workdir = os.path.normpath(spec.workdir or "/")
        if any(workdir == m.target or workdir.startswith(m.target.rstrip("/") + "/") for m in spec.mounts):
            return True
        key = (spec.image_ref, workdir)
        if key not in self._dirs:
            rc, out, _ = await self._cli("image", "mount", spec.image_ref, timeout=60)
            if rc != 0 or not out.strip():
                return True
            root = out.strip().splitlines()[-1]
            self._dirs[key] = os.path.isdir(os.path.join(root, workdir.lstrip("/")))
            await self._cli("image", "unmount", spec.image_ref, timeout=60)
        return self._dirs[key]

    async def pod_done(self, uid: str, thorough: bool = True) -> None:
        """The pod has ended for good (or is deleted): remove whatever the engine still holds
        for it (its containers, its podman pod). Not ``thorough`` (its worker has just seen
        every container end and removed it): only the podman pod this runtime made."""
        made = [p for p in self._pods if uid_of(p) == uid]
        self._pods = {p for p in self._pods if uid_of(p) != uid}
        if not thorough:
            for pod in made:
                await self._cli("pod", "rm", "--force", pod, timeout=120)
            return
        rc, out, _ = await self._cli("ps", "--all", "--quiet", "--no-trunc", "--filter",
                                     f"label={POD_UID_LABEL}={uid}", "--filter", f"label={AGENT_LABEL}={self.agent_id}",
                                     timeout=60)
        ids = out.split() if rc == 0 else []
        if ids:
            await self._cli("rm", "--force", *ids, timeout=120)
        if self.engine == "podman":
            rc, out, _ = await self._cli("pod", "ps", "--quiet", "--no-trunc", "--filter",
                                         f"label={POD_UID_LABEL}={uid}", timeout=60)
            for pod in out.split() if rc == 0 else []:
                await self._cli("pod", "rm", "--force", pod, timeout=120)

    async def collect_orphans(self, live: set[str]) -> list[str]:
        """Remove this agent's containers (and podman pods) whose pod is not in ``live``;
        the uids removed."""
        rc, out, _ = await self._cli("ps", "--all", "--format", "{{.Names}}", "--filter",
                                     f"label={AGENT_LABEL}={self.agent_id}", timeout=60)
        names = [n for n in out.split() if (uid_of(n) or "") not in live] if rc == 0 else []
        gone = {u for u in (uid_of(n) for n in names) if u}
        if names:
            await self._cli("rm", "--force", *names, timeout=120)
        if self.engine == "podman":
            rc, out, _ = await self._cli("pod", "ps", "--format", "{{.Name}}", "--filter",
                                         f"label={AGENT_LABEL}={self.agent_id}", timeout=60)
            gone |= {u for u in (uid_of(n) for n in out.split()) if u and u not in live} if rc == 0 else set()
        for uid in sorted(gone):
            log.info("removing containers of pod %s: the pod no longer exists", uid)
            await self.pod_done(uid)
        return sorted(gone)

    # ------------------------------------------------------------ containers

    def run_argv(self, spec: ImageSpec, cidfile: Path | None = None) -> tuple[list[str], dict[str, str]]:
        """The engine's ``run`` command line for ``spec`` and the client's environment (the
        container's variables travel as ``-e NAME``, their values in the environment, so
        secrets never show in a process listing). ``cidfile``: where the engine writes the
        container's id once it has created it."""
        argv = [self.binary, "run", "--name", spec.name, "--pull", "never", "--log-driver", "none"]
        if cidfile is not None:
            argv += ["--cidfile", str(cidfile)]
        if self.engine == "podman" and spec.shared:
            argv += ["--pod", spec.pod_name]
        elif self.engine == "podman":
            argv += ["--network", "host", "--ipc", "private", "--uts", "private", "--hostname", spec.hostname]
        else:
            argv += ["--network", "host", "--ipc", "host"]
        for key, value in spec.labels.items():
            argv += ["--label", f"{key}={value}"]
        argv += ["--label", f"{AGENT_LABEL}={self.agent_id}"]
        env = dict(self.client_env)
        for key, value in spec.env.items():
            if key in _CLIENT_VARS or key.startswith(("CONTAINERS_", "DOCKER_", "XDG_", "PODMAN_")):
                argv += ["--env", f"{key}={value}"]
            else:
                argv += ["--env", key]
                env[key] = value
        if spec.workdir:
            argv += ["--workdir", spec.workdir]
        for m in spec.mounts:
            if ":" in m.source or ":" in m.target or "," in m.source or "," in m.target:
                raise OSError(f"cannot bind-mount {m.source!r} at {m.target!r}: the engine's volume syntax "
                              "does not allow ':' or ',' in paths")
            argv += ["--volume", f"{m.source}:{m.target}{':ro' if m.read_only else ''}"]
        if spec.memory:
            argv += ["--memory", str(spec.memory), "--memory-swap", str(spec.memory)]
        if spec.cpus:
            argv += ["--cpus", f"{spec.cpus:g}"]
        if spec.user:
            argv += ["--user", spec.user]
        for group in spec.groups:
            argv += ["--group-add", str(group)]
        if spec.read_only:
            argv.append("--read-only")
        if spec.privileged:
            argv.append("--privileged")
        for cap in spec.cap_add:
            argv += ["--cap-add", cap]
        for cap in spec.cap_drop:
            argv += ["--cap-drop", cap]
        if spec.no_new_privileges:
            argv += ["--security-opt", "no-new-privileges"]
        if spec.stdin:
            argv.append("--interactive")
        if spec.tty:
            argv.append("--tty")
        entry, rest = entrypoint_argv(self.engine, spec.command, spec.args)
        argv += [*entry, spec.image_ref, *rest]
        return argv, env

    async def start(self, spec: ProcessSpec) -> ContainerHandle:
        image = spec.image
        if image is None:
            raise OSError("the image runtime needs an image")
        await self._ensure_pod(image)
        if self.engine == "podman" and image.workdir and not await self._has_dir(image):
            # containerd and docker create a missing workingDir; podman refuses to start: an
            # empty directory of the container's own stands in for it
            made = spec.state_dir / "workdir"
            made.mkdir(parents=True, exist_ok=True)
            os.chmod(made, 0o777)
            image.mounts = [*image.mounts, Mount(str(made), image.workdir)]
        cid_path = spec.state_dir / CID_FILE
        argv, env = self.run_argv(image, cid_path)
        if spec.argv and spec.argv[0] != self.binary:  # a wrapper (the attach relay) holds the client
            argv = [*spec.argv, *argv]
        spec.state_dir.mkdir(parents=True, exist_ok=True)
        record = spec.state_dir / ENGINE_FILE
        state = str(spec.state_dir)
        if record.exists() and not claim_held(state) and not run_recorded(state):
            # an attempt that never started its client may have left the container behind; one
            # whose waiter lives or recorded a start is followed below, never removed under it
            await self.remove(image.name)
        with contextlib.suppress(FileNotFoundError):  # the engine refuses to overwrite one
            cid_path.unlink()
        record.write_text(json.dumps({"engine": self.engine, "name": image.name, "memory": bool(image.memory)}))
        client = ProcessSpec(argv=argv, executable=shutil.which(argv[0]) or argv[0], env=env, cwd="/",
                             state_dir=spec.state_dir, log_path=spec.log_path, done_path=spec.done_path)
        inner = await super().start(client)
        return EngineHandle(self, image.name, inner, spec.log_path, bool(image.memory), cid_path)

    def adopt(self, pid: int, pid_start: str | None, state_dir: Path, done_path: Path) -> ContainerHandle | None:
        try:
            meta = json.loads((state_dir / ENGINE_FILE).read_text())
        except (OSError, ValueError):
            return super().adopt(pid, pid_start, state_dir, done_path)
        inner = super().adopt(pid, pid_start, state_dir, done_path)
        log_path = done_path.with_suffix(".log")
        # No client any more: the engine's record decides (EngineHandle waits for a running one).
        return EngineHandle(self, str(meta["name"]), inner, log_path, bool(meta.get("memory")), state_dir / CID_FILE)

    async def close(self) -> None:
        """The agent stops: let the removals of ended containers finish (a few seconds at most),
        then let go of the supervisor; running containers keep running."""
        if self._removals:
            await asyncio.wait(set(self._removals), timeout=REMOVAL_WAIT)
        await super().close()

    async def exec(self, handle: ContainerHandle | None, spec: ExecSpec) -> ProcessSession:
        if not isinstance(handle, EngineHandle):
            raise ValueError("container not found")
        await self._until_running(handle)
        argv = [self.binary, "exec"]
        if spec.stdin:
            argv.append("--interactive")
        if spec.tty:
            argv.append("--tty")
        argv += [handle.name, *spec.argv]
        return await ProcessSession.start(ExecSpec(argv=argv, env=dict(self.client_env), cwd="/", tty=spec.tty,
                                                   stdin=spec.stdin, size=spec.size))


    async def _until_running(self, handle: EngineHandle, limit: float = 30.0) -> None:
        """Wait (at most ``limit``) until the engine runs the container (the worker reports it
        running only then, so this waits only for an exec that comes earlier)."""
        if not handle.seen_running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handle.running_since(), limit)


def select(choice: str, clock: Clock, data_dir: Path) -> tuple[EngineRuntime | None, str]:
    """The runtime ``--runtime`` names: (an EngineRuntime, "") for podman/docker (``auto``:
    podman if it works, then docker), (None, why) for the host runtime. A named engine that
    does not work is an error (RuntimeError), ``auto`` falls back to the host runtime."""
    if choice == "host":
        return None, "host"
    candidates = ENGINES if choice == "auto" else (choice,)
    reasons = []
    for engine in candidates:
        if engine not in ENGINES:
            raise RuntimeError(f"unknown runtime {choice!r}: host, podman, docker or auto")
        version, why = probe(engine)
        if version is not None:
            return EngineRuntime(clock, engine, data_dir=data_dir, version=version), ""
        reasons.append(why)
    if choice != "auto":
        raise RuntimeError(f"--runtime {choice}: {'; '.join(reasons)}")
    return None, "; ".join(reasons)

