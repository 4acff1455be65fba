"""Pods: one home for what several layers ask of a pod — its phase and whether it is
terminal, its QoS class, and the pure steps of the ``pods/binding`` and ``pods/eviction``
subresources (the service does the I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobplane.api import errors, meta
from jobplane.api.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]

PENDING, RUNNING, SUCCEEDED, FAILED, UNKNOWN = "Pending", "Running", "Succeeded", "Failed", "Unknown"
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED})
QOS_RESOURCES = ("cpu", "memory")


def phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_terminal(pod: Mapping[str, Any]) -> bool:
    """Succeeded or Failed (upstream ``isPodTerminated`` / ``IsPodPhaseTerminal``)."""
    return phase(pod) in TERMINAL_PHASES


def qos_class(pod: Mapping[str, Any]) -> str:
    """Upstream's ``ComputePodQOS`` over cpu and memory: BestEffort, Guaranteed or Burstable.

    Requests and limits are summed over app and init containers (zero or unparsable amounts
    do not count); a container's unset request is its limit, as API defaulting makes it, so
    the answer is the same before and after defaulting. Guaranteed needs cpu and memory
    limits on every container and summed requests equal to summed limits."""
    spec = pod.get("spec") or {}
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for c in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        limits_found = set()
        for name in QOS_RESOURCES:
            req_amount = _positive(req.get(name, lim.get(name)))
            if req_amount is not None:
                requests[name] = requests.get(name, 0) + req_amount
            lim_amount = _positive(lim.get(name))
            if lim_amount is not None:
                limits[name] = limits.get(name, 0) + lim_amount
                limits_found.add(name)
        if len(limits_found) < len(QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests == limits:
        return "Guaranteed"
    return "Burstable"


def _positive(value: Any) -> Any:
    """The quantity when it parses and is above zero, else None."""
    if value is None:
        return None
    try:
        amount = parse_quantity(value)
    except (QuantityError, TypeError):
        return None
    return amount if amount > 0 else None


def binding_target(name: str, body: Obj) -> str:
    """The node a ``v1.Binding`` body names, after upstream's checks (400 / 422)."""
    md = body.get("metadata") or {}
    if md.get("name") != name:
        raise errors.bad_request("name in URL does not match name in Binding object")
    target = body.get("target") or {}
    errs = []
    if target.get("kind") not in (None, "", "Node"):
        errs.append(errors.not_supported("target.kind", target.get("kind"), ["Node", "<empty>"]))
    if not target.get("name"):
        errs.append(errors.required("target.name"))
    if errs:
        raise errors.invalid_object("Binding", "", name, errs)
    return str(target["name"])


def bound_pod(pod: Obj, node: str, now: str) -> Obj:
    """``pod`` bound to ``node`` (a new dict; ``pod`` is not changed), or 409 as upstream's
    ``setPodHostAndAnnotations``. PodScheduled becomes True (``UpdatePodCondition``: the
    transition time is kept when the status was already True)."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    name = md.get("name", "")
    if md.get("deletionTimestamp"):
        detail = f"pod {name} is being deleted, cannot be assigned to a host"
    elif spec.get("nodeName"):
        detail = f"pod {name} is already assigned to node {errors.go_quote(spec['nodeName'])}"
    elif spec.get("schedulingGates"):
        detail = f"pod {name} has non-empty .spec.schedulingGates"
    else:
        detail = ""
    if detail:
        raise errors.conflict("pods/binding", "", name, detail)
    status = dict(pod.get("status") or {})
    conditions = list(status.get("conditions") or ())
    prev = meta.find_condition(status, "PodScheduled")
    cond = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
            "lastTransitionTime": prev.get("lastTransitionTime") if prev and prev.get("status") == "True" else now}
    if prev is None:
        conditions.append(cond)
    else:
        conditions[conditions.index(prev)] = cond
    status["conditions"] = conditions
    return dict(pod, spec=dict(spec, nodeName=node), status=status)


EVICTION_API_VERSIONS = ("policy/v1", "policy/v1beta1")  # upstream's EvictionREST accepts both


def eviction_delete_options(name: str, body: Obj) -> Obj:
    """The DeleteOptions a ``policy/v1`` (or ``v1beta1``) Eviction body carries, after
    upstream's checks (400 on a foreign apiVersion/kind or a name that is not the URL's)."""
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if api_version and api_version not in EVICTION_API_VERSIONS:
        raise errors.bad_request(f"the API version in the data ({api_version}) does not match "
                                 "the expected API version (policy/v1)")
    if kind and kind != "Eviction":
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind (Eviction)")
    if (body.get("metadata") or {}).get("name") != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    opts = body.get("deleteOptions") or {}
    if not isinstance(opts, dict):
        raise errors.bad_request("deleteOptions must be an object")
    return opts


def disruption_target_pod(pod: Obj, now: str) -> Obj:
    """``pod`` with ``DisruptionTarget=True`` (reason ``EvictionByEvictionAPI``), as upstream's
    eviction ``conditionAppender`` via ``UpdatePodCondition``: the transition time is kept when
    the condition already had status True. A new dict; ``pod`` is not changed."""
    status = dict(pod.get("status") or {})
    conditions = list(status.get("conditions") or ())
    prev = meta.find_condition(status, "DisruptionTarget")
    cond = {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
            "lastTransitionTime": prev.get("lastTransitionTime") if prev and prev.get("status") == "True" else now,
            "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}
    if prev is None:
        conditions.append(cond)
    else:
        conditions[conditions.index(prev)] = cond
    status["conditions"] = conditions
    return dict(pod, status=status)
