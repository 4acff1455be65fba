"""default-scheduler, much reduced: binds pending pods to Ready nodes that fit.

Filters (upstream plugin in brackets): node Ready and lease fresh [TaintToleration on the
not-ready/unreachable taints], ``spec.unschedulable`` [NodeUnschedulable], ``nodeSelector``
and required node affinity [NodeAffinity], taints/tolerations [TaintToleration], cpu /
memory / ``nvidia.com/gpu`` requests and the pod count [NodeResourcesFit]. Score: least
allocated. Per-node usage is kept in memory from the pod informer, including pods this
scheduler has just bound ("assumed") before the informer sees them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import find_condition, key_of, parse_time, rfc3339
from jobplane.api.nodes import LEASE_NAMESPACE
from jobplane.api.pods import is_terminal
from jobplane.api.resources import SCHEDULED_RESOURCES, nonzero_requests, pod_requests, quantity
from jobplane.client.base import Client
from jobplane.client.events import EventRecorder
from jobplane.client.informer import SharedInformerFactory
from jobplane.clock import Clock
from jobplane.controllers.base import run_workers

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)
Obj = dict[str, Any]

SCHEDULER_NAME = "default-scheduler"
NODE_INDEX = "spec.nodeName"
RETRY_UNSCHEDULABLE = 30.0
_RESOLVABLE = ("Insufficient ", "Too many pods")


# ------------------------------------------------------------------ pure filters

def wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and not is_terminal(pod) and not spec.get("schedulingGates")
            and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME)


def lease_fresh(lease: Obj | None, now: float) -> bool:
    """True without a lease (Ready is then the only signal) or when renewed within its duration."""
    if lease is None:
        return True
    spec = lease.get("spec") or {}
    renewed = parse_time(spec.get("renewTime"))
    return renewed is not None and now - renewed <= float(spec.get("leaseDurationSeconds") or 40)


def node_taints(node: Obj, lease: Obj | None, now: float) -> list[Obj]:
    """The node's taints plus the ones the node lifecycle controller would add."""
    taints = list((node.get("spec") or {}).get("taints") or ())
    ready = find_condition(node.get("status"), "Ready")
    if ready is None or ready.get("status") == "Unknown" or not lease_fresh(lease, now):
        taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"})
    elif ready.get("status") != "True":
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
    return taints


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t.get("key") != taint.get("key"):
            continue
        if op == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _match_expression(expr: Obj, labels: dict[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and values:
        try:
            a, b = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def matches_node_selector(pod: Obj, node: Obj) -> bool:
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    name = (node.get("metadata") or {}).get("name", "")
    for term in terms:
        exprs = term.get("matchExpressions") or []
        fields = term.get("matchFields") or []
        if not exprs and not fields:
            continue
        if all(_match_expression(e, labels) for e in exprs) and all(
                _match_expression(f, {"metadata.name": name}) for f in fields):
            return True
    return False


def allocatable(node: Obj) -> dict[str, float]:
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    out = {}
    for name in SCHEDULED_RESOURCES + ("pods",):
        try:
            out[name] = quantity(alloc[name]) if name in alloc else 0.0
        except ValueError:
            out[name] = 0.0
    return out


def filter_node(pod: Obj, requests: dict[str, float], node: Obj, lease: Obj | None, used: dict[str, float],
                now: float) -> list[str]:
    """Upstream's failure reasons for this node; empty when the pod fits."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    if (node.get("spec") or {}).get("unschedulable"):
        unsched = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
        if not tolerates(tolerations, unsched):
            return ["node(s) were unschedulable"]
    if not matches_node_selector(pod, node):
        return ["node(s) didn't match Pod's node affinity/selector"]
    for taint in node_taints(node, lease, now):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return [f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"]
    alloc = allocatable(node)
    reasons = []
    if used.get("pods", 0) + 1 > alloc["pods"]:
        reasons.append("Too many pods")
    for name in SCHEDULED_RESOURCES:
        want = requests.get(name, 0.0)
        if want > 0 and used.get(name, 0.0) + want > alloc[name] + 1e-9:
            reasons.append(f"Insufficient {name}")
    return reasons


def failure_message(total: int, reasons_by_node: dict[str, list[str]]) -> str:
    """``0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable. preemption: ...``"""
    if total == 0:
        return "no nodes available to schedule pods"
    counts = Counter(r for reasons in reasons_by_node.values() for r in reasons)
    text = ", ".join(sorted(f"{n} {r}" for r, n in counts.items()))
    pre: Counter[str] = Counter()
    for reasons in reasons_by_node.values():
        if any(r.startswith(_RESOLVABLE) for r in reasons):
            pre["No preemption victims found for incoming pod"] += 1
        else:
            pre["Preemption is not helpful for scheduling"] += 1
    pre_text = ", ".join(sorted(f"{n} {r}" for r, n in pre.items()))
    return f"0/{total} nodes are available: {text}. preemption: 0/{total} nodes are available: {pre_text}."


def score(requests: dict[str, float], used: dict[str, float], alloc: dict[str, float]) -> float:
    """LeastAllocated over cpu and memory: the free fraction left after placing the pod
    (``requests`` and ``used`` as ``nonzero_requests`` counts them, upstream's NonZeroRequested)."""
    parts = []
    for name in ("cpu", "memory"):
        if alloc.get(name):
            parts.append((alloc[name] - used.get(name, 0.0) - requests.get(name, 0.0)) / alloc[name])
    return sum(parts) / len(parts) if parts else 0.0


# ------------------------------------------------------------------ controller

class Scheduler:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory, recorder: EventRecorder) -> None:
        from jobplane.client.workqueue import WorkQueue

        self.client = client
        self.clock = clock
        self.recorder = recorder
        self.pods = informers.informer("pods")
        self.nodes = informers.informer("nodes")
        self.leases = informers.informer("leases")
        self.claims = informers.informer("persistentvolumeclaims")
        self.queue = WorkQueue(clock, name="scheduler")
        self.pod_usage: dict[str, tuple[str, dict[str, float]]] = {}  # pod key -> (node, requests)
        self.node_usage: dict[str, dict[str, float]] = {}
        # the same, as scoring counts requests (a container without one counts 100m / 200Mi)
        self.pod_nonzero: dict[str, dict[str, float]] = {}
        self.node_nonzero: dict[str, dict[str, float]] = {}
        self.unschedulable: set[str] = set()

    # -- accounting ----------------------------------------------------------------
    def _account(self, pod: Obj) -> None:
        key = key_of(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        self._unaccount(key)
        if node and not is_terminal(pod):
            req = pod_requests(pod)
            self.pod_usage[key] = (node, req)
            usage = self.node_usage.setdefault(node, {})
            for name, v in req.items():
                usage[name] = usage.get(name, 0.0) + v
            usage["pods"] = usage.get("pods", 0.0) + 1
            nz = self.pod_nonzero[key] = nonzero_requests(pod)
            scored = self.node_nonzero.setdefault(node, {})
            for name, v in nz.items():
                scored[name] = scored.get(name, 0.0) + v

    def _unaccount(self, key: str) -> bool:
        prev = self.pod_usage.pop(key, None)
        if prev is None:
            return False
        usage = self.node_usage.get(prev[0], {})
        for name, v in prev[1].items():
            usage[name] = usage.get(name, 0.0) - v
        scored = self.node_nonzero.get(prev[0], {})
        for name, v in self.pod_nonzero.pop(key, {}).items():
            scored[name] = scored.get(name, 0.0) - v
        usage["pods"] = usage.get("pods", 0.0) - 1
        return True

    # -- handlers ------------------------------------------------------------------
    def on_pod(self, pod: Obj) -> None:
        key = key_of(pod)
        had = key in self.pod_usage
        if (pod.get("spec") or {}).get("nodeName"):
            self._account(pod)
            if had and key not in self.pod_usage:  # a bound pod finished: room on its node
                self.requeue_unschedulable()
        if wants_scheduling(pod):
            self.queue.add(key)

    def on_pod_delete(self, pod: Obj) -> None:
        key = key_of(pod)
        self.unschedulable.discard(key)
        if self._unaccount(key):
            self.requeue_unschedulable()

    def requeue_unschedulable(self, *_: Any) -> None:
        for key in list(self.unschedulable):
            self.queue.add(key)

    # -- scheduling ----------------------------------------------------------------
    async def run(self) -> None:
        self.pods.add_handler(on_add=self.on_pod, on_update=lambda _o, n: self.on_pod(n),
                              on_delete=self.on_pod_delete)
        self.nodes.add_handler(on_add=self.requeue_unschedulable,
                               on_update=lambda _o, _n: self.requeue_unschedulable(),
                               on_delete=self.requeue_unschedulable)
        if self.claims is not None:
            self.claims.add_handler(on_add=self.requeue_unschedulable,
                                    on_update=lambda _o, _n: self.requeue_unschedulable())
            await self.claims.start()
        await asyncio.gather(self.nodes.start(), self.leases.start())
        await self.pods.start()
        await run_workers(self.queue, self._reconcile, workers=1, name="scheduler")

    async def _reconcile(self, key: str) -> None:
        await self.schedule_one(key)

    def _lease(self, node_name: str) -> Obj | None:
        return self.leases.get(LEASE_NAMESPACE, node_name)

    def choose(self, pod: Obj) -> tuple[str | None, dict[str, list[str]], int]:
        """(best node or None, reasons per rejected node, number of nodes considered)."""
        requests = pod_requests(pod)
        scored = nonzero_requests(pod)
        now = self.clock.now()
        best: tuple[float, str] | None = None
        reasons: dict[str, list[str]] = {}
        nodes = self.nodes.list()
        for node in nodes:
            name = node["metadata"]["name"]
            used = self.node_usage.get(name, {})
            why = filter_node(pod, requests, node, self._lease(name), used, now)
            if why:
                reasons[name] = why
                continue
            s = score(scored, self.node_nonzero.get(name, {}), allocatable(node))
            if best is None or s > best[0] or (s == best[0] and name < best[1]):
                best = (s, name)
        return (best[1] if best else None), reasons, len(nodes)

    async def schedule_one(self, key: str) -> None:
        pod = self.pods.get_key(key)
        if pod is None or not wants_scheduling(pod) or key in self.pod_usage:
            self.unschedulable.discard(key)
            return
        ns, name = pod["metadata"].get("namespace"), pod["metadata"]["name"]
        missing = self._claim_problem(pod)
        if missing:
            total = len(self.nodes.list())
            await self._unschedulable(pod, f"0/{total} nodes are available: {missing}. preemption: 0/{total} nodes "
                                           f"are available: {total} Preemption is not helpful for scheduling.")
            return
        node, reasons, total = self.choose(pod)
        if node is None:
            await self._unschedulable(pod, failure_message(total, reasons))
            return
        bound = dict(pod, spec=dict(pod.get("spec") or {}, nodeName=node))
        self._account(bound)  # assume, so the next pod sees the room taken
        self.unschedulable.discard(key)
        try:
            # pods/binding: nodeName and PodScheduled=True in one write, as kube-scheduler
            await self.client.bind(name, node, ns)
        except StatusError as exc:
            self._unaccount(key)
            if exc.code in (404, 409):  # gone, being deleted or bound by someone else
                return
            raise
        log.debug("bound %s to %s", key, node)
        self.recorder.event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}")

    def _claim_problem(self, pod: Obj) -> str:
        """The VolumeBinding plugin's PreFilter: every claim the pod names must exist and not
        be going away."""
        if self.claims is None:
            return ""
        ns = pod["metadata"].get("namespace")
        for vol in (pod.get("spec") or {}).get("volumes") or ():
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            obj = self.claims.get(ns, claim)
            if obj is None:
                return f'persistentvolumeclaim "{claim}" not found'
            if obj["metadata"].get("deletionTimestamp"):
                return f'persistentvolumeclaim "{claim}" is being deleted'
        return ""

    async def _unschedulable(self, pod: Obj, message: str) -> None:
        key = key_of(pod)
        self.unschedulable.add(key)
        self.queue.add_after(key, RETRY_UNSCHEDULABLE)
        prev = find_condition(pod.get("status"), "PodScheduled")
        self.recorder.event(pod, "Warning", "FailedScheduling", message)
        if prev and prev.get("status") == "False" and prev.get("message") == message:
            return
        cond = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                "lastTransitionTime": rfc3339(self.clock.now()), "reason": "Unschedulable", "message": message}
        meta = pod["metadata"]
        try:
            await self.client.patch("pods", meta["name"], {"status": {"conditions": [cond]}},
                                    meta.get("namespace"), subresource="status")
        except StatusError as exc:
            if exc.code != 404:
                raise


async def run(ctx: ControllerContext) -> None:
    """Controller entry point (``controllers.manager``)."""
    recorder = EventRecorder(ctx.client, SCHEDULER_NAME, ctx.clock)
    await Scheduler(ctx.client, ctx.clock, ctx.informers, recorder).run()

