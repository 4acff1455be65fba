"""The node agent: registers the node, watches the pods bound to it and runs a
``PodWorker`` per pod (kubelet's pod workers, much reduced).

* A new non-terminal pod gets a worker (which re-adopts its processes after a restart).
* A pod with a deletionTimestamp is terminated (SIGTERM, its grace, SIGKILL), its final
  status written, and then deleted with grace 0, as kubelet finishes a graceful deletion.
* Terminal pods are left alone; their logs stay until the pod object is deleted, when the
  pod's directory is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from jobplane import remotecommand as rc
from jobplane.agent import rundir
from jobplane.agent.dns import DnsView
from jobplane.agent.execsession import AttachSession
from jobplane.agent.gpus import GpuAllocator, detect_gpus
from jobplane.agent.logserver import LogEndpoint, LogServer
from jobplane.agent.node import SANDBOX_ANNOTATION, MachineInfo, NodeHeartbeat, machine_info
from jobplane.agent.runtime import HostProcessRuntime, Runtime
from jobplane.agent.sandbox import SandboxSupport
from jobplane.agent.sandbox import detect as detect_sandbox
from jobplane.agent.spares import SparePool, is_spare
from jobplane.agent.spec import ContainerConfigError
from jobplane.agent.usage import ProcessTable, Sampler
from jobplane.agent.volumes import remove_pod_trees
from jobplane.agent.worker import TMP_DIR, PodWorker, WorkerConfig, records_possible
from jobplane.api.errors import StatusError
from jobplane.api.pods import is_terminal
from jobplane.api.resources import GPU
from jobplane.client.base import Client
from jobplane.client.events import EventRecorder
from jobplane.client.pod_transform import compact_terminal_pod
from jobplane.clock import Clock

log = logging.getLogger(__name__)


class RuntimeUnavailable(Exception):
    """A pod's RuntimeClass names a handler this node does not have."""
Obj = dict[str, Any]

USAGE_INTERVAL = 10.0
# Finished pods' runtime directories are removed together this long after the first of them
# finished (kubelet's housekeeping removes finished pods' volumes every 2 s): one thread hop and
# one process for the lot (volumes.remove_pod_trees) instead of a thread hop and ~60 system
# calls per pod in the server's process.
REMOVAL_BATCH = 1.0
# A deleted pod's logs and records stay this long after its object is gone, its volumes and /tmp
# not: kubelet removes a deleted pod's volumes at once and its containers' logs at the next
# container GC (up to a minute later). Meanwhile the Job history (apiserver/history.py) can
# still copy them: a Job deleted by ttlSecondsAfterFinished: 0 takes its pods with it at once.
# Short, as each waiting pod is a sleeping task (PodGC deletes ~160 pods/s at 100,000 pods).
DELETED_LOGS_KEEP = 5.0
IMAGES_INTERVAL = 15.0
ATTACH_ATTEMPTS, ATTACH_RETRY = 100, 0.05  # up to 5 s for a just-started relay


def private_dir(path: Path) -> None:
    """Create ``path`` readable by its owner only (0700: pod logs, state, volumes)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)


class Agent:
    def __init__(self, client: Client, node_name: str, data_dir: Path, clock: Clock, *,
                 runtime: Runtime | None = None, machine: MachineInfo | None = None,
                 backoff_base: float = 10.0, backoff_max: float = 300.0, heartbeat: bool = True,
                 log_endpoint: LogEndpoint | None = None, sandbox: bool = True,
                 hidden: tuple[Path, ...] = (), api_host: str | None = None, api_port: int | None = None,
                 ca_file: Path | None = None, runtime_choice: str = "host", allow_privileged: bool = False,
                 runtime_dir: str = "") -> None:
        self.client = client
        self.node_name = node_name
        self.clock = clock
        self.pods_dir = Path(data_dir) / "pods"  # on disk: each pod's records, logs and /tmp
        # In memory, as kubelet's tmpfs volumes and the runtime's /run: volume contents, tokens,
        # /etc/hosts, the supervisor's run state (agent/rundir.py); else in the data dir.
        self.run_root = rundir.choose(Path(data_dir), runtime_dir)
        self.run_pods_dir = self.run_root / "pods" if self.run_root is not None else self.pods_dir
        support = None
        if runtime is None and runtime_choice != "host":
            from jobplane.agent.engine import select

            runtime, why = select(runtime_choice, clock, Path(data_dir))
            if runtime is None:
                log.warning("node %s: no container engine works here (%s): pods run as host processes",
                            node_name, why)
        if runtime is None:
            support = detect_sandbox() if sandbox else SandboxSupport(None, reason="turned off (--no-sandbox)")
            if not support.available:
                log.warning("node %s: pods run without a sandbox: %s", node_name, support.reason)
        self.runtime = runtime or HostProcessRuntime(clock, data_dir=Path(data_dir), sandbox=support)
        self._sandbox_wanted = sandbox
        self._host_runtime: HostProcessRuntime | None = None  # for RuntimeClass handler "host" on an image node
        self.machine = machine or machine_info(detect_gpus())
        # The local-path provisioner puts this node's volumes under <data dir>/volumes.
        self.data_dir = Path(data_dir).resolve()
        self.machine.annotations["jobplane.io/data-dir"] = str(self.data_dir)
        self.machine.runtime_version = self.runtime.runtime_version
        if self.runtime.runs_images:
            self.machine.annotations[SANDBOX_ANNOTATION] = self.runtime.runtime_version.split(":")[0]
        else:
            self.machine.annotations[SANDBOX_ANNOTATION] = (
                "bubblewrap" if self.runtime.sandbox.available else f"none: {self.runtime.sandbox.reason}")
        self.recorder = EventRecorder(client, "kubelet", clock, host=node_name)
        self.dns = DnsView(client, clock)
        self.heartbeat = NodeHeartbeat(client, node_name, clock, self.machine) if heartbeat else None
        self.config = WorkerConfig(
            pods_dir=self.pods_dir, node_name=node_name, backoff_base=backoff_base, backoff_max=backoff_max,
            node_capacity={"cpu": float(self.machine.cpus), "memory": float(self.machine.memory_bytes),
                           GPU: float(self.machine.gpus)},
            gpus=GpuAllocator(self.machine.gpus),
            run_pods_dir=self.run_pods_dir,
            hidden=tuple(dict.fromkeys(str(Path(p).resolve()) for p in (
                Path(data_dir), *([self.run_root] if self.run_root is not None else []), *hidden))),
            recorder=self.recorder, api_host=api_host, api_port=api_port,
            ca_file=ca_file,
            sandbox_note="" if self.runtime.sandbox.available or self.runtime.runs_images else (
                f"pod sandbox unavailable on node {node_name} ({self.runtime.sandbox.reason}): containers "
                "run as plain host processes; volumes are reachable through JOBPLANE_VOLUME_* and "
                "mountPath symlinks"),
            dns=self.dns,
            runtime_for=self.runtime_for,
            allow_privileged=allow_privileged,
            remove_later=self._remove_later,
        )
        self._removals: list[tuple[Path, bool]] = []  # pods' directories to remove in the next batch
        self._removals_done: asyncio.Future | None = None
        self._removing: dict[str, asyncio.Future] = {}  # pod uid -> its runtime directory's batch
        self.workers: dict[str, PodWorker] = {}  # by pod uid
        self._tasks: dict[str, asyncio.Task] = {}
        self._finishing: set[str] = set()
        # Pods whose worker reported a terminal phase: stale informer events must not restart them.
        self._completed: set[str] = set()
        # Pods whose worker ended without reporting one (it crashed; the pod was deleted).
        self._unreported: set[str] = set()
        # The pods' directories when this agent started (listed before the informer starts): a
        # pod without one, and without an earlier worker here, has no records to read
        # (worker.records_possible). None: not listed (an agent driven without run()).
        self._dirs_at_start: set[str] | None = None
        self._background: set[asyncio.Task] = set()
        self.informer: Any = None
        self.log_endpoint = log_endpoint
        self._usage = Sampler(clock.now)
        self.log_server: LogServer | None = None

    # ------------------------------------------------------------------ run

    async def run(self) -> None:
        """Run until cancelled; running pods keep running when the agent stops (a later
        agent re-adopts them)."""
        from jobplane.client.informer import Informer

        private_dir(self.pods_dir.parent)
        private_dir(self.pods_dir)
        self._dirs_at_start = {name for name in os.listdir(self.pods_dir) if not is_spare(name)}
        if self.run_root is not None:  # in a shared /dev/shm: checked again, never through a link
            rundir.make_private(self.run_root)
            rundir.make_private(self.run_pods_dir)
            self._dirs_at_start.update(os.listdir(self.run_pods_dir))  # (the supervisor's records)
        if self.log_endpoint is not None:
            await self._serve_logs(self.log_endpoint)
        hb_task = asyncio.create_task(self.heartbeat.run(), name="node-heartbeat") if self.heartbeat else None
        isolated = self.runtime.sandbox.available or self.runtime.runs_images
        dns_task = asyncio.create_task(self.dns.run(), name="pod-dns") if isolated else None
        images_task = asyncio.create_task(self._watch_images(), name="node-images") if self.runtime.runs_images \
            else None
        from jobplane.agent.pvcleanup import VolumeCleaner

        cleaner = asyncio.create_task(VolumeCleaner(self.client, self.node_name, self.data_dir, self.clock).run(),
                                      name="volume-cleaner")
        usage_task = asyncio.create_task(self._sample_usage(), name="usage-sampler")
        self.informer = Informer(self.client, "pods", field_selector=f"spec.nodeName={self.node_name}",
                                 clock=self.clock, transform=self._compact)
        self.informer.add_handler(on_add=self.sync, on_update=lambda _old, new: self.sync(new),
                                  on_delete=self.on_delete)
        # Spare pod directories, made in a thread while no pod is starting (agent/spares.py).
        spares = self.config.spares = SparePool(
            self.pods_dir, self.node_name, with_tmp=isolated, quiet=self.config.reports.quiet)
        self.config.reports.on_quiet = spares.wake
        spares.start()
        try:
            if self.runtime.runs_images:
                await self.runtime.prepare()  # the supervisor first: adopted clients report to it
            await self.informer.start()
            self.collect_orphan_dirs()
            if self.runtime.runs_images:
                self._spawn(self._collect_orphan_containers())
            await asyncio.Event().wait()
        finally:
            self.config.reports.on_quiet = None
            self.config.spares = None
            await asyncio.to_thread(spares.stop)  # (no spare left half made)
            usage_task.cancel()
            if images_task:
                images_task.cancel()
            if hb_task:
                hb_task.cancel()
            if dns_task:
                dns_task.cancel()
            cleaner.cancel()
            await self.informer.stop()
            if self.log_server is not None:
                await self.log_server.stop()
            await self.detach()
            _remove_now(self._removals)  # (so that an agent leaving no pod leaves no directory)
            await self.runtime.close()
            if self._host_runtime is not None:
                await self._host_runtime.close()
            with contextlib.suppress(Exception):
                await self.config.recorder.close()
            if self.run_root is not None:  # nothing left running: leave no empty directory in memory
                with contextlib.suppress(OSError):
                    self.run_pods_dir.rmdir()
                    self.run_root.rmdir()

    async def runtime_for(self, class_name: str) -> Runtime:
        """The runtime a pod's ``runtimeClassName`` selects through its RuntimeClass's handler:
        ``host`` (processes on this machine), the engine's name or ``runc`` (the image runtime,
        where this node has one). RuntimeUnavailable (kubelet's sandbox error) otherwise."""
        try:
            rc = await self.client.get("runtimeclasses", class_name)
        except StatusError as exc:
            raise RuntimeUnavailable(f'runtimeclass "{class_name}": {exc}') from None
        handler = str(rc.get("handler") or "")
        if handler == "host":
            if not self.runtime.runs_images:
                return self.runtime
            if self._host_runtime is None:
                support = detect_sandbox() if self._sandbox_wanted else SandboxSupport(None, reason="turned off")
                self._host_runtime = HostProcessRuntime(self.clock, data_dir=self.data_dir, sandbox=support)
            return self._host_runtime
        engine = self.runtime.runtime_version.split(":")[0]
        if self.runtime.runs_images and handler in (engine, "runc"):
            return self.runtime
        raise RuntimeUnavailable(f'rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for '
                                 f'"{handler}" is configured')

    async def _collect_orphan_containers(self) -> None:
        """Remove the engine's containers of pods that no longer exist (deleted while no agent ran)."""
        live = {(p.get("metadata") or {}).get("uid") or "" for p in self.informer.list()}
        try:
            await self.runtime.collect_orphans(live | set(self.workers))
        except Exception as exc:  # noqa: BLE001 - the next start tries again
            log.warning("node %s: cannot collect orphaned containers: %s", self.node_name, exc)

    async def _watch_images(self) -> None:
        """Keep the Node's ``status.images`` current (every ``IMAGES_INTERVAL`` seconds)."""
        reported = None  # what the Node's status was last written with
        while True:
            try:
                self.machine.images = await self.runtime.list_images()
                # (a Node registered while the first list was under way has none yet)
                if self.machine.images != reported and self.heartbeat is not None and \
                        self.heartbeat.node is not None:
                    await self.heartbeat.update_status()
                    reported = self.machine.images
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a missing list is only a missing figure
                log.debug("node images: %s", exc)
            registered = self.heartbeat is None or self.heartbeat.node is not None
            await self.clock.sleep(IMAGES_INTERVAL if registered else 1.0)

    async def _sample_usage(self) -> None:
        """Sample every ``USAGE_INTERVAL`` seconds (kubelet's housekeeping does the same), so
        a request for metrics gets the rate over the last interval."""
        while True:
            try:
                self.resource_usage()
            except Exception:  # noqa: BLE001 - a failed sample is only a missing figure
                log.debug("usage sample failed", exc_info=True)
            await self.clock.sleep(USAGE_INTERVAL)

    def resource_usage(self) -> Obj:
        """This node's and its running containers' CPU (cores) and memory (bytes) now, as the
        API server serves them under ``metrics.k8s.io`` (kubelet's ``/metrics/resource``)."""
        sampler = self._usage
        root = getattr(self.runtime, "cgroup_root", None)
        pods, keys = [], set()
        table = ProcessTable() if self.workers else None
        for worker in list(self.workers.values()):
            containers = []
            window = 0.0
            for rec in (*worker.init, *worker.app):
                handle = worker.handles.get(rec.name)
                if not rec.running or handle is None:
                    continue
                key = f"{worker.uid}/{rec.name}/{handle.pid}"
                keys.add(key)
                cgroup = root / f"jobplane-{worker.uid}-{rec.name}" if root is not None else None
                used = sampler.container(key, handle.pid, cgroup if cgroup is not None and cgroup.is_dir() else None,
                                         table)
                if used is not None:
                    containers.append({"name": rec.name, "cpu": used.cpu_cores, "memory": used.memory_bytes})
                    window = max(window, used.window)
            if containers:
                pods.append({"namespace": worker.namespace, "name": worker.name, "containers": containers,
                             "window": window})
        keys.add("<node>")
        node = sampler.node()
        sampler.forget_except(keys)
        return {"node": {"name": self.node_name, "cpu": node.cpu_cores, "memory": node.memory_bytes,
                         "window": node.window}, "pods": pods}

    def worker_for(self, namespace: str, name: str) -> PodWorker | None:
        for worker in self.workers.values():
            if worker.namespace == namespace and worker.name == name and not worker.deleted:
                return worker
        return None

    async def open_stream(self, kind: str, namespace: str, name: str, opts: rc.StreamOptions) -> rc.Session:
        """``pods/exec`` or ``pods/attach`` for a pod of this node."""
        if kind == "exec":
            return await self.open_exec(namespace, name, opts)
        if kind == "attach":
            worker = self.worker_for(namespace, name)
            if worker is None:
                raise ValueError(f'pod "{name}" is not running on node {self.node_name}')
            target = worker.attach_target(opts.container or worker.app[0].name)
            for attempt in range(ATTACH_ATTEMPTS):
                try:
                    return await AttachSession.connect(target, opts.size)
                except OSError as exc:
                    # the relay binds its socket a moment after the container counts as started
                    if attempt == ATTACH_ATTEMPTS - 1:
                        raise ValueError(f"cannot attach: {exc}") from None
                    await self.clock.sleep(ATTACH_RETRY)
        raise ValueError(f"{kind} is not supported")

    async def open_exec(self, namespace: str, name: str, opts: rc.StreamOptions) -> rc.Session:
        """``pods/exec`` for a pod of this node (ValueError / OSError when it cannot start)."""
        worker = self.worker_for(namespace, name)
        if worker is None:
            raise ValueError(f'pod "{name}" is not running on node {self.node_name}')
        if not opts.command:
            raise ValueError("you must specify at least 1 command")
        container = opts.container or worker.app[0].name
        try:
            spec = worker.exec_spec(container, list(opts.command), opts.tty, opts.stdin, opts.size)
        except ContainerConfigError as exc:
            raise ValueError(exc.message) from None
        return await worker.runtime.exec(worker.handles.get(container), spec)

    def _compact(self, pod: Obj) -> Obj:
        """Informer transform: finished pods without a worker are cached compact (the worker,
        while it lives, builds status from the whole spec)."""
        if (pod.get("metadata") or {}).get("uid") in self.workers:
            return pod
        return compact_terminal_pod(pod)

    async def review_caller(self, token: str) -> bool:
        """Whether a bearer token may use this node's log, exec and stats endpoints: kubelet's
        webhook mode (a TokenReview, then a SubjectAccessReview for ``get nodes/proxy`` on
        this node; the API servers' own identity is in ``system:masters``)."""
        review = await self.client.create("tokenreviews.authentication.k8s.io", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        status = review.get("status") or {}
        user = status.get("user") or {}
        if not status.get("authenticated") or not user.get("username"):
            return False
        access = await self.client.create("subjectaccessreviews.authorization.k8s.io", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
                "user": user["username"], "uid": user.get("uid") or "", "groups": user.get("groups") or [],
                "extra": user.get("extra") or {},
                "resourceAttributes": {"verb": "get", "resource": "nodes", "subresource": "proxy",
                                       "name": self.node_name}}})
        return bool((access.get("status") or {}).get("allowed"))

    async def _serve_logs(self, endpoint: LogEndpoint) -> None:
        """Start the log endpoint before registering, so the Node advertises its port."""
        self.log_server = LogServer(self.pods_dir, endpoint.token, self._get_pod, self.clock,
                                    host=endpoint.host, port=endpoint.port,
                                    names=endpoint.cert_names(self.machine.hostname), open_stream=self.open_stream,
                                    usage=self.resource_usage, review=self.review_caller)
        self.machine.kubelet_port = await self.log_server.start()
        self.machine.internal_ip = endpoint.address
        self.config.pod_ip = endpoint.address  # pods use the node's network: their IP is the node's
        log.info("node %s: serving container logs on %s:%d (advertised as %s)", self.node_name,
                 endpoint.host, self.machine.kubelet_port, endpoint.address)

    async def _get_pod(self, namespace: str, name: str) -> Obj | None:
        try:
            pod = await self.client.get("pods", name, namespace)
        except StatusError as exc:
            if exc.code == 404:
                return None
            raise
        return pod if (pod.get("spec") or {}).get("nodeName") == self.node_name else None

    async def detach(self) -> None:
        """Stop supervising without killing: workers are cancelled, processes keep running."""
        tasks = list(self._tasks.values()) + list(self._background)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------- handlers

    def sync(self, pod: Obj) -> None:
        """Informer handler (sync): start, update or stop the pod's worker."""
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        if (pod.get("spec") or {}).get("nodeName") != self.node_name:
            return
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update_pod(pod)
        if meta.get("deletionTimestamp"):
            if uid not in self._finishing:
                self._finishing.add(uid)
                self._spawn(self._finish_deletion(pod))
            return
        if worker is None and not is_terminal(pod) and uid not in self._completed:
            self._start_worker(pod, fresh=not records_possible(
                uid, self._dirs_at_start, self._completed, self._unreported))

    def on_delete(self, pod: Obj) -> None:
        """The pod object is gone (force deletion, or our own grace-0 delete): kill what is
        left and remove the pod's directory."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        worker = self.workers.get(uid)
        if worker is not None:
            worker.deleted = True
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            worker.stop(30.0 if grace is None else float(grace))
        self._spawn(self._cleanup_after(uid))

    # ------------------------------------------------------------- internals

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _remove_later(self, path: Path, mounts: bool) -> asyncio.Future:
        """Remove a pod's directory with the others of the next batch (a finished worker's
        runtime directory, a deleted pod's directories); the future is done once they are gone."""
        done = self._removals_done
        if not self._removals or done is None:
            done = self._removals_done = asyncio.get_running_loop().create_future()
            self._spawn(self._remove_batch(done))
        self._removals.append((path, mounts))
        if path.parent == self.run_pods_dir:
            self._removing[path.name] = done
        return done

    async def _remove_batch(self, done: asyncio.Future) -> None:
        try:
            await self.clock.sleep(REMOVAL_BATCH)
            batch, self._removals = self._removals, []
            # (not the runtime directory a worker now running for the same pod uses)
            batch = [(path, mounts) for path, mounts in batch
                     if path.parent != self.run_pods_dir or not self._running_worker(path.name)]
            await asyncio.to_thread(remove_pod_trees, batch)
        finally:
            for uid in [uid for uid, fut in self._removing.items() if fut is done]:
                del self._removing[uid]
            if not done.done():
                done.set_result(None)

    def _running_worker(self, uid: str) -> bool:
        worker = self.workers.get(uid)
        return worker is not None and not worker.finished.is_set()

    def _start_worker(self, pod: Obj, fresh: bool = False) -> PodWorker:
        uid = pod["metadata"]["uid"]
        worker = PodWorker(self.client, pod, self.runtime, self.clock, self.config, fresh=fresh)
        self.workers[uid] = worker
        task = asyncio.create_task(self._run_worker(uid, worker), name=f"pod:{pod['metadata'].get('name')}")
        self._tasks[uid] = task
        return worker

    async def _run_worker(self, uid: str, worker: PodWorker) -> None:
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod worker %s/%s crashed", worker.namespace, worker.name)
        finally:
            if worker.terminal_reported:
                self._completed.add(uid)
            else:
                self._unreported.add(uid)
            self._tasks.pop(uid, None)
            # Keep a finished worker's entry only while a deletion may still need it.
            if uid not in self._finishing:
                self.workers.pop(uid, None)

    async def _finish_deletion(self, pod: Obj) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        worker = self.workers.get(uid)
        if worker is None and not is_terminal(pod) and (self.pods_dir / uid / "state.json").exists():
            worker = self._start_worker(pod)  # re-adopt to terminate processes from before a restart
        if worker is not None:
            worker.stop(float(grace))
            await worker.finished.wait()
        self.workers.pop(uid, None)
        pending = self._removing.get(uid)
        if pending is not None:  # finished just before: its volumes go before its object, as kubelet's
            await asyncio.shield(pending)
        delay = 0.5
        while True:
            try:
                await self.client.delete("pods", meta["name"], meta.get("namespace"), grace_period_seconds=0,
                                         preconditions={"uid": uid})
                return
            except StatusError as exc:
                if exc.code in (404, 409) or (exc.code < 500 and exc.code != 429):
                    if exc.code not in (404, 409):
                        log.warning("pod %s/%s: final delete failed: %s", meta.get("namespace"), meta["name"], exc)
                    return
                error: Exception = exc
            except Exception as exc:  # noqa: BLE001 - unreachable server, full store: try again
                error = exc
            log.warning("pod %s/%s: final delete failed: %s; retrying in %gs", meta.get("namespace"),
                        meta["name"], error, delay)
            await self.clock.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _cleanup_after(self, uid: str) -> None:
        task = self._tasks.get(uid)
        worker = self.workers.get(uid)
        if worker is not None:
            await worker.finished.wait()
        elif task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.workers.pop(uid, None)
        self._finishing.discard(uid)
        if self.runtime.runs_images:
            try:
                await self.runtime.pod_done(uid)
            except Exception as exc:  # noqa: BLE001 - orphan collection at the next start catches it
                log.warning("pod %s: cannot remove its containers: %s", uid, exc)
        # Off the event loop, as kubelet removes a pod's directories in its own goroutine: in a
        # 100,000-completion run, once PodGC deletes pods as fast as they finish, this removal
        # was 12 % of the loop's busy samples (bench/RESULTS.md §16d); with the others of the
        # batch (one mount-table read and one rm for all), the runtime directory first.
        try:
            self._remove_later(self.run_pods_dir / uid, True)
            disk = self.pods_dir / uid
            if self.run_pods_dir != self.pods_dir:  # the volumes in memory and the logs on disk
                self._remove_later(disk / "volumes", True)  # (those on disk: emptyDirs)
                try:
                    await self._remove_later(disk / TMP_DIR, False)
                    await self.clock.sleep(DELETED_LOGS_KEEP)
                except asyncio.CancelledError:  # the agent stops: with what is left of its batch
                    self._removals.append((disk, True))
                    raise
            await self._remove_later(disk, True)
        finally:  # only now: until its directory is gone, a worker for this uid would have records to read
            self._completed.discard(uid)
            self._unreported.discard(uid)
            if self._dirs_at_start is not None:
                self._dirs_at_start.discard(uid)

    def collect_orphan_dirs(self) -> None:
        """Remove directories of this node's pods that no longer exist (deleted while the
        agent was down); only directories whose state.json names this node. A runtime directory
        goes too when its pod's directory is gone (the agent died between the two removals) or
        its pod has finished (the agent died before its worker removed it)."""
        pods = self.informer.list()
        live = {(p.get("metadata") or {}).get("uid") for p in pods}
        running = {(p.get("metadata") or {}).get("uid") for p in pods if not is_terminal(p)}
        gone: dict[Path, bool] = {}  # in removal order, each pod's runtime directory first
        for child in self.pods_dir.iterdir() if self.pods_dir.exists() else ():
            if child.name in live or is_spare(child.name):  # (spares: agent/spares.py)
                continue
            try:
                node = json.loads((child / "state.json").read_text()).get("node")
            except (OSError, ValueError):
                continue
            if node == self.node_name:
                gone.update({self.run_pods_dir / child.name: True, child: True})
        if self.run_pods_dir != self.pods_dir:
            for child in self.run_pods_dir.iterdir() if self.run_pods_dir.exists() else ():
                # (a pod's directory on disk is made before its runtime one: none means removed)
                if child.name in live and child.name not in running or \
                        child.name not in live and not (self.pods_dir / child.name).exists():
                    gone[child] = True
        remove_pod_trees(list(gone.items()))


def _remove_now(trees: list[tuple[Path, bool]]) -> None:
    with contextlib.suppress(Exception):
        remove_pod_trees(trees)
    trees.clear()
