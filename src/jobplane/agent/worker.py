"""One task per pod: run init containers in order, then the app containers side by side,
restart them as ``restartPolicy`` says, enforce ``activeDeadlineSeconds``, and report status.

The worker's container records are persisted in ``DIR/pods/<uid>/state.json`` (on disk, beside
the pod's logs and /tmp) at every change, so a restarted agent re-adopts processes that are
still running (see ``runtime.HostProcessRuntime.adopt``). The file is rewritten in place with one ``pwrite``
(padded so it never shrinks): a rename over it costs a forced data flush on ext4, and a
single small write cannot be torn by the agent dying. The pod's runtime files (volume contents,
/etc/hosts, /etc/hostname, the supervisor's run state) live in ``RUNTIME/pods/<uid>`` on tmpfs
(``agent/rundir.py``), removed once the pod is done, as kubelet unmounts a finished pod's volumes.

Status goes to the API like kubelet's status manager does it: the newest status only, so
changes made while a write is in flight (a container that started and already exited)
become one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from jobplane import podlogs
from jobplane.agent import hosts, images, podconfig, projection, rundir, security, spares
from jobplane.agent import probes as pr
from jobplane.agent import status as st
from jobplane.agent.dns import with_lingering
from jobplane.agent.engine import ImageSpec, PullError, container_name, pod_sandbox_name
from jobplane.agent.execsession import ExecSpec, run_to_end
from jobplane.agent.pacing import RunningReports
from jobplane.agent.prober import ContainerProber, run_check, run_hook, within
from jobplane.agent.runtime import ContainerHandle, ExitInfo, ProcessSpec, Runtime, read_pid_file, terminate
from jobplane.agent.sandbox import AGENT_ROOTS_UNDER_TMP, Mount, SandboxSpec, identity_prefix
from jobplane.agent.spec import (
    ContainerConfigError,
    build_argv,
    build_env,
    expand,
    gpu_count,
    resolve_executable,
    sanitize_env_name,
)
from jobplane.agent.volumes import (
    WRITTEN_TYPES,
    MountError,
    container_mounts,
    link_mounts,
    mount_env,
    remove_pod_tree,
    translate,
    unlink_mounts,
    volume_dirs,
)
from jobplane.api import pods
from jobplane.api.errors import StatusError
from jobplane.api.meta import parse_time, rfc3339
from jobplane.api.pods import qos_class
from jobplane.api.resources import container_limit
from jobplane.client.base import Client
from jobplane.clock import Clock

log = logging.getLogger(__name__)
Obj = dict[str, Any]

HOSTS_FILE = "etc-hosts"
HOSTNAME_FILE = "etc-hostname"
TMP_DIR = "tmp"
HOSTS_COALESCE = 0.1  # seconds between two /etc/hosts rewrites of one pod
HOSTS_LINGER = 30.0  # a name stays this long after it left the cluster's (CoreDNS's cache 30)
_HOST_ENTRIES = functools.lru_cache(maxsize=1)(hosts.host_entries)


def _agent_groups() -> set[int]:
    return {os.getgid(), *os.getgroups()}


# How often a container waiting for a ConfigMap, Secret or key its environment names looks
# again (kubelet re-syncs such a pod on its back-off; the object usually appears soon).
CONFIG_RETRY = 2.0
STATUS_CONFLICT_RETRIES = 5
REPORT_RETRY_BASE = 0.5
REPORT_RETRY_MAX = 10.0
# How long a check or hook waits for a just-started container to be inside its sandbox.
ENTER_WAIT = 2.0
ENTER_POLL = 0.02


def restart_delay(failures: int, base: float, cap: float) -> float:
    """kubelet's crash-loop back-off: the first restart is immediate (no back-off entry yet),
    then base * 2**(failures-2), capped (10 s doubling to 5 min)."""
    if failures <= 1:
        return 0.0
    return min(base * (2 ** (failures - 2)), cap)


def attach_argv(name: str, cspec: Obj, argv: list[str]) -> list[str]:
    """``argv`` run under the attach relay (``agent/attachrelay.py``), which holds the
    container's stdin or terminal for ``kubectl attach``."""
    relay = str(Path(__file__).with_name("attachrelay.py"))
    flags = [f for f, on in (("--tty", cspec.get("tty")), ("--stdin", cspec.get("stdin")),
                             ("--stdin-once", cspec.get("stdinOnce"))) if on]
    return [sys.executable, "-I", "-S", relay, name, *flags, "--", *argv]


def host_environment() -> dict[str, str]:
    """The environment every container inherits: the agent's, minus jobplane's own settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_") and k != "KUBECONFIG"}


@dataclass
class WorkerConfig:
    pods_dir: Path
    node_name: str
    # Where pods' runtime files go (agent/rundir.py); None: in pods_dir with the rest.
    run_pods_dir: Path | None = None
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    host_env: dict[str, str] = field(default_factory=host_environment)
    node_capacity: dict[str, float] = field(default_factory=dict)
    # How long a started container's Running status waits before it is written while the node
    # is busy (agent/pacing.py): one that exits sooner is reported once, as terminated (as
    # kubelet's PLEG often does). On a quiet node it is written at once.
    running_report_delay: float = 0.02
    reports: RunningReports = field(default_factory=RunningReports)
    gpus: Any = None  # agent.gpus.GpuAllocator or None
    # Paths no pod may see (the agent's and the server's data, keys and tokens).
    hidden: tuple[str, ...] = ()
    recorder: Any = None  # client.events.EventRecorder for the kubelet's events on pods, or None
    # (path, mounts) -> None: removes a finished pod's runtime directory soon, in a batch with
    # others' (the agent's housekeeping); None, or the pod is being stopped (deleted): the worker
    # removes it before it ends (kubelet deletes a pod's object only once its volumes are gone).
    remove_later: Any = None
    # How often ConfigMap/Secret/downward API/token volume contents are checked for changes,
    # and how often a volume that cannot be set up is retried (kubelet: about a minute; both).
    volume_refresh: float = 2.0
    pod_ip: str = st.HOST_IP
    # The API server as pods reach it (KUBERNETES_SERVICE_HOST/PORT) and its CA, for the
    # service-account volume; None: not advertised.
    api_host: str | None = None
    api_port: int | None = None
    ca_file: Path | None = None
    # Why pods run without a sandbox on this node (an event on each pod), "" when they do not.
    sandbox_note: str = ""
    dns: Any = None  # agent.dns.DnsView: Service and pod names for /etc/hosts, or None
    # async (RuntimeClass name) -> Runtime for pods with spec.runtimeClassName (the agent's
    # runtime_for); raises when this node has no runtime for the class's handler.
    runtime_for: Any = None
    # securityContext.privileged runs on the image runtime only when the node allows it
    # (--allow-privileged); otherwise the container fails with CreateContainerConfigError.
    allow_privileged: bool = False
    # A container that could not be created for want of a resource the node may get back
    # (disk space, file descriptors, memory) waits as CreateContainerError and is retried
    # after this back-off (doubling), instead of failing its pod.
    create_retry_base: float = 1.0
    create_retry_max: float = 10.0
    # Image pulls (the image runtime): kubelet's back-off (10 s doubling to 5 min) and how
    # soon a failed pull's ErrImagePull gives way to ImagePullBackOff (the kubelet's next sync).
    image_backoff_base: float = 10.0
    image_backoff_max: float = 300.0
    image_resync: float = 1.0
    # Spare pod directories (agent/spares.SparePool) a new pod's directory is taken from, or None.
    spares: Any = None


# errno values of a start failure worth retrying: the node lacks something it may get back.
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.ENOMEM,
                              errno.EAGAIN})


def _make_dir(path: Path, parents: bool = True) -> bool:
    """Create ``path`` (as ``Path.mkdir``); False when it existed."""
    try:
        os.mkdir(path)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        if not parents:
            raise
    path.mkdir(parents=True, exist_ok=True)
    return True


def records_possible(uid: str, dirs_at_start: Collection[str] | None, *ran_before: Collection[str]) -> bool:
    """Whether a pod's directory may hold records a new worker must read before it starts
    anything (``state.json``; the supervisor's ``pid.json`` of a start the agent did not record):
    only when it had a directory when this agent started (an earlier agent ran it), when the
    agent did not list them (``None``), or when a worker of this agent ran it before
    (``ran_before``: the uids whose worker reported a terminal phase, or ended without one)."""
    return dirs_at_start is None or uid in dirs_at_start or any(uid in s for s in ran_before)


def _shows_a_start(status: Obj) -> bool:
    """A pod status in which some container has started (it runs or has ended)."""
    return any("waiting" not in (cs.get("state") or {"waiting": None})
               for key in ("initContainerStatuses", "containerStatuses") for cs in status.get(key) or ())


class PodWorker:
    def __init__(self, client: Client, pod: Obj, runtime: Runtime, clock: Clock, config: WorkerConfig,
                 fresh: bool = False) -> None:
        """``fresh``: no agent ran this pod before (``records_possible`` is False): there are no
        records to read; its first start is the first ever."""
        self.client = client
        self.fresh = fresh
        self.pod = pod
        self.runtime = runtime
        self.clock = clock
        self.config = config
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.name: str = meta["name"]
        self.namespace: str = meta.get("namespace") or "default"
        self.pod_dir = config.pods_dir / self.uid
        self.run_pod_dir = (config.run_pods_dir or config.pods_dir) / self.uid
        spec = pod.get("spec") or {}
        self.restart_policy: str = spec.get("restartPolicy") or "Always"
        self.init = [st.ContainerRecord(c["name"], c.get("image", ""), init=True,
                                        state={"waiting": {"reason": "PodInitializing"}},
                                        sidecar=c.get("restartPolicy") == "Always")
                     for c in spec.get("initContainers") or ()]
        self._sidecar_started = {r.name: asyncio.Event() for r in self.init if r.sidecar}
        self._mains_done = False
        self._mains_done_event = asyncio.Event()
        app_wait = "PodInitializing" if self.init else "ContainerCreating"
        self.app = [st.ContainerRecord(c["name"], c.get("image", ""), state={"waiting": {"reason": app_wait}})
                    for c in spec.get("containers") or ()]
        self.start_time: str = rfc3339(clock.now())
        self.handles: dict[str, ContainerHandle] = {}
        self.ephemeral: list[st.ContainerRecord] = []  # not persisted: lost with an agent restart
        self.failures: dict[str, int] = {}
        self.links: list[str] = []
        self.volumes: dict[str, Path] | None = None
        self._hosts_version = 0  # the DNS view version /etc/hosts was last written from
        self._hosts_seen: dict[Any, float] = {}  # names in /etc/hosts and when last current (with_lingering)
        self._hosts_expiry: float | None = None  # when a name kept after it left expires
        self._tokens: dict[tuple[Any, ...], tuple[str, float]] = {}
        self.gpu_ids: list[int] = []
        self.stopping = False
        self.stop_grace = 30.0
        self.deleted = False  # the pod object is gone: nothing to report any more
        self.pod_reason: str | None = None
        self.pod_message: str | None = None
        self.force_failed = False
        self._stop_event = asyncio.Event()
        self._report_lock = asyncio.Lock()
        self._last_status: Obj | None = None
        self._report_wanted = 0  # generation of the newest status change
        self._report_done = 0  # generation the API has seen
        self._report_retry = REPORT_RETRY_BASE
        self._report_failed = False  # the last write failed for a reason that may pass
        self._final = False
        self._background: set[asyncio.Task] = set()
        self._state_fd: int | None = None
        self._state_saved = b""
        self._dir_claimed = False  # the pod's directory was made (or taken from a spare) once
        self._first_log = False  # it came from a spare whose first container's log is unused yet
        self.finished = asyncio.Event()
        self.sources: podconfig.Sources = {}  # the ConfigMaps and Secrets the pod names (env)
        # Probes and lifecycle hooks of the running containers (by name), the containers being
        # killed for a failed liveness or startup probe (restarted whatever their exit code,
        # unless restartPolicy is Never), and those whose preStop hook already ran.
        self._probers: dict[str, ContainerProber] = {}
        self._probe_killed: set[str] = set()
        self._prestop_ran: set[str] = set()
        self._post_started: set[str] = set()
        self._projected: dict[str, Any] = {}  # volume -> what its files were last written from
        self.image_refs: dict[str, str] = {}  # container -> the id of its image on this node
        self._pull_backoff: dict[str, tuple[float, float]] = {}  # image -> (back-off until, last delay)

    @property
    def isolated(self) -> bool:
        """Containers see their own view (hosts file, volumes at their mountPath): a bwrap
        sandbox or an image."""
        return self.runtime.sandbox.available or self.runtime.runs_images

    # ----------------------------------------------------------------- control

    def update_pod(self, pod: Obj) -> None:
        """Keep the newest copy (the informer may deliver one older than our own patch result)."""
        try:
            if int(pod["metadata"].get("resourceVersion") or 0) < int(self.pod["metadata"].get("resourceVersion") or 0):
                return
        except (TypeError, ValueError):
            pass
        self.pod = pod
        self._start_new_ephemeral()

    def _start_new_ephemeral(self) -> None:
        """Ephemeral containers (``kubectl debug``) added to the pod start once, never restart."""
        if self.stopping or self.finished.is_set():
            return
        known = {r.name for r in self.ephemeral}
        for cspec in (self.pod.get("spec") or {}).get("ephemeralContainers") or ():
            if cspec.get("name") in known:
                continue
            rec = st.ContainerRecord(cspec["name"], cspec.get("image", ""),
                                     state={"waiting": {"reason": "ContainerCreating"}})
            self.ephemeral.append(rec)
            task = asyncio.ensure_future(self._run_ephemeral(rec, cspec))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _run_ephemeral(self, rec: st.ContainerRecord, cspec: Obj) -> None:
        if not cspec.get("command") and not cspec.get("args"):
            # the host runtime runs no images: a debug container without a command gets a shell
            # (what kubectl debug --image=busybox runs, busybox's default command)
            cspec = {**cspec, "command": [os.environ.get("SHELL") or "/bin/sh"]}
        info = await self._run_once(rec, cspec)
        if info is not None:
            self._record_exit(rec, info)
        await self.report()

    def _container(self, name: str) -> tuple[st.ContainerRecord | None, Obj | None]:
        spec = self.pod.get("spec") or {}
        cspec = next((c for key in ("containers", "initContainers", "ephemeralContainers")
                      for c in spec.get(key) or () if c.get("name") == name), None)
        rec = next((r for r in (*self.init, *self.app, *self.ephemeral) if r.name == name), None)
        if cspec is not None and cspec in (spec.get("ephemeralContainers") or ()) and not cspec.get("command"):
            cspec = {**cspec, "command": [os.environ.get("SHELL") or "/bin/sh"]}
        return rec, cspec

    def stop(self, grace: float, reason: str | None = None, message: str | None = None) -> None:
        """Terminate every running container (SIGTERM, ``grace``, SIGKILL); no more restarts."""
        if reason and not self.pod_reason:
            self.pod_reason, self.pod_message = reason, message
        if self.stopping:
            self.stop_grace = min(self.stop_grace, grace)
            if grace <= 0:
                for handle in self.handles.values():
                    asyncio.ensure_future(terminate(handle, 0, self.clock))
            return
        self.stopping = True
        self.stop_grace = grace
        self._stop_event.set()
        for prober in self._probers.values():  # a pod being deleted is not probed for liveness any more
            prober.stop((pr.LIVENESS, pr.STARTUP))
        for name, handle in list(self.handles.items()):
            self._spawn(self._kill(name, handle, grace))

    # --------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        deadline_task = None
        self.config.reports.starting(self)
        try:
            recovered = not self.fresh and self._load_state()  # (a new pod's state.json cannot exist)
            if not recovered and self._looks_started_elsewhere():
                self._mark_lost_without_state()
            else:
                deadline_task = self._start_deadline()
                if await self._select_runtime() and await self._prepare_pod():
                    self._start_volume_refresh()
                    await self._run_containers()
            await self._finish()
            if self.runtime.runs_images:
                try:
                    await self.runtime.pod_done(self.uid, thorough=False)
                except Exception as exc:  # noqa: BLE001 - the agent's cleanup tries again
                    log.warning("pod %s/%s: cannot remove its containers: %s", self.namespace, self.name, exc)
        except asyncio.CancelledError:
            # The agent is stopping, not the pod: processes and mount links stay for the next agent.
            raise
        else:
            unlink_mounts(self.links)
            self._cancel_background()  # no volume refresh from here on (nor one for a deleted pod)
            if self.run_pod_dir != self.pod_dir:  # done: its volumes and run state leave memory
                mounted = any((v.get("emptyDir") or {}).get("medium") == "Memory"
                              for v in (self.pod.get("spec") or {}).get("volumes") or ())
                if self.config.remove_later is not None and not self.stopping:
                    self.config.remove_later(self.run_pod_dir, mounted)
                else:
                    await asyncio.to_thread(remove_pod_tree, self.run_pod_dir, mounted)
        finally:
            self.config.reports.gone(self)
            if deadline_task:
                deadline_task.cancel()
            self._cancel_background()
            if self._state_fd is not None:
                os.close(self._state_fd)
                self._state_fd = None
            if self.config.gpus is not None and self.gpu_ids:
                self.config.gpus.release(self.gpu_ids)
            self.finished.set()

    def _cancel_background(self) -> None:
        for task in self._background:
            task.cancel()

    async def _run_containers(self) -> None:
        """Init containers in order (a sidecar, ``restartPolicy: Always``, only has to start
        before the next one does, then keeps running), then the app containers side by side;
        once those are done for good, the sidecars are stopped, last started first (KEP-753)."""
        specs = {c["name"]: c for c in (self.pod.get("spec") or {}).get("initContainers") or ()}
        sidecars: list[tuple[st.ContainerRecord, asyncio.Future]] = []
        try:
            for rec in self.init:
                if self.stopping:
                    return
                if rec.sidecar:
                    task = asyncio.ensure_future(self._container_loop(rec, specs[rec.name]))
                    sidecars.append((rec, task))
                    started = asyncio.ensure_future(self._sidecar_started[rec.name].wait())
                    await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
                    started.cancel()
                    if not self._sidecar_started[rec.name].is_set():
                        return
                    continue
                if not await self._container_loop(rec, specs[rec.name]):
                    return
            if self.stopping:
                return
            if self.init:
                for rec in self.app:
                    if rec.state.get("waiting", {}).get("reason") == "PodInitializing":
                        rec.state = {"waiting": {"reason": "ContainerCreating"}}
            specs = {c["name"]: c for c in (self.pod.get("spec") or {}).get("containers") or ()}
            await asyncio.gather(*(self._container_loop(rec, specs[rec.name]) for rec in self.app))
        finally:
            await self._stop_sidecars(sidecars)

    async def _stop_sidecars(self, sidecars: list[tuple[st.ContainerRecord, asyncio.Future]]) -> None:
        """The main containers are done: stop the sidecars in reverse order (each SIGTERM,
        the pod's grace, SIGKILL); they are not restarted any more."""
        self._mains_done = True
        spec_grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        grace = self.stop_grace if self.stopping else (30.0 if spec_grace is None else float(spec_grace))
        for rec, task in reversed(sidecars):
            handle = self.handles.get(rec.name)
            if handle is not None:
                await self._kill(rec.name, handle, grace)
            self._mains_done_event.set()
            await asyncio.gather(task, return_exceptions=True)

    def _policy(self, rec: st.ContainerRecord) -> str:
        """A container's restart policy: a sidecar's is Always, a regular init container's
        OnFailure under Always, any other's the pod's."""
        if rec.sidecar:
            return "Always"
        return "OnFailure" if rec.init and self.restart_policy == "Always" else self.restart_policy

    def _no_more_starts(self, rec: st.ContainerRecord, policy: str) -> bool:
        """A container that has failed is not started again: Never, a pod being stopped, a
        sidecar once the main containers are done."""
        return policy == "Never" or self.stopping or (rec.sidecar and self._mains_done)

    async def _container_loop(self, rec: st.ContainerRecord, cspec: Obj) -> bool:
        """Run one container until it is done for good; True when it succeeded."""
        policy = self._policy(rec)
        while True:
            if rec.terminated is None:
                info = await self._run_once(rec, cspec)
                if info is None:  # stopped before it could start
                    return False
                self._record_exit(rec, info)
                await self.report()
            if self.force_failed:
                return False
            # A container killed for a failed liveness or startup probe is restarted even when
            # it exited 0 (kubelet starts it again in the same sync), unless the policy is Never.
            probe_killed = rec.name in self._probe_killed
            self._probe_killed.discard(rec.name)
            if rec.succeeded and ((rec.init and not rec.sidecar) or policy != "Always") and not probe_killed:
                return True
            if self._no_more_starts(rec, policy):
                return rec.succeeded
            self.failures[rec.name] = self.failures.get(rec.name, 0) + 1
            delay = restart_delay(self.failures[rec.name], self.config.backoff_base, self.config.backoff_max)
            rec.last_state = {"terminated": rec.state["terminated"]}
            if delay > 0:
                # restartCount counts restarts made, as kubelet's: not the one being waited for.
                rec.state = {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {pr.go_duration(delay)} restarting failed container={rec.name} "
                               f"pod={self.name}_{self.namespace}({self.uid})"}}
                self._save_state()
                self._event("Warning", "BackOff", f"Back-off restarting failed container {rec.name} in pod "
                                                   f"{self.name}_{self.namespace}({self.uid})")
                await self.report()
                if await self._interruptible_sleep(delay, self._mains_done_event if rec.sidecar else None):
                    return False
            rec.restart_count += 1
            rec.state = {"waiting": {"reason": "ContainerCreating"}}
            self._save_state()

    async def _run_once(self, rec: st.ContainerRecord, cspec: Obj) -> ExitInfo | None:
        """Start (or re-adopt) the process and wait for it to end."""
        handle = None
        if not rec.pid and rec.terminated is None and not self.fresh:
            self._recover_unrecorded_start(rec)
        if rec.pid and rec.terminated is None:
            await self.runtime.prepare()
            run_dir = self._run_dir(rec)
            handle = self.runtime.adopt(rec.pid, rec.pid_start, run_dir,
                                        podlogs.done_marker(self.config.pods_dir, self.uid, rec.name,
                                                            rec.restart_count))
            if handle is None:
                return self._lost(rec)
            rec.container_id = getattr(handle, "container_id", None) or rec.container_id
        if handle is None:
            if self.stopping or not await self._await_config(rec, cspec):
                return None
            if self.runtime.runs_images and not await self._ensure_image(rec, cspec):
                return None
            started = await self._start_container(rec, cspec)
            if not isinstance(started, ContainerHandle):
                return started
            handle = started
            rec.pid, rec.pid_start = handle.pid, handle.pid_start
            rec.container_id = getattr(handle, "container_id", None) or f"jobplane://{handle.pid}"
            ref = self.image_refs.get(rec.name, "") if self.runtime.runs_images else ""
            rec.image_id = ref if not ref or ":" in ref else f"sha256:{ref}"
            if self.runtime.confirms_start:  # running once the engine says so (below)
                rec.state = {"waiting": {"reason": "ContainerCreating"}}
                self._save_state()  # the attempt's pid, for re-adoption meanwhile
            else:
                rec.state = {"running": {"startedAt": rfc3339(self.clock.now())}}
            new = True
        else:
            new = False
        self.handles[rec.name] = handle
        if self.stopping:  # stop() raced with the start
            self._spawn(self._kill(rec.name, handle, self.stop_grace))
        try:
            if not rec.running:  # started (or re-adopted) before the runtime ran it
                since = await handle.running_since()
                if since is not None:  # else it ended without running: wait() says how
                    rec.state = {"running": {"startedAt": rfc3339(since)}}
                    new = True  # nothing (postStart) ran for it yet
            if rec.running:
                self._watch(rec, cspec, new)
                if new:
                    self._save_state()
                    self._report_soon(self.config.reports.delay(self, self.config.running_report_delay))
            info = await handle.wait()
            if info.reason == "StartError" and self.runtime.runs_images:  # the engine could not start it
                self._event("Warning", "Failed", f"Error: {info.message}")
            return info
        finally:
            self.handles.pop(rec.name, None)
            self._unwatch(rec)

    def _lost(self, rec: st.ContainerRecord) -> ExitInfo:
        """A container recorded as running that the runtime can no longer locate, nor its exit
        (a reboot emptied the runtime directory and ended it; or its waiter was killed with it):
        kubelet takes it as ended, exit code 137, ``ContainerStatusUnknown``. The container loop
        then treats it as any failed container: started again as its policy says (upstream's
        lastState message; restartCount + 1), else left terminated as the status manager's
        TerminatePod leaves it, and a pod under Never fails as for any failed container."""
        again = not self._no_more_starts(rec, self._policy(rec))
        log.warning("pod %s/%s: container %s cannot be located (its exit code is unknown)%s", self.namespace,
                    self.name, rec.name, "; starting it again" if again else "")
        return ExitInfo(st.UNKNOWN_EXIT_CODE, None, st.UNKNOWN_REASON,
                        st.LOST_RESTARTED_MESSAGE if again else st.LOST_TERMINATED_MESSAGE, unlocated=True)

    # ------------------------------------------------------- probes and lifecycle hooks

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _watch(self, rec: st.ContainerRecord, cspec: Obj, new: bool) -> None:
        """A container (re)started or was re-adopted: start its probes, and run its postStart
        hook when it is new. A sidecar lets the next init container start once its postStart
        hook is done and its startup probe passed."""
        specs = pr.container_probes(cspec)
        rec.startup_passed = pr.STARTUP not in specs
        rec.readiness_passed = pr.READINESS not in specs
        self._prestop_ran.discard(rec.name)
        if specs:
            started_at = parse_time((rec.state.get("running") or {}).get("startedAt")) or self.clock.now()
            exec_fn = functools.partial(self._exec_in, rec.name)

            async def check(spec: pr.ProbeSpec) -> Any:
                return await run_check(spec, cspec, self.config.pod_ip, exec_fn, self.clock)

            prober = ContainerProber(
                specs, self.clock, started_at, check,
                on_event=lambda reason, message: self._event("Warning", reason, message),
                on_result=lambda kind, result: self._probe_result(rec, kind, result))
            self._probers[rec.name] = prober
            prober.start()
        post_start = pr.hook(cspec, pr.POST_START) if new else None
        if post_start is None:
            self._post_started.add(rec.name)
            self._note_started(rec)
        else:
            self._post_started.discard(rec.name)
            self._spawn(self._post_start(rec, cspec, post_start))

    def _unwatch(self, rec: st.ContainerRecord) -> None:
        prober = self._probers.pop(rec.name, None)
        if prober is not None:
            prober.stop()

    def _note_started(self, rec: st.ContainerRecord) -> None:
        if rec.sidecar and rec.startup_passed and rec.name in self._post_started:
            self._sidecar_started[rec.name].set()

    async def _exec_in(self, name: str, argv: list[str], timeout: float | None) -> tuple[int, bytes]:
        """Run ``argv`` in the running container ``name`` through the runtime's exec seam (what
        ``kubectl exec`` uses): its exit code and first output; TimeoutError after ``timeout``."""
        waited = 0.0
        while True:
            try:
                spec = self.exec_spec(name, argv, tty=False, stdin=False)
                break
            except ContainerConfigError as exc:  # the program is not there (no sandbox)
                return 127, exc.message.encode()
            except ValueError:
                # A container that has just started may not have entered its sandbox yet.
                if waited >= ENTER_WAIT or name not in self.handles:
                    raise
            await self.clock.sleep(ENTER_POLL)
            waited += ENTER_POLL
        session = await self.runtime.exec(self.handles.get(name), spec)
        return await within(self.clock, run_to_end(session, pr.MAX_OUTPUT), timeout)

    def _probe_result(self, rec: st.ContainerRecord, kind: str, result: pr.Result) -> None:
        """A probe's published result changed: readiness and startup go to the status; a
        failed liveness or startup probe kills the container, to be restarted unless the
        pod's restartPolicy is Never (a sidecar always is)."""
        prober = self._probers.get(rec.name)
        if prober is None:
            return
        rec.startup_passed = prober.started
        readiness = prober.trackers.get(pr.READINESS)
        rec.readiness_passed = readiness is None or readiness.result == pr.Result.SUCCESS
        if kind == pr.STARTUP and result == pr.Result.SUCCESS:
            self._note_started(rec)
        handle = self.handles.get(rec.name)
        if kind in (pr.LIVENESS, pr.STARTUP) and result == pr.Result.FAILURE and handle is not None \
                and not self.stopping:
            restart = rec.sidecar or self.restart_policy != "Never"
            self._probe_killed.add(rec.name)
            grace = pr.kill_grace((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds"),
                                  prober.specs.get(kind))
            self._spawn(self._kill(rec.name, handle, grace, pr.kill_message(rec.name, kind, restart)))
        self._report_soon(0)

    async def _post_start(self, rec: st.ContainerRecord, cspec: Obj, handler: Obj) -> None:
        """Run the postStart hook; when it fails, kill the container (kubelet's
        ``FailedPostStartHook``): it is then restarted as its restartPolicy says."""
        error = await run_hook(handler, cspec, self.config.pod_ip, functools.partial(self._exec_in, rec.name),
                               self.clock)
        handle = self.handles.get(rec.name)
        if error is None:
            self._post_started.add(rec.name)
            self._note_started(rec)
            return
        if handle is None:
            return  # it ended meanwhile
        log.info("pod %s/%s: %s", self.namespace, self.name,
                 pr.hook_failure_message(handler, rec.name, self._pod_ref(), error))
        self._event("Warning", "FailedPostStartHook", "PostStartHook failed")
        grace = pr.kill_grace((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds"))
        await self._kill(rec.name, handle, grace, "FailedPostStartHook")

    def _pod_ref(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"

    async def _kill(self, name: str, handle: ContainerHandle, grace: float, message: str | None = None) -> None:
        """kubelet's killContainer: a ``Killing`` event, the preStop hook (once per container
        run, within the grace period; a failure is an event, not a reason to skip the stop),
        then SIGTERM, what is left of the grace period (at least 2 s after a hook), SIGKILL."""
        self._event("Normal", "Killing", message or f"Stopping container {name}")
        prober = self._probers.get(name)
        if prober is not None:
            prober.stop((pr.LIVENESS, pr.STARTUP))
        rec, cspec = self._container(name)
        pre_stop = pr.hook(cspec, pr.PRE_STOP) if cspec is not None else None
        if pre_stop is not None and grace > 0 and name not in self._prestop_ran:
            self._prestop_ran.add(name)
            began = self.clock.now()
            try:
                error = await within(self.clock, run_hook(pre_stop, cspec or {}, self.config.pod_ip,
                                                          functools.partial(self._exec_in, name), self.clock), grace)
            except TimeoutError:
                log.info("pod %s/%s: preStop hook of %s not completed in the grace period (%gs)",
                         self.namespace, self.name, name, grace)
                error = None
            if error is not None:
                log.info("pod %s/%s: %s", self.namespace, self.name,
                         pr.hook_failure_message(pre_stop, name, self._pod_ref(), error))
                self._event("Warning", "FailedPreStopHook", "PreStopHook failed")
            grace = pr.grace_after_hook(grace, self.clock.now() - began)
        await terminate(handle, grace, self.clock)

    async def _ensure_image(self, rec: st.ContainerRecord, cspec: Obj) -> bool:
        """kubelet's ``EnsureImageExists`` before each start on the image runtime: the pull
        policy, the pull with the pod's ``imagePullSecrets``, and while the image cannot be had
        the container waits (``InvalidImageName``, ``ErrImageNeverPull``, ``ErrImagePull``
        then ``ImagePullBackOff`` with a back-off of 10 s doubling to 5 min) with the kubelet's
        events; the pod stays Pending. False when the pod was stopped meanwhile."""
        rt = self.runtime
        image = str(cspec.get("image") or "")
        policy = images.pull_policy(cspec)
        while not self.stopping:
            try:
                ref = images.parse(image)
            except images.InvalidImage as exc:
                msg = f'Failed to apply default image tag "{image}": {exc}'
                self._event("Warning", "InspectFailed", msg)
                if await self._image_wait(rec, images.INVALID_IMAGE_NAME, msg, self.config.image_backoff_base):
                    return False
                continue
            present = await rt.image_id(image)
            if present is None and ref.pullable != image:
                present = await rt.image_id(ref.pullable)
            if not images.should_pull(policy, present is not None):
                if present is not None:
                    self._event("Normal", "Pulled", f'Container image "{image}" already present on machine')
                    self.image_refs[rec.name] = present
                    return True
                msg = f'Container image "{image}" is not present with pull policy of Never'
                self._event("Warning", "ErrImageNeverPull", msg)
                if await self._image_wait(rec, images.ERR_IMAGE_NEVER_PULL, msg, self.config.image_backoff_base):
                    return False
                continue
            until, last = self._pull_backoff.get(image, (0.0, 0.0))
            now = self.clock.now()
            if now < until:
                msg = f'Back-off pulling image "{image}"'
                self._event("Normal", "BackOff", msg)
                if await self._image_wait(rec, images.IMAGE_PULL_BACKOFF, msg, until - now):
                    return False
                continue
            auth = await self._pull_credentials()
            self._event("Normal", "Pulling", f'Pulling image "{image}"')
            pulling = asyncio.ensure_future(rt.pull(ref.pullable, auth))
            stopped = asyncio.ensure_future(self._stop_event.wait())
            await asyncio.wait({pulling, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not pulling.done():  # the pod is going away: no need to finish the pull
                pulling.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pulling
                return False
            try:
                found = pulling.result()
            except PullError as exc:
                self._event("Warning", "Failed", f'Failed to pull image "{image}": {exc}')
                delay = min(last * 2, self.config.image_backoff_max) if last else self.config.image_backoff_base
                self._pull_backoff[image] = (self.clock.now() + delay, delay)
                # The next sync (kubelet re-syncs a failed pod soon) finds the image in back-off.
                if await self._image_wait(rec, images.ERR_IMAGE_PULL, str(exc),
                                          min(delay, self.config.image_resync)):
                    return False
                continue
            size = await rt.image_size(found)
            self._event("Normal", "Pulled", images.pulled_message(image, self.clock.now() - now, size))
            self._pull_backoff.pop(image, None)
            self.image_refs[rec.name] = found
            return True
        return False

    async def _image_wait(self, rec: st.ContainerRecord, reason: str, message: str, seconds: float) -> bool:
        """The container waits for its image with ``reason``; True when stopped meanwhile."""
        self._event("Warning", "Failed", f"Error: {reason}")
        rec.state = {"waiting": {"reason": reason, "message": message}}
        self._save_state()
        await self.report()
        return await self._interruptible_sleep(seconds)

    async def _pull_credentials(self) -> Obj | None:
        """The pod's ``imagePullSecrets`` as one registry-auth document (None: none)."""
        names = [s.get("name") for s in (self.pod.get("spec") or {}).get("imagePullSecrets") or () if s.get("name")]
        if not names:
            return None
        found, missing = [], []
        for name in names:
            try:
                found.append(await self.client.get("secrets", name, self.namespace))
            except StatusError:
                missing.append(f"{self.namespace}/{name}")
        if missing:
            self._event("Warning", "FailedToRetrieveImagePullSecret",
                        f"Unable to retrieve some image pull secrets ({', '.join(missing)}); attempting to pull "
                        "the image may not succeed.")
        return images.docker_config(found)

    async def _await_config(self, rec: st.ContainerRecord, cspec: Obj) -> bool:
        """Before a start: the ConfigMaps, Secrets and keys the container's environment names
        must exist. Until they do it waits (``CreateContainerConfigError`` with kubelet's
        message, pod Pending, nothing counted against the Job). False when stopped meanwhile."""
        while not self.stopping:
            self.sources = await podconfig.fetch(self.client, self.pod)
            try:
                build_env(self.pod, cspec, {}, {}, self.config.node_capacity, self.sources)
                return True
            except ContainerConfigError as exc:
                if not exc.retry:
                    return True  # a real configuration error: the start reports it
                if rec.state.get("waiting", {}).get("message") != exc.message:
                    rec.state = {"waiting": {"reason": exc.reason, "message": exc.message}}
                    self._save_state()
                    await self.report()
                    self._event("Warning", "Failed", f"Error: {exc.message}")
            if await self._interruptible_sleep(CONFIG_RETRY):
                return False
        return False

    def _recover_unrecorded_start(self, rec: st.ContainerRecord) -> None:
        """The supervisor started this attempt but the agent died before saving it: take the
        supervisor's record, so the container is re-adopted, never started a second time."""
        started = read_pid_file(self._run_dir(rec))
        if started is None:
            return
        rec.pid, rec.pid_start = int(started["pid"]), started.get("start")
        rec.container_id = f"jobplane://{rec.pid}"
        if not self.runtime.confirms_start:  # else it runs once the runtime says so
            rec.state = {"running": {"startedAt": rfc3339(float(started.get("startedAt") or self.clock.now()))}}
        self._save_state()

    async def _start_container(self, rec: st.ContainerRecord, cspec: Obj) -> ContainerHandle | ExitInfo | None:
        """Start the process. A failure for want of disk space or descriptors keeps the container
        waiting (``CreateContainerError``, a ``Failed`` event, as kubelet) and tries again."""
        delay = self.config.create_retry_base
        while True:
            if self.stopping:
                return None
            try:
                spec = self._process_spec(rec, cspec)
                if not self.runtime.runs_images:
                    self._event("Normal", "Pulled", f'Container image "{rec.image}" is not used: jobplane runs '
                                                    "the container's command on the host")
                self._event("Normal", "Created", f"Created container: {rec.name}")
                if self._first_log:  # the spare's log directory becomes this container's
                    self._first_log = False
                    spares.claim_first_log(self.pod_dir, spec.log_path)
                handle = await self.runtime.start(spec)
            except (ContainerConfigError, MountError, OSError) as exc:
                if not (isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS):
                    reason = exc.reason if isinstance(exc, ContainerConfigError) else "StartError"
                    message = exc.message if isinstance(exc, (ContainerConfigError, MountError)) else str(exc)
                    self._event("Warning", "Failed", f"Error: {message}")
                    return ExitInfo(128, self.clock.now(), reason, message)
                message = f"failed to create container {rec.name}: {exc}"
            else:
                self._event("Normal", "Started", f"Started container {rec.name}")
                return handle
            log.warning("pod %s/%s: %s; retrying in %gs", self.namespace, self.name, message, delay)
            rec.state = {"waiting": {"reason": "CreateContainerError", "message": message}}
            self._event("Warning", "Failed", f"Error: {message}")
            await self.report()
            if await self._interruptible_sleep(delay):
                return None
            delay = min(delay * 2, self.config.create_retry_max)

    def _record_exit(self, rec: st.ContainerRecord, info: ExitInfo) -> None:
        if info.unlocated:  # kubelet writes exit code, reason and message only
            rec.state = {"terminated": st.terminated_state(info.exit_code, None, None, reason=info.reason,
                                                           message=info.message)}
            rec.pid = rec.pid_start = None
            self._save_state()
            return
        started = (rec.state.get("running") or {}).get("startedAt")
        finished = rfc3339(info.finished_at if info.finished_at is not None else self.clock.now())
        started_at, finished_at = parse_time(started), parse_time(finished)
        if started and started_at is not None and finished_at is not None and started_at > finished_at:
            finished = started
        rec.state = {"terminated": st.terminated_state(
            info.exit_code, started, finished, reason=info.reason, message=info.message,
            container_id=rec.container_id, signal=info.signal)}
        rec.pid = rec.pid_start = None
        if started and info.exit_code != 0:
            ran = (parse_time(finished) or 0) - (parse_time(started) or 0)
            if ran >= 2 * self.config.backoff_max:  # kubelet forgets the back-off after a long good run
                self.failures.pop(rec.name, None)
        self._save_state()

    async def _interruptible_sleep(self, seconds: float, also: asyncio.Event | None = None) -> bool:
        """Sleep on the clock; True when stop() (or ``also``) interrupted it."""
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waiters = {sleeper, asyncio.ensure_future(self._stop_event.wait())}
        if also is not None:
            waiters.add(asyncio.ensure_future(also.wait()))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        return self.stopping or (also is not None and also.is_set())

    def _start_deadline(self) -> asyncio.Task | None:
        ads = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
        if ads is None:
            return None
        remaining = (parse_time(self.start_time) or self.clock.now()) + int(ads) - self.clock.now()

        async def fire() -> None:
            await self.clock.sleep(max(0.0, remaining))
            grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            self.force_failed = True
            self.stop(30.0 if grace is None else float(grace), st.DEADLINE_REASON, st.DEADLINE_MESSAGE)

        return asyncio.ensure_future(fire())

    async def _finish(self) -> None:
        """Final status. On a stopped pod, a container that had run but has no exit status
        (it was between restarts) is reported as kubelet does: ContainerStatusUnknown, 137."""
        if self.stopping or self.force_failed:
            for rec in self.init + self.app:
                if rec.terminated is None and (rec.running or rec.last_state):
                    rec.state = st.unknown_terminated_state()
        self._save_state()
        await self.report(final=True)
        while self._report_failed and not self.deleted:  # the final status must land
            await self.clock.sleep(self._report_retry)
            await self.report(final=True)

    # ----------------------------------------------------------------- status

    def _phase_override(self, final: bool) -> str | None:
        if self.force_failed:
            return pods.FAILED
        if final and self.stopping:
            phase = st.pod_phase(self.restart_policy, self.init, self.app)
            return pods.SUCCEEDED if phase == pods.SUCCEEDED else pods.FAILED
        return None

    def current_status(self, final: bool = False) -> Obj:
        status = self._pod_status(final)
        if self.ephemeral:
            status["ephemeralContainerStatuses"] = [st.container_status(r) for r in self.ephemeral]
        return status

    def _pod_status(self, final: bool) -> Obj:
        phase_override = self._phase_override(final)
        status = st.pod_status(self.pod, self.init, self.app, rfc3339(self.clock.now()),
                               start_time=self.start_time, qos=qos_class(self.pod),
                               phase_override=phase_override,
                               reason=self.pod_reason if phase_override else None,
                               message=self.pod_message if phase_override else None, pod_ip=self.config.pod_ip)
        if not final and status["phase"] in pods.TERMINAL_PHASES and self._may_have_running_containers():
            st.hold_terminal_phase(status, self._last_status or self.pod.get("status") or {})
        return status

    def _may_have_running_containers(self) -> bool:
        """A container of the pod may still run: one held by a handle (being stopped, like the
        sidecars after the main containers) or recorded running."""
        return bool(self.handles) or any(r.running for r in (*self.init, *self.app, *self.ephemeral))

    def _report_soon(self, delay: float) -> None:
        """Report after ``delay`` without waiting for it: a change that comes first joins it
        (with no delay: one made before the report's task runs, this turn of the loop)."""
        async def later() -> None:
            if delay > 0:
                await self.clock.sleep(delay)
            await self.report()

        task = asyncio.ensure_future(later())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def report(self, final: bool = False) -> None:
        """Write the newest status through the status subresource (merge patch), skipping
        no-ops; returns once the API has a status at least as new as the call."""
        if self.deleted:
            return
        self._final = self._final or final
        self._report_wanted += 1
        wanted = self._report_wanted
        async with self._report_lock:
            if self._report_done >= wanted or self.deleted:
                return  # a write made while we waited already carried this change
            generation = self._report_wanted
            for _attempt in range(STATUS_CONFLICT_RETRIES):
                status = self.current_status(self._final)
                if status == self._last_status:
                    self._report_done = generation
                    return
                try:
                    with self.config.reports.writing():
                        updated = await self._patch_status(status)
                    break
                except StatusError as exc:
                    if exc.code == 404:
                        self.deleted = True
                        self.stop(0)
                        return
                    if exc.code == 429 or exc.code >= 500:
                        self._retry_report(exc)
                        return
                    if exc.code != 409:
                        log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name, exc)
                        return
                except Exception as exc:  # noqa: BLE001 - unreachable server, full store: try again later
                    self._retry_report(exc)
                    return
                if not await self._refresh_pod():
                    return
            else:
                self._retry_report("it kept conflicting")
                return
            self._report_retry = REPORT_RETRY_BASE
            self._report_failed = False
            self._last_status = status
            self._report_done = generation
            if _shows_a_start(status):
                self.config.reports.started(self)
            if isinstance(updated, dict) and updated.get("metadata"):
                self.update_pod(updated)

    def _retry_report(self, why: Any) -> None:
        """A failed status write (the store's disk is full, the server restarts) is tried again
        after a back-off, or the API would keep an outdated status for good."""
        delay = self._report_retry
        self._report_retry = min(delay * 2, REPORT_RETRY_MAX)
        self._report_failed = True
        log.warning("pod %s/%s: status update failed: %s; retrying in %gs", self.namespace, self.name, why, delay)
        self._report_soon(delay)

    async def _patch_status(self, status: Obj) -> Any:
        """A merge patch pinned to the resourceVersion the status was computed from: conditions
        written by others since (DisruptionTarget from an eviction) make it fail with 409
        instead of being overwritten, as kubelet's status manager merges against the current pod."""
        body: Obj = {"status": status}
        rv = (self.pod.get("metadata") or {}).get("resourceVersion")
        if rv:
            body["metadata"] = {"resourceVersion": rv}
        return await self.client.patch("pods", self.name, body, self.namespace, subresource="status")

    async def _refresh_pod(self) -> bool:
        """Read the current pod after a conflict; False when it is gone or unreadable."""
        try:
            self.pod = await self.client.get("pods", self.name, self.namespace)
            return True
        except StatusError as exc:
            if exc.code == 404:
                self.deleted = True
                self.stop(0)
            else:
                log.warning("pod %s/%s: cannot read the pod: %s", self.namespace, self.name, exc)
            return False

    @property
    def terminal_reported(self) -> bool:
        return bool(self._last_status and self._last_status.get("phase") in pods.TERMINAL_PHASES)

    # ------------------------------------------------------------ processes

    def _run_dir(self, rec: st.ContainerRecord) -> Path:
        return self.run_pod_dir / "containers" / rec.name / str(rec.restart_count)

    def _container_env(self, cspec: Obj, gpu_env: dict[str, str]) -> dict[str, str]:
        """The container's environment (also what ``kubectl exec`` gets)."""
        volumes = self.volumes if self.volumes is not None else {}
        sandboxed = self.isolated
        extra = {"HOSTNAME": hosts.pod_hostname(self.pod), **self._api_env()}
        if not sandboxed:
            extra["JOBPLANE_POD_DIR"] = str(self.pod_dir)
            extra.update(mount_env(cspec, volumes))
        else:  # the variables name the volumes where the container sees them
            extra.update({"JOBPLANE_VOLUME_" + sanitize_env_name(m.get("name", "")): m.get("mountPath", "")
                          for m in cspec.get("volumeMounts") or () if m.get("name") in volumes})
        extra.update(gpu_env)
        # An image brings its own environment (the engine adds it), not the agent's.
        base = {} if self.runtime.runs_images else self.config.host_env
        return build_env(self.pod, cspec, base, extra, self.config.node_capacity, self.sources,
                         pod_ip=self.config.pod_ip)

    def exec_spec(self, container: str, command: list[str], tty: bool, stdin: bool,
                  size: tuple[int, int] | None = None) -> ExecSpec:
        """``pods/exec``: ``command`` with the running container's environment, inside its
        sandbox (nsenter into its namespaces, root, working directory and user) or, without
        one, in its working directory as its user (ValueError naming what is wrong)."""
        rec, cspec = self._container(container)
        if rec is None or cspec is None:
            raise ValueError(f'container {container} is not valid for pod {self.name}')
        handle = self.handles.get(container)
        if not rec.running or handle is None:
            raise ValueError(f'container not found ("{container}")')
        if self.runtime.runs_images:  # the engine enters the container (its user, env, workdir)
            return ExecSpec(argv=list(command), env={}, cwd=None, tty=tty, stdin=stdin, size=size)
        env = self._container_env(cspec, {})
        identity = security.identity(self.pod, cspec, os.geteuid(), _agent_groups())
        if self.runtime.sandbox.available:
            prefix = self.runtime.enter_argv(handle.pid, identity)
            if prefix is None:
                raise ValueError(f'container not found ("{container}")')
            return ExecSpec(argv=[*prefix, *command], env=env, cwd=None, tty=tty, stdin=stdin, size=size)
        cwd = cspec.get("workingDir") or None
        argv = [resolve_executable(command[0], env, cwd), *command[1:]]
        if identity.changes:
            argv = [*identity_prefix(identity), *argv]
        return ExecSpec(argv=argv, env=env, cwd=cwd, tty=tty, stdin=stdin, size=size)

    def attach_name(self, rec: st.ContainerRecord) -> str:
        """The abstract socket a ``stdin``/``tty`` container's attach relay listens on."""
        return f"jobplane-attach-{self.uid}-{rec.name}-{rec.restart_count}"

    def attach_target(self, container: str) -> str:
        """``pods/attach``: the running container's relay socket (ValueError when there is none)."""
        rec, cspec = self._container(container)
        if rec is None or cspec is None:
            raise ValueError(f"container {container} is not valid for pod {self.name}")
        if not rec.running:
            raise ValueError(f'container not found ("{container}")')
        if not (cspec.get("stdin") or cspec.get("tty")):
            raise ValueError(f"container {container} was not started with stdin or tty: attach shows its output only "
                             "through kubectl logs -f")
        return self.attach_name(rec)

    def _image_spec(self, rec: st.ContainerRecord, cspec: Obj) -> ProcessSpec:
        """What the image runtime runs: the image the pull step found, the pod's command and
        args ($(VAR)-expanded; the engine combines them with the image's ENTRYPOINT and CMD),
        its environment, volumes as bind mounts, /etc/hosts, limits and user."""
        volumes = self.volumes if self.volumes is not None else {}
        env = self._container_env(cspec, self._gpu_env(cspec))
        command = [expand(str(a), env) for a in cspec.get("command") or ()]
        args = [expand(str(a), env) for a in cspec.get("args") or ()]
        identity = security.identity(self.pod, cspec, 0, set())
        csc = cspec.get("securityContext") or {}
        if csc.get("privileged") and not self.config.allow_privileged:
            raise ContainerConfigError(
                "CreateContainerConfigError",
                f"container {rec.name} is privileged: node {self.config.node_name} does not allow privileged "
                "containers (start its agent with --allow-privileged)")
        caps = csc.get("capabilities") or {}
        user = None
        if identity.uid is not None or identity.gid is not None:
            user = f"{identity.uid if identity.uid is not None else 0}"
            user += f":{identity.gid}" if identity.gid is not None else ""
        mounts = [Mount(str(self.run_pod_dir / HOSTS_FILE), "/etc/hosts", True), *container_mounts(cspec, volumes, env)]
        mem = container_limit(cspec, "memory")
        meta = self.pod.get("metadata") or {}
        labels = {"io.kubernetes.pod.uid": self.uid, "io.kubernetes.pod.namespace": self.namespace,
                  "io.kubernetes.pod.name": self.name, "io.kubernetes.container.name": rec.name,
                  "io.kubernetes.container.restartCount": str(rec.restart_count)}
        if meta.get("labels", {}).get("job-name"):
            labels["batch.kubernetes.io/job-name"] = str(meta["labels"]["job-name"])
        image = ImageSpec(
            image=rec.image, image_ref=self.image_refs.get(rec.name) or rec.image, command=command, args=args,
            env=env, name=container_name(rec.name, self.name, self.namespace, self.uid, rec.restart_count),
            pod_name=pod_sandbox_name(self.name, self.namespace, self.uid), hostname=hosts.pod_hostname(self.pod),
            labels=labels, mounts=mounts, workdir=cspec.get("workingDir") or None,
            memory=int(mem) if mem else None, cpus=container_limit(cspec, "cpu"), user=user,
            groups=list(identity.groups or ()), read_only=bool(csc.get("readOnlyRootFilesystem")),
            stdin=bool(cspec.get("stdin")), tty=bool(cspec.get("tty")),
            shared=len(self.init) + len(self.app) + len(self.ephemeral) > 1,
            privileged=bool(csc.get("privileged")), cap_add=[str(c) for c in caps.get("add") or ()],
            cap_drop=[str(c) for c in caps.get("drop") or ()],
            no_new_privileges=csc.get("allowPrivilegeEscalation") is False)
        argv = attach_argv(self.attach_name(rec), cspec, []) if (image.stdin or image.tty) else []
        if argv:
            argv = argv[:-1] if argv[-1] == "--" else argv
            argv.append("--")
        return ProcessSpec(
            argv=argv, executable="", env={}, cwd=None, state_dir=self._run_dir(rec),
            log_path=podlogs.log_path(self.config.pods_dir, self.uid, rec.name, rec.restart_count),
            done_path=podlogs.done_marker(self.config.pods_dir, self.uid, rec.name, rec.restart_count),
            image=image)

    def _process_spec(self, rec: st.ContainerRecord, cspec: Obj) -> ProcessSpec:
        if self.runtime.runs_images:
            return self._image_spec(rec, cspec)
        volumes = self.volumes if self.volumes is not None else {}
        sandboxed = self.runtime.sandbox.available
        hostname = hosts.pod_hostname(self.pod)
        env = self._container_env(cspec, self._gpu_env(cspec))
        argv = build_argv(cspec, env)
        if cspec.get("stdin") or cspec.get("tty"):
            argv = attach_argv(self.attach_name(rec), cspec, argv)
        identity = security.identity(self.pod, cspec, os.geteuid(), _agent_groups())
        cwd = cspec.get("workingDir") or None
        mem = container_limit(cspec, "memory")
        spec = ProcessSpec(
            argv=argv, executable="", env=env, cwd=cwd, state_dir=self._run_dir(rec),
            log_path=podlogs.log_path(self.config.pods_dir, self.uid, rec.name, rec.restart_count),
            done_path=podlogs.done_marker(self.config.pods_dir, self.uid, rec.name, rec.restart_count),
            memory_limit=int(mem) if mem else None, cpu_limit=container_limit(cspec, "cpu"),
            cgroup_name=f"jobplane-{self.uid}-{rec.name}",
        )
        if sandboxed:
            mounts = container_mounts(cspec, volumes, env)
            # What the container sees where: its own /tmp, the agent's installation if under /tmp.
            view = [Mount(str(self.pod_dir / TMP_DIR), "/tmp"), *(Mount(r, r) for r in AGENT_ROOTS_UNDER_TMP),
                    *mounts]
            if cwd:
                Path(translate(cwd, view)).mkdir(parents=True, exist_ok=True)
            else:  # the agent's directory, unless the sandbox hides it
                here = getattr(self.runtime, "cwd", "/")
                hidden = any(here == h or here.startswith(h.rstrip("/") + "/") for h in (*self.config.hidden, "/tmp"))
                spec.cwd = cwd = "/" if hidden else here
            spec.executable = resolve_executable(argv[0], env, cwd, host_path=lambda p: translate(p, view),
                                                 view_key=tuple(m.target for m in view))
            spec.sandbox = SandboxSpec(
                hostname=hostname, hosts_file=str(self.run_pod_dir / HOSTS_FILE),
                hostname_file=str(self.run_pod_dir / HOSTNAME_FILE), tmp_dir=str(self.pod_dir / TMP_DIR),
                mounts=mounts, hidden=self.config.hidden, identity=identity)
            return spec
        if cwd:
            Path(cwd).mkdir(parents=True, exist_ok=True)
        spec.executable = resolve_executable(argv[0], env, cwd)
        if identity.changes:  # no sandbox, but a root agent can still switch users
            spec.argv = [*identity_prefix(identity), spec.executable, *argv[1:]]
            spec.executable = spec.argv[0]
        self.links.extend(link_mounts(cspec, volumes))
        return spec

    def _api_env(self) -> dict[str, str]:
        """Where the API server is, as kubelet tells every container (the ``kubernetes`` Service)."""
        host, port = self.config.api_host, self.config.api_port
        if not host or not port:
            return {}
        return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": str(port),
                "KUBERNETES_SERVICE_PORT_HTTPS": str(port), "KUBERNETES_PORT": f"tcp://{host}:{port}",
                f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
                f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp", f"KUBERNETES_PORT_{port}_TCP_PORT": str(port),
                f"KUBERNETES_PORT_{port}_TCP_ADDR": host}

    # ------------------------------------------------------------- the pod's sandbox

    def _event(self, type_: str, reason: str, message: str) -> None:
        """A kubelet event on the pod (``kubectl events --for pod/NAME``)."""
        if self.config.recorder is not None:
            ref = {"kind": "Pod", "apiVersion": "v1",
                   "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid}}
            self.config.recorder.event(ref, type_, reason, message)

    async def _select_runtime(self) -> bool:
        """``spec.runtimeClassName``: the runtime its RuntimeClass's handler names on this node.
        While there is none the pod waits (ContainerCreating) with kubelet's
        ``FailedCreatePodSandBox`` event, retried; False when stopped meanwhile."""
        name = (self.pod.get("spec") or {}).get("runtimeClassName")
        if not name or self.config.runtime_for is None:
            return True
        while not self.stopping:
            try:
                self.runtime = await self.config.runtime_for(str(name))
                return True
            except Exception as exc:  # noqa: BLE001 - RuntimeUnavailable, or the API is unreachable
                self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
                await self.report()
            if await self._interruptible_sleep(self.config.volume_refresh):
                return False
        return False

    async def _prepare_pod(self) -> bool:
        """Volumes, /etc/hosts, /etc/hostname and /tmp of the pod; while a volume cannot be set
        up the pod waits in ContainerCreating with a FailedMount event, retried (False: stopped)."""
        if not self.isolated and self.config.sandbox_note:
            self._event("Warning", "SandboxUnavailable", self.config.sandbox_note)
        while True:
            try:
                await self._setup_pod()
                return True
            except MountError as exc:
                self._event("Warning", "FailedMount", exc.event_message)
            except OSError as exc:
                self._event("Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}")
            await self.report()
            if await self._interruptible_sleep(self.config.volume_refresh):
                return False

    async def _setup_pod(self) -> None:
        sandboxed = self.isolated
        root = os.geteuid() == 0
        pvc_paths = await self._pvc_paths()
        fsg = security.fs_group(self.pod) if root else None
        projections = await self._projections()
        hosts_text = hostname_text = None
        if sandboxed:
            hosts_text = self._hosts_text()
            hostname_text = hosts.pod_hostname(self.pod) + "\n"
        # The pod's files in one thread hop: a few dozen mkdir/open/write/symlink calls that take
        # milliseconds on a busy disk, and the event loop is the API server's too (embedded agent).
        # Except when they all go to memory but a rename and an open on the disk (a spare is there
        # for a pod with in-memory volumes only) and nothing else of the node is starting: then
        # the ~0.5 ms of calls block no other pod, and the hop itself would add as much.
        args = (sandboxed and root, pvc_paths, fsg, projections, hosts_text, hostname_text, self._state_fd is None)
        if self._files_in_memory() and self.config.reports.alone(self):
            volumes, state_fd = self._make_pod_files(*args)
        else:
            volumes, state_fd = await asyncio.to_thread(self._make_pod_files, *args)
        for name, seen, _files in projections:
            self._projected[name] = seen
        if state_fd is not None:
            if self._state_fd is None:
                self._state_fd, self._state_saved = state_fd[0], b" " * state_fd[1]
            else:
                os.close(state_fd[0])
        self.volumes = volumes

    def _spare_pool(self) -> spares.SparePool | None:
        """Where this pod's directory may come from: a pod no agent ran here before, at its
        first set-up, takes a spare (agent/spares.py); None: it is made as without spares."""
        return self.config.spares if self.fresh and not self._dir_claimed else None

    def _files_in_memory(self) -> bool:
        """Whether the pod's set-up makes no inode on the disk: it takes a spare directory (one
        is ready) and its volumes are all written to the runtime directory in memory."""
        pool = self._spare_pool()
        return (pool is not None and pool.fits(self.isolated) and self.run_pod_dir != self.pod_dir
                and all(WRITTEN_TYPES.intersection(v) for v in (self.pod.get("spec") or {}).get("volumes") or ()))

    def _make_pod_files(self, memory_tmpfs: bool, pvc_paths: dict[str, Path], fsg: int | None,
                        projections: list[tuple[str, Any, projection.Payload]], hosts_text: str | None,
                        hostname_text: str | None, open_state: bool
                        ) -> tuple[dict[str, Path], tuple[int, int] | None]:
        """The pod's directory, volumes, projected files, /etc/hosts, /etc/hostname and /tmp
        (blocking: runs in a thread); also opens the state file when asked (its descriptor and
        size)."""
        # A pod no agent ran here before takes a spare directory (state.json, logs/ and, when
        # sandboxed, tmp/ already made: agent/spares.py) by one rename; else as without spares.
        pool = self._spare_pool()
        spare = pool is not None and pool.take(self.pod_dir, hosts_text is not None)
        self._dir_claimed = True
        self._first_log = spare
        new = spare or _make_dir(self.pod_dir)  # first: orphan collection goes by it
        if self.run_pod_dir != self.pod_dir:
            new = self._make_run_pod_dir() and new
        # new: both directories were made just now (the first set-up of a pod no agent ran here
        # before), so nothing in them is to be checked, compared or replaced: fewer system calls.
        volumes = volume_dirs(self.pod, self.pod_dir, run_dir=self.run_pod_dir, memory_tmpfs=memory_tmpfs,
                              pvc_paths=pvc_paths, new=new)
        if fsg is not None:
            for vol in (self.pod.get("spec") or {}).get("volumes") or ():
                if "emptyDir" in vol and vol.get("name") in volumes:
                    os.chown(volumes[vol["name"]], -1, fsg)
                    os.chmod(volumes[vol["name"]], 0o2777)
        for name, _seen, files in projections:
            projection.write_atomic(volumes[name], files, fsg, new=new)
        if hosts_text is not None and hostname_text is not None:
            tmp = self.pod_dir / TMP_DIR
            if not spare and (new or not tmp.is_dir()):
                tmp.mkdir()
                os.chmod(tmp, 0o1777)
            hosts.write_in_place(self.run_pod_dir / HOSTS_FILE, hosts_text, new=new)
            hosts.write_in_place(self.run_pod_dir / HOSTNAME_FILE, hostname_text, new=new)
        if not open_state:
            return volumes, None
        fd = self._open_state()
        return volumes, (fd, 0 if new else os.fstat(fd).st_size)

    def _make_run_pod_dir(self) -> bool:
        """The pod's runtime directory (True: made now); its parents again (private) when they
        went away (an agent sharing them stopped and removed them empty)."""
        try:
            return _make_dir(self.run_pod_dir, parents=False)
        except FileNotFoundError:
            rundir.make_private(self.run_pod_dir.parent.parent)
            rundir.make_private(self.run_pod_dir.parent)
            return _make_dir(self.run_pod_dir, parents=False)

    def _hosts_text(self) -> str:
        """The pod's /etc/hosts now. Records the DNS view's version the names are from (the
        refresh loop compares against it, so a change between the first write and the loop's
        start is not lost) and which names linger."""
        self._hosts_version = self.config.dns.version if self.config.dns is not None else 0
        extra, self._hosts_seen, self._hosts_expiry = with_lingering(
            self.hosts_extra(), self._hosts_seen, self.clock.now(), HOSTS_LINGER)
        return hosts.hosts_file(self.pod, self.config.pod_ip, extra, _HOST_ENTRIES())

    def _write_hosts(self) -> None:
        hosts.write_in_place(self.run_pod_dir / HOSTS_FILE, self._hosts_text())

    def hosts_extra(self) -> list[tuple[str, list[str]]]:
        """Names other than the pod's own for its /etc/hosts (the agent's DNS view sets it)."""
        view = self.config.dns
        return view.entries_for(self.pod) if view is not None else []

    async def _pvc_paths(self) -> dict[str, Path]:
        """The host directory of each bound PersistentVolumeClaim the pod uses (hostPath or
        local PersistentVolumes, as a local provisioner makes them)."""
        out: dict[str, Path] = {}
        for vol in (self.pod.get("spec") or {}).get("volumes") or ():
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            try:
                pvc = await self.client.get("persistentvolumeclaims", claim, self.namespace)
                pv_name = (pvc.get("spec") or {}).get("volumeName")
                if not pv_name:
                    raise MountError(vol.get("name", ""), f'persistentvolumeclaim "{claim}" is not bound')
                pv = await self.client.get("persistentvolumes", pv_name)
            except StatusError as exc:
                raise MountError(vol.get("name", ""), exc.message if hasattr(exc, "message") else str(exc)) from None
            pv_spec = pv.get("spec") or {}
            path = (pv_spec.get("hostPath") or pv_spec.get("local") or {}).get("path")
            if path:
                Path(path).mkdir(parents=True, exist_ok=True)
                out[claim] = Path(path)
        return out

    async def _projections(self) -> list[tuple[str, Any, projection.Payload]]:
        """The ConfigMap, Secret, downward API and projected volumes whose files must be
        (re)written: (volume, what its files are made of, the files), looked up now."""
        out: list[tuple[str, Any, projection.Payload]] = []
        for vol in (self.pod.get("spec") or {}).get("volumes") or ():
            if not any(k in vol for k in ("configMap", "secret", "downwardAPI", "projected")):
                continue
            found: dict[tuple[Any, ...], Any] = {}
            for ref in projection.references(vol):
                found[ref] = await self._lookup(ref)
            # What the files are made of: the objects' versions, the tokens, the pod's (downward
            # API). Unchanged since the last write: nothing to read back or compare.
            seen = (str((self.pod.get("metadata") or {}).get("resourceVersion")), tuple(
                (ref, found[ref] if ref[0] == "token" else (found[ref] or {}).get("metadata", {}).get("resourceVersion")
                 if found[ref] is not None else None) for ref in found))
            if self._projected.get(vol["name"]) == seen:
                continue
            out.append((vol["name"], seen, projection.payload(vol, self.pod, found.get)))
        return out

    async def _write_projections(self, volumes: dict[str, Path]) -> bool:
        """ConfigMap, Secret, downward API and projected volumes: (re)write their files when
        what they show changed; True when something was rewritten."""
        changed = False
        group = security.fs_group(self.pod) if os.geteuid() == 0 else None
        for name, seen, files in await self._projections():
            # In a thread: a dozen creates and symlinks take milliseconds on some file systems,
            # and the event loop is the API server's too (the embedded agent).
            changed |= await asyncio.to_thread(projection.write_atomic, volumes[name], files, group)
            self._projected[name] = seen
        return changed

    async def _lookup(self, ref: tuple[Any, ...]) -> Any:
        if ref[0] == "token":
            return await self._token(ref[1], ref[2])
        try:
            return await self.client.get(ref[0], ref[1], self.namespace)
        except StatusError as exc:
            if exc.code == 404:
                return None
            raise MountError(ref[1], str(exc)) from None

    async def _token(self, audience: str, expiration: int) -> str:
        """A bound service-account token (TokenRequest), renewed at 80 % of its lifetime."""
        key = (audience, expiration)
        cached = self._tokens.get(key)
        now = self.clock.now()
        if cached and now < cached[1]:
            return cached[0]
        sa = (self.pod.get("spec") or {}).get("serviceAccountName") or "default"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {"name": sa},
                "spec": {"audiences": [audience] if audience else [], "expirationSeconds": expiration,
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": self.name, "uid": self.uid}}}
        try:
            result = await self.client.create("serviceaccounts", body, self.namespace, subresource="token")
        except StatusError as exc:
            raise MountError("token", f"failed to fetch token: {exc}") from None
        token = str((result.get("status") or {}).get("token") or "")
        self._tokens[key] = (token, now + 0.8 * expiration)
        return token

    def _start_volume_refresh(self) -> None:
        """Keep ConfigMap/Secret/downward API volumes current while the pod runs (every
        ``volume_refresh`` seconds), and /etc/hosts as soon as the cluster's names change: a
        peer's name may exist only briefly (the pod-to-pod example's peers finish once they
        have pinged everyone), so a hosts file a poll late can miss it for good."""
        needs = any(any(k in v for k in ("configMap", "secret", "downwardAPI", "projected"))
                    for v in (self.pod.get("spec") or {}).get("volumes") or ())
        dns = self.config.dns

        async def volumes_loop() -> None:
            while not self.stopping:
                await self.clock.sleep(self.config.volume_refresh)
                try:
                    if self.volumes is not None:
                        await self._write_projections(self.volumes)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - keep the last good contents
                    if isinstance(exc, StatusError) and exc.code in (403, 404) and await self._deleted():
                        return  # the pod is gone: the node may no longer read its objects
                    log.info("pod %s/%s: volume refresh failed: %s", self.namespace, self.name, exc)

        async def hosts_loop() -> None:
            while not self.stopping:
                await dns.wait_change(self._hosts_version, self.config.volume_refresh)
                try:
                    expired = self._hosts_expiry is not None and self.clock.now() >= self._hosts_expiry
                    if dns.version != self._hosts_version or expired:
                        self._write_hosts()
                except OSError as exc:
                    log.info("pod %s/%s: /etc/hosts refresh failed: %s", self.namespace, self.name, exc)
                await self.clock.sleep(HOSTS_COALESCE)  # a burst of changes: one write per pod

        loops = ([volumes_loop()] if needs else []) + ([hosts_loop()] if dns is not None and self.isolated else [])
        for coro in loops:
            task = asyncio.ensure_future(coro)
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _deleted(self) -> bool:
        """Whether this pod no longer exists in the API (or its name is another pod's now):
        a refresh racing the deletion is refused once the node authorizer dropped the pod's
        edges, before this worker hears of the deletion."""
        try:
            current = await self.client.get("pods", self.name, self.namespace)
        except StatusError as exc:
            return exc.code == 404
        return (current.get("metadata") or {}).get("uid") != self.uid

    def _gpu_env(self, cspec: Obj) -> dict[str, str]:
        gpus = self.config.gpus
        if gpus is None or not gpus.total:
            return {}
        want = gpu_count(cspec)
        if want == 0:
            return {"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"}
        ids = gpus.acquire(want)
        if ids is None:
            raise ContainerConfigError("StartError", f"insufficient nvidia.com/gpu: {want} requested")
        self.gpu_ids.extend(ids)
        visible = ",".join(str(i) for i in ids)
        return {"CUDA_VISIBLE_DEVICES": visible, "NVIDIA_VISIBLE_DEVICES": visible}

    # ---------------------------------------------------------- persistence

    @property
    def state_path(self) -> Path:
        return self.pod_dir / "state.json"

    def _save_state(self) -> None:
        """Persist the records if they changed: one ``pwrite`` over the open file."""
        data = orjson.dumps({"node": self.config.node_name, "startTime": self.start_time, "links": self.links,
                             "containers": [r.to_dict() for r in self.init + self.app]})
        if data == self._state_saved.rstrip():
            return
        padded = data.ljust(len(self._state_saved))  # trailing spaces keep it valid JSON, never shorter
        try:
            if self._state_fd is None:
                self._state_fd = self._open_state()
                self._state_saved = b" " * os.fstat(self._state_fd).st_size
                padded = data.ljust(len(self._state_saved))
            os.pwrite(self._state_fd, padded, 0)
            self._state_saved = padded
        except OSError as exc:
            log.warning("pod %s/%s: cannot save its state: %s", self.namespace, self.name, exc)

    def _open_state(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        try:
            return os.open(self.state_path, flags, 0o600)
        except FileNotFoundError:  # nothing has created the pod's directory yet
            self.pod_dir.mkdir(parents=True, exist_ok=True)
            return os.open(self.state_path, flags, 0o600)

    def _load_state(self) -> bool:
        try:
            data = orjson.loads(self.state_path.read_bytes())
        except (OSError, ValueError):
            return False
        if (self.pod_dir / "containers").is_dir():  # started before runtime directories: stays there
            self.run_pod_dir = self.pod_dir
        self.start_time = data.get("startTime") or self.start_time
        self.links = list(data.get("links") or ())
        saved = {(bool(d.get("init")), d["name"]): st.ContainerRecord.from_dict(d) for d in data.get("containers", ())}
        self.init = [saved.get((True, r.name), r) for r in self.init]
        self.app = [saved.get((False, r.name), r) for r in self.app]
        for rec in self.init + self.app:
            if rec.last_state.get("terminated") and "waiting" in rec.state:
                if rec.state["waiting"].get("reason") == "CrashLoopBackOff":
                    rec.restart_count += 1  # the restart it waited for happens now
                self.failures[rec.name] = rec.restart_count
        return True

    def _looks_started_elsewhere(self) -> bool:
        """The API says containers ran, but this agent has no record of them (data dir lost)."""
        status = self.pod.get("status") or {}
        return status.get("phase") == pods.RUNNING or any(
            "running" in (cs.get("state") or {}) for cs in status.get("containerStatuses") or ())

    def _mark_lost_without_state(self) -> None:
        self.force_failed = True
        self.pod_message = "the agent has no record of this pod's processes; their exit codes are unknown"
        for rec in self.init + self.app:
            rec.state = st.unknown_terminated_state()
