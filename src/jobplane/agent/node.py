"""Node registration and heartbeat: the Node object (capacity from this machine) and its
Lease in ``kube-node-lease``, renewed every 10 s as kubelet does."""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import condition_true, rfc3339, rfc3339_micro
from jobplane.api.nodes import LEASE_DURATION_SECONDS, LEASE_NAMESPACE
from jobplane.api.resources import GPU
from jobplane.client.base import Client
from jobplane.clock import Clock

log = logging.getLogger(__name__)
Obj = dict[str, Any]

RENEW_INTERVAL = 10.0
STATUS_REPORT_INTERVAL = 60.0
KUBELET_VERSION = "v1.32.0"
# How this node isolates pods: "bubblewrap", or "none: <why>" when pods run unsandboxed.
SANDBOX_ANNOTATION = "jobplane.dev/pod-sandbox"
MAX_PODS = 110

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


@dataclass
class MachineInfo:
    cpus: int
    memory_bytes: int
    gpus: int
    hostname: str
    kernel: str
    os_image: str
    arch: str
    machine_id: str = ""
    boot_id: str = ""
    # Advertised in status.addresses / status.daemonEndpoints: where the agent serves
    # container logs (port 0: it serves none; the embedded agent's server reads the files).
    internal_ip: str = "127.0.0.1"
    kubelet_port: int = 0
    annotations: dict[str, str] = field(default_factory=dict)
    # status.nodeInfo.containerRuntimeVersion (the runtime's) and status.images (an image runtime's)
    runtime_version: str = "jobplane://0.1.0"
    images: list[Obj] = field(default_factory=list)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def machine_info(gpus: int = 0) -> MachineInfo:
    mem = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    os_image = "Linux"
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.split("=", 1)[1].strip('"')
    return MachineInfo(
        cpus=os.cpu_count() or 1, memory_bytes=mem, gpus=gpus, hostname=platform.node() or "localhost",
        kernel=platform.release(), os_image=os_image, arch=_ARCH.get(platform.machine(), platform.machine()),
        machine_id=_read("/etc/machine-id"), boot_id=_read("/proc/sys/kernel/random/boot_id"),
    )


def node_conditions(now: str, previous: list[Obj] | None = None) -> list[Obj]:
    """kubelet's four conditions, all healthy; transition times kept while unchanged."""
    prev = {c.get("type"): c for c in previous or ()}
    specs = (
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    )
    out = []
    for ctype, status, reason, message in specs:
        p = prev.get(ctype)
        since = p["lastTransitionTime"] if p and p.get("status") == status and p.get("lastTransitionTime") else now
        out.append({"type": ctype, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": since,
                    "reason": reason, "message": message})
    return out


def node_status(info: MachineInfo, now: str, previous: list[Obj] | None = None) -> Obj:
    capacity = {"cpu": str(info.cpus), "memory": f"{info.memory_bytes // 1024}Ki", "pods": str(MAX_PODS)}
    if info.gpus:
        capacity[GPU] = str(info.gpus)
    status: Obj = {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": node_conditions(now, previous),
        "addresses": [{"type": "InternalIP", "address": info.internal_ip},
                      {"type": "Hostname", "address": info.hostname}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": info.kubelet_port}},
        "nodeInfo": {
            "machineID": info.machine_id, "systemUUID": info.machine_id, "bootID": info.boot_id,
            "kernelVersion": info.kernel, "osImage": info.os_image,
            "containerRuntimeVersion": info.runtime_version, "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": info.arch,
        },
    }
    if info.images:
        status["images"] = info.images
    return status


def build_node(name: str, info: MachineInfo, now: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "annotations": dict(info.annotations), "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": info.arch,
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": info.arch,
        }},
        "spec": {},
        "status": node_status(info, now),
    }


def build_lease(node: Obj, now_micro: str) -> Obj:
    meta = node["metadata"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": meta["name"], "namespace": LEASE_NAMESPACE, "ownerReferences": [
            {"apiVersion": "v1", "kind": "Node", "name": meta["name"], "uid": meta.get("uid", "")}]},
        "spec": {"holderIdentity": meta["name"], "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                 "renewTime": now_micro},
    }


class NodeHeartbeat:
    """Registers the Node, then renews its Lease and re-asserts Ready."""

    def __init__(self, client: Client, name: str, clock: Clock, info: MachineInfo) -> None:
        self.client = client
        self.name = name
        self.clock = clock
        self.info = info
        self.node: Obj | None = None
        self._last_status_report = 0.0

    async def register(self) -> Obj:
        now = rfc3339(self.clock.now())
        try:
            self.node = await self.client.create("nodes", build_node(self.name, self.info, now))
        except StatusError as exc:
            if exc.code != 409:
                raise
            if self.info.annotations:
                await self.client.patch("nodes", self.name, {"metadata": {"annotations": self.info.annotations}})
            await self.update_status()
        self._last_status_report = self.clock.now()
        assert self.node is not None
        return self.node

    async def update_status(self) -> None:
        current = await self.client.get("nodes", self.name)
        previous = (current.get("status") or {}).get("conditions")
        status = node_status(self.info, rfc3339(self.clock.now()), previous)
        self.node = await self.client.patch("nodes", self.name, {"status": status}, subresource="status")
        self._last_status_report = self.clock.now()

    async def renew_lease(self) -> None:
        now = rfc3339_micro(self.clock.now())
        try:
            lease = await self.client.get("leases", self.name, LEASE_NAMESPACE)
        except StatusError as exc:
            if exc.code != 404:
                raise
            assert self.node is not None
            await self.client.create("leases", build_lease(self.node, now), LEASE_NAMESPACE)
            return
        lease.setdefault("spec", {}).update(holderIdentity=self.name, leaseDurationSeconds=LEASE_DURATION_SECONDS,
                                            renewTime=now)
        await self.client.update("leases", lease, LEASE_NAMESPACE)

    async def beat(self) -> None:
        """One heartbeat: lease renewal, plus a node status write when the node is not Ready
        (the lifecycle controller marked it Unknown) or the last one is old."""
        await self.renew_lease()
        stale = self.clock.now() - self._last_status_report >= STATUS_REPORT_INTERVAL
        node = await self.client.get("nodes", self.name)
        if stale or not condition_true(node.get("status"), "Ready"):
            await self.update_status()

    async def run(self) -> None:
        """Register (retrying until the server answers), then beat every 10 s until cancelled."""
        while True:
            try:
                await self.register()
                break
            except (StatusError, OSError) as exc:
                log.warning("node %s: registration failed: %s", self.name, exc)
                await self.clock.sleep(RENEW_INTERVAL / 5)
        while True:
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep beating through transient server errors
                log.warning("node %s: heartbeat failed: %s", self.name, exc)
            await self.clock.sleep(RENEW_INTERVAL)
