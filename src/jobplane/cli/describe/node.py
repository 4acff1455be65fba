"""``kubectl describe node`` (describe.go NodeDescriber), with the resource quantity
arithmetic behind its "Allocated resources" table.
"""

from __future__ import annotations

from typing import Any

from jobplane.api.printers import since
from jobplane.api.quantity import BINARY_SUFFIXES
from jobplane.api.resources import quantity
from jobplane.cli.describe.common import (
    PrefixWriter,
    annotations_multiline,
    describe_events,
    go_bool,
    labels_multiline,
    rfc1123z,
)

Obj = dict[str, Any]


def parse_quantity(value: Any) -> float:
    """A resource.Quantity as a number; 0 for what does not parse (describe prints, never fails)."""
    try:
        return quantity(value)
    except ValueError:
        return 0.0


def format_quantity(resource: str, amount: float) -> str:
    """Canonical-looking text for a summed quantity: millicores for cpu, binary units for bytes."""
    if amount == 0:
        return "0"
    if resource == "cpu":
        milli = round(amount * 1000)
        return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
    whole = int(amount)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if whole % BINARY_SUFFIXES[suffix] == 0:
            return f"{whole // BINARY_SUFFIXES[suffix]}{suffix}"
    return str(whole)


def _pod_totals(pod: Obj) -> tuple[dict[str, float], dict[str, float]]:
    """``PodRequestsAndLimits``: sum of containers, at least the largest init container."""
    reqs: dict[str, float] = {}
    lims: dict[str, float] = {}
    spec = pod.get("spec") or {}
    for c in spec.get("containers") or ():
        res = c.get("resources") or {}
        for key, target in (("requests", reqs), ("limits", lims)):
            for name, q in (res.get(key) or {}).items():
                target[name] = target.get(name, 0.0) + parse_quantity(q)
    for c in spec.get("initContainers") or ():
        res = c.get("resources") or {}
        for key, target in (("requests", reqs), ("limits", lims)):
            for name, q in (res.get(key) or {}).items():
                target[name] = max(target.get(name, 0.0), parse_quantity(q))
    return reqs, lims


def _fraction(amount: float, total: float) -> int:
    return int(amount / total * 100) if total else 0


def describe_node(node: Obj, events: list[Obj] | None, now: float, lease: Obj | None = None,
                  pods: list[Obj] | None = None) -> str:
    from jobplane.api.printers import node_roles

    w = PrefixWriter()
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    roles = ",".join(node_roles(meta.get("labels")))
    w.write(0, f"Roles:\t{roles or '<none>'}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    taints = spec.get("taints") or []
    w.write(0, "Taints:\t" + ("<none>\n" if not taints else ""))
    for i, t in enumerate(taints):
        if i:
            w.write(0, "\t")
        text = t.get("key", "") + (f"={t['value']}" if t.get("value") else "") + f":{t.get('effect', '')}"
        w.write(0, text + "\n")
    w.write(0, f"Unschedulable:\t{go_bool(spec.get('unschedulable'))}\n")
    if lease is not None:
        lspec = lease.get("spec") or {}
        w.write(0, "Lease:\n")
        w.write(1, f"HolderIdentity:\t{lspec.get('holderIdentity') or '<unset>'}\n")
        for key, title in (("acquireTime", "AcquireTime"), ("renewTime", "RenewTime")):
            w.write(1, f"{title}:\t{rfc1123z(lspec[key]) if lspec.get(key) else '<unset>'}\n")
    conds = status.get("conditions") or []
    if conds:
        w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in conds:
            w.write(1, f"{c.get('type')} \t{c.get('status')} \t{rfc1123z(c.get('lastHeartbeatTime'))} \t"
                       f"{rfc1123z(c.get('lastTransitionTime'))} \t{c.get('reason', '')} \t"
                       f"{c.get('message', '')}\n")
    w.write(0, "Addresses:\n")
    for a in status.get("addresses") or ():
        w.write(1, f"{a.get('type')}:\t{a.get('address')}\n")
    for key, title in (("capacity", "Capacity"), ("allocatable", "Allocatable")):
        if status.get(key):
            w.write(0, f"{title}:\n")
            for rname in sorted(status[key]):
                w.write(1, f"{rname}:\t{status[key][rname]}\n")
    info = status.get("nodeInfo") or {}
    w.write(0, "System Info:\n")
    for key, title in (("machineID", "Machine ID"), ("systemUUID", "System UUID"), ("bootID", "Boot ID"),
                       ("kernelVersion", "Kernel Version"), ("osImage", "OS Image"),
                       ("operatingSystem", "Operating System"), ("architecture", "Architecture"),
                       ("containerRuntimeVersion", "Container Runtime Version"),
                       ("kubeletVersion", "Kubelet Version"), ("kubeProxyVersion", "Kube-Proxy Version")):
        w.write(1, f"{title}:\t{info.get(key, '')}\n")
    if spec.get("podCIDR"):
        w.write(0, f"PodCIDR:\t{spec['podCIDR']}\n")
    if pods is not None:
        _describe_node_resources(w, status, pods, now)
    if events is not None:
        describe_events(w, events, now)
    return w.render()


def _describe_node_resources(w: PrefixWriter, status: Obj, pods: list[Obj], now: float) -> None:
    alloc_src = status.get("allocatable") or status.get("capacity") or {}
    alloc = {k: parse_quantity(v) for k, v in alloc_src.items()}
    w.write(0, f"Non-terminated Pods:\t({len(pods)} in total)\n")
    w.write(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
    w.write(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
    total_req: dict[str, float] = {}
    total_lim: dict[str, float] = {}
    for pod in pods:
        reqs, lims = _pod_totals(pod)
        for src, dst in ((reqs, total_req), (lims, total_lim)):
            for k, v in src.items():
                dst[k] = dst.get(k, 0.0) + v
        cells = []
        for name in ("cpu", "memory"):
            for src in (reqs, lims):
                amount = src.get(name, 0.0)
                cells.append(f"{format_quantity(name, amount)} ({_fraction(amount, alloc.get(name, 0.0))}%)")
        pmeta = pod.get("metadata") or {}
        w.write(1, f"{pmeta.get('namespace', '')}\t{pmeta.get('name', '')}\t\t" + "\t".join(cells) +
                f"\t{since(pmeta.get('creationTimestamp'), now)}\n")
    w.write(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n")
    w.write(1, "Resource\tRequests\tLimits\n")
    w.write(1, "--------\t--------\t------\n")
    for name in ("cpu", "memory", "ephemeral-storage"):
        req, lim = total_req.get(name, 0.0), total_lim.get(name, 0.0)
        w.write(1, f"{name}\t{format_quantity(name, req)} ({_fraction(req, alloc.get(name, 0.0))}%)\t"
                   f"{format_quantity(name, lim)} ({_fraction(lim, alloc.get(name, 0.0))}%)\n")
