"""Node lifecycle controller, much reduced.

* A node whose Lease has not been renewed for ``grace`` (40 s, upstream's
  node-monitor-grace-period) gets every condition set to ``Unknown`` with reason
  ``NodeStatusUnknown`` ("Kubelet stopped posting node status.").
* Once a node has been not Ready for ``pod_grace`` (5 min), its non-terminal pods are
  marked Failed with reason ``NodeLost`` (so Jobs replace them), and its pods already being
  deleted are removed with grace 0, since no agent is left to finish them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import find_condition, parse_time, rfc3339
from jobplane.api.nodes import LEASE_NAMESPACE
from jobplane.api.pods import is_terminal
from jobplane.client.base import Client
from jobplane.client.informer import SharedInformerFactory
from jobplane.clock import Clock

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)
Obj = dict[str, Any]

MONITOR_PERIOD = 5.0
NODE_GRACE = 40.0
POD_GRACE = 300.0


def lease_age(lease: Obj | None, node: Obj, now: float) -> float:
    """Seconds since the node last showed life (lease renewal, else Ready heartbeat, else creation)."""
    stamp = None
    if lease is not None:
        stamp = parse_time((lease.get("spec") or {}).get("renewTime"))
    if stamp is None:
        ready = find_condition(node.get("status"), "Ready") or {}
        stamp = parse_time(ready.get("lastHeartbeatTime")) or parse_time(
            (node.get("metadata") or {}).get("creationTimestamp"))
    return now - stamp if stamp is not None else 0.0


def unknown_conditions(node: Obj, now: str) -> list[Obj]:
    out = []
    for c in (node.get("status") or {}).get("conditions") or ():
        c = dict(c)
        if c.get("status") != "Unknown":
            c.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                     lastTransitionTime=now)
        out.append(c)
    if not any(c.get("type") == "Ready" for c in out):
        out.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.", "lastTransitionTime": now,
                    "lastHeartbeatTime": None})
    return out


class NodeLifecycle:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory, *, grace: float = NODE_GRACE,
                 pod_grace: float = POD_GRACE) -> None:
        self.client = client
        self.clock = clock
        self.nodes = informers.informer("nodes")
        self.leases = informers.informer("leases")
        self.pods = informers.informer("pods")
        self.grace = grace
        self.pod_grace = pod_grace

    async def start(self) -> None:
        self.pods.add_index("spec.nodeName", lambda p: [(p.get("spec") or {}).get("nodeName") or ""])
        for inf in (self.nodes, self.leases, self.pods):
            await inf.start()

    async def monitor_once(self) -> None:
        now = self.clock.now()
        for node in list(self.nodes.list()):
            name = node["metadata"]["name"]
            try:
                await self._monitor_node(node, self.leases.get(LEASE_NAMESPACE, name), now)
            except StatusError as exc:
                log.debug("node %s: %s", name, exc)

    async def _monitor_node(self, node: Obj, lease: Obj | None, now: float) -> None:
        name = node["metadata"]["name"]
        ready = find_condition(node.get("status"), "Ready")
        if lease_age(lease, node, now) > self.grace:
            if ready is None or ready.get("status") != "Unknown":
                log.info("node %s: lease expired, marking Ready Unknown", name)
                await self.client.patch("nodes", name, {"status": {"conditions": unknown_conditions(
                    node, rfc3339(now))}}, subresource="status")
                return
        if ready is None or ready.get("status") == "True":
            return
        since = parse_time(ready.get("lastTransitionTime")) or now
        if now - since < self.pod_grace:
            return
        for pod in self.pods.by_index("spec.nodeName", name):
            await self._lose_pod(pod, name)

    async def _lose_pod(self, pod: Obj, node_name: str) -> None:
        meta = pod["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        if meta.get("deletionTimestamp"):
            await self.client.delete("pods", name, ns, grace_period_seconds=0)
            return
        if is_terminal(pod):
            return
        log.info("pod %s/%s: node %s lost, marking Failed", ns, name, node_name)
        await self.client.patch("pods", name, {"status": {
            "phase": "Failed", "reason": "NodeLost",
            "message": f"Node {node_name} which was running pod {name} is unresponsive"}}, ns,
            subresource="status")

    async def run(self) -> None:
        await self.start()
        while True:
            await self.monitor_once()
            await self.clock.sleep(MONITOR_PERIOD)


async def run(ctx: ControllerContext) -> None:
    """Controller entry point (``controllers.manager``)."""
    await NodeLifecycle(ctx.client, ctx.clock, ctx.informers).run()
