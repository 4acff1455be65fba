"""EndpointSlice controller (``pkg/controller/endpointslice`` with the reconciler of
``staging/src/k8s.io/endpointslice``): for every Service with a selector, slices listing
the pods it selects, kept current as pods and the Service change.

As upstream: terminal pods are left out, terminating pods stay with ``terminating: true``
(``ready`` false, ``serving`` from the Ready condition), unready pods have ``ready`` and
``serving`` false; named target ports are resolved per pod (pods resolving to different
ports land in different slices); ``hostname`` is set when the pod's subdomain names the
Service; at most 100 endpoints per slice; a Service selecting nothing gets one empty
placeholder slice. Pods use their node's network, so an endpoint's address is its node's
``InternalIP`` (the pod IP when the node reports none).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.pods import is_terminal
from jobplane.api.selectors import from_label_selector_dict
from jobplane.client.base import Client
from jobplane.client.informer import SharedInformerFactory
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.base import run_workers

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
HEADLESS = "service.kubernetes.io/headless"
MAX_PER_SLICE = 100


# ---------------------------------------------------------------- pure decisions


def in_endpoints(pod: Obj) -> bool:
    """``ShouldPodBeInEndpoints(pod, includeTerminating=true)``."""
    if is_terminal(pod):
        return False
    status = pod.get("status") or {}
    return bool(status.get("podIP") or status.get("podIPs"))


def pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def _container_port(pod: Obj, name: str, protocol: str) -> int | None:
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("name") == name and (p.get("protocol") or "TCP") == protocol:
                port = p.get("containerPort")
                return int(port) if port is not None else None
    return None


def pod_ports(svc: Obj, pod: Obj) -> tuple[tuple[str, int, str, str | None], ...]:
    """(name, port, protocol, appProtocol) per Service port as this pod resolves it
    (``findPort``); a named target the pod lacks leaves that port out."""
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or ():
        protocol = sp.get("protocol") or "TCP"
        target = sp.get("targetPort", sp.get("port"))
        number = _container_port(pod, target, protocol) if isinstance(target, str) else target
        if number is None:
            continue
        out.append((sp.get("name") or "", int(number), protocol, sp.get("appProtocol")))
    return tuple(out)


def endpoint(svc: Obj, pod: Obj, address: str) -> Obj:
    """``podToEndpoint``."""
    md, spec = pod["metadata"], pod.get("spec") or {}
    serving = pod_ready(pod)
    terminating = bool(md.get("deletionTimestamp"))
    ready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses")) or (serving and not terminating)
    ep: Obj = {"addresses": [address], "conditions": {"ready": ready, "serving": serving,
                                                      "terminating": terminating},
               "targetRef": {"kind": "Pod", "namespace": md.get("namespace"), "name": md["name"], "uid": md.get("uid")}}
    if spec.get("nodeName"):
        ep["nodeName"] = spec["nodeName"]
    svc_md = svc["metadata"]
    if spec.get("hostname") and spec.get("subdomain") == svc_md["name"] and md.get("namespace") == svc_md.get("namespace"):
        ep["hostname"] = spec["hostname"]
    return ep


def _slice_ports(ports: tuple[tuple[str, int, str, str | None], ...]) -> list[Obj]:
    out = []
    for name, number, protocol, app in ports:
        port: Obj = {"name": name, "port": number, "protocol": protocol}
        if app:
            port["appProtocol"] = app
        out.append(port)
    return out


def desired_slices(svc: Obj, pods: list[Obj], address_of: Any) -> list[tuple[list[Obj], list[Obj]]]:
    """(ports, endpoints) of each slice the Service should have, in a stable order."""
    groups: dict[tuple[tuple[str, int, str, str | None], ...], list[Obj]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if not in_endpoints(pod):
            continue
        groups.setdefault(pod_ports(svc, pod), []).append(endpoint(svc, pod, address_of(pod)))
    if not groups:
        return [([], [])]
    out = []
    for ports, eps in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        for i in range(0, len(eps), MAX_PER_SLICE):
            out.append((_slice_ports(ports), eps[i:i + MAX_PER_SLICE]))
    return out


def slice_labels(svc: Obj) -> dict[str, str]:
    labels = {k: v for k, v in (svc["metadata"].get("labels") or {}).items() if k != MANAGED_BY}
    labels[SERVICE_NAME] = svc["metadata"]["name"]
    labels[MANAGED_BY] = CONTROLLER
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS] = ""
    return labels


# ---------------------------------------------------------------- controller


class EndpointSliceController:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory) -> None:
        self.client = client
        self.services = informers.informer("services")
        self.pods = informers.informer("pods")
        self.slices = informers.informer("endpointslices")
        self.nodes = informers.informer("nodes")
        self.queue = WorkQueue(clock, name="endpointslice")
        self.slices.add_index("service", lambda s: [f"{s['metadata'].get('namespace')}/"
                                                    f"{(s['metadata'].get('labels') or {}).get(SERVICE_NAME, '')}"]
                              if (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER else [])
        self.services.add_handler(on_add=self._svc, on_update=lambda old, new: self._svc(new), on_delete=self._svc)
        self.pods.add_handler(on_add=self._pod, on_update=self._pod_update, on_delete=self._pod)
        self.slices.add_handler(on_add=self._slice, on_update=lambda old, new: self._slice(new),
                                on_delete=self._slice)

    def _svc(self, svc: Obj) -> None:
        self.queue.add(f"{svc['metadata'].get('namespace')}/{svc['metadata']['name']}")

    def _slice(self, eps: Obj) -> None:
        labels = eps["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY) == CONTROLLER and labels.get(SERVICE_NAME):
            self.queue.add(f"{eps['metadata'].get('namespace')}/{labels[SERVICE_NAME]}")

    def _pod(self, pod: Obj, old: Obj | None = None) -> None:
        ns = pod["metadata"].get("namespace")
        label_sets = [pod["metadata"].get("labels") or {}]
        if old is not None:
            label_sets.append(old["metadata"].get("labels") or {})
        for svc in self.services.list(ns):
            selector = (svc.get("spec") or {}).get("selector")
            if selector and any(all(labels.get(k) == v for k, v in selector.items()) for labels in label_sets):
                self._svc(svc)

    def _pod_update(self, old: Obj, new: Obj) -> None:
        self._pod(new, old)

    def _address(self, pod: Obj) -> str:
        node = self.nodes.get(None, (pod.get("spec") or {}).get("nodeName") or "")
        for addr in ((node or {}).get("status") or {}).get("addresses") or ():
            if addr.get("type") == "InternalIP" and addr.get("address"):
                return str(addr["address"])
        return str((pod.get("status") or {}).get("podIP") or "127.0.0.1")

    async def reconcile(self, key: str) -> None:
        svc = self.services.get_key(key)
        if svc is None or (svc.get("spec") or {}).get("type") == "ExternalName" \
                or not (svc.get("spec") or {}).get("selector") or svc["metadata"].get("deletionTimestamp"):
            return  # the garbage collector removes slices of a deleted Service (ownerReferences)
        ns = svc["metadata"].get("namespace")
        selector = from_label_selector_dict({"matchLabels": svc["spec"]["selector"]})
        pods = [p for p in self.pods.list(ns) if selector.matches(p["metadata"].get("labels") or {})]
        wanted = desired_slices(svc, pods, self._address)
        existing = sorted(self.slices.by_index("service", key), key=lambda s: s["metadata"]["name"])
        labels = slice_labels(svc)
        owner = {"apiVersion": "v1", "kind": "Service", "name": svc["metadata"]["name"],
                 "uid": svc["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        for i, (ports, endpoints) in enumerate(wanted):
            if i < len(existing):
                current = existing[i]
                if current.get("ports", []) == ports and current.get("endpoints", []) == endpoints \
                        and current["metadata"].get("labels") == labels:
                    continue
                body = dict(current, ports=ports, endpoints=endpoints,
                            metadata=dict(current["metadata"], labels=labels))
                await self._write(self.client.update("endpointslices", body, ns))
            else:
                body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"generateName": f"{svc['metadata']['name']}-", "namespace": ns,
                                     "labels": labels, "ownerReferences": [owner]},
                        "addressType": "IPv4", "endpoints": endpoints, "ports": ports}
                await self._write(self.client.create("endpointslices", body, ns))
        for extra in existing[len(wanted):]:
            await self._write(self.client.delete("endpointslices", extra["metadata"]["name"], ns))
        log.debug("service %s: %d endpoint slice(s)", key, len(wanted))

    @staticmethod
    async def _write(call: Any) -> None:
        try:
            await call
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def run(self, workers: int = 1) -> None:
        for informer in (self.nodes, self.services, self.pods, self.slices):
            await informer.start()
        await run_workers(self.queue, self.reconcile, workers, "endpointslice")


async def run(ctx: ControllerContext) -> None:
    await EndpointSliceController(ctx.client, ctx.clock, ctx.informers).run()
