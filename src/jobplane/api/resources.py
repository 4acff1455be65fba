"""Pod resource arithmetic shared by the agent (limits, QoS class) and the scheduler (requests).

Pure functions over pod dicts. Quantities become floats: cpu in cores, memory in bytes,
extended resources (``nvidia.com/gpu``) in units.
"""

from __future__ import annotations

from typing import Any

from jobplane.api.quantity import parse_quantity

Obj = dict[str, Any]

GPU = "nvidia.com/gpu"
SCHEDULED_RESOURCES = ("cpu", "memory", GPU)


def quantity(value: Any) -> float:
    """A Kubernetes quantity (``"500m"``, ``"1Gi"``, ``2``) as a float; ValueError if malformed."""
    return float(parse_quantity(value if isinstance(value, int | float) else str(value).strip()))


def _amount(resources: Obj | None, section: str, name: str) -> float | None:
    raw = ((resources or {}).get(section) or {}).get(name)
    if raw is None:
        return None
    try:
        return quantity(raw)
    except ValueError:
        return None


def container_request(container: Obj, name: str) -> float:
    """A container's request (its limit when only a limit is set, as API defaulting does)."""
    res = container.get("resources") or {}
    req = _amount(res, "requests", name)
    if req is None:
        req = _amount(res, "limits", name)
    return req or 0.0


# schedutil.DefaultMilliCPURequest / DefaultMemoryRequest: what a container without a request
# counts as when nodes are scored, so that BestEffort pods spread instead of piling up.
NONZERO_DEFAULTS = {"cpu": 0.1, "memory": 200.0 * 1024 * 1024}


def nonzero_requests(pod: Obj) -> dict[str, float]:
    """``GetNonzeroRequests`` over the pod (cpu, memory), as the scoring plugins count it."""
    spec = pod.get("spec") or {}

    def one(c: Obj, name: str) -> float:
        return container_request(c, name) or NONZERO_DEFAULTS[name]

    out: dict[str, float] = {}
    for name in NONZERO_DEFAULTS:
        app = sum(one(c, name) for c in spec.get("containers") or ())
        init = max((one(c, name) for c in spec.get("initContainers") or ()), default=0.0)
        out[name] = max(app, init) + (_amount({"o": spec.get("overhead") or {}}, "o", name) or 0.0)
    return out


def container_limit(container: Obj, name: str) -> float | None:
    return _amount(container.get("resources"), "limits", name)


def pod_requests(pod: Obj, names: tuple[str, ...] = SCHEDULED_RESOURCES) -> dict[str, float]:
    """Effective pod requests: max(sum over app containers, max over init containers), plus overhead."""
    spec = pod.get("spec") or {}
    out: dict[str, float] = {}
    for name in names:
        app = sum(container_request(c, name) for c in spec.get("containers") or ())
        init = max((container_request(c, name) for c in spec.get("initContainers") or ()), default=0.0)
        overhead = _amount({"o": spec.get("overhead") or {}}, "o", name) or 0.0
        out[name] = max(app, init) + overhead
    return out

