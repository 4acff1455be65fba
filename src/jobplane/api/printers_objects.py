"""Table columns and rows for ConfigMap, Secret, ServiceAccount, Service, EndpointSlice,
PersistentVolumeClaim, PersistentVolume and StorageClass (upstream's
``pkg/printers/internalversion/printers.go``; the server always fills the wide cells).

Column descriptions are upstream's ``SwaggerDoc`` texts, which are the field descriptions
of the shipped OpenAPI documents: read from there once, on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from jobplane.api import openapi
from jobplane.api.validation.storage import is_default_class

Obj = dict[str, Any]
Row = list[Any]

_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))


def _doc(schema: str, *path: str) -> str:
    node = openapi.raw_schema(schema) or {}
    for name in path:
        node = openapi.resolve((node.get("properties") or {}).get(name) or {})
    return node.get("description") or ""


def _col(name: str, description: str, *, type_: str = "string", fmt: str = "", priority: int = 0) -> Obj:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_CORE = "io.k8s.api.core.v1."


def _name() -> Obj:
    return _col("Name", _doc(_META, "name"), fmt="name")


def _age() -> Obj:
    return _col("Age", _doc(_META, "creationTimestamp"))


@functools.cache
def columns(kind: str) -> list[Obj]:
    svc = _CORE + "ServiceSpec"
    pv, pvs = _CORE + "PersistentVolumeSpec", _CORE + "PersistentVolumeStatus"
    pvc, pvcs = _CORE + "PersistentVolumeClaimSpec", _CORE + "PersistentVolumeClaimStatus"
    eps, sc = "io.k8s.api.discovery.v1.EndpointSlice", "io.k8s.api.storage.v1.StorageClass"
    table: dict[str, list[Obj]] = {
        "ConfigMap": [_name(), _col("Data", _doc(_CORE + "ConfigMap", "data")), _age()],
        "Secret": [_name(), _col("Type", _doc(_CORE + "Secret", "type")),
                   _col("Data", _doc(_CORE + "Secret", "data")), _age()],
        "ServiceAccount": [_name(), _col("Secrets", _doc(_CORE + "ServiceAccount", "secrets")), _age()],
        "Service": [_name(), _col("Type", _doc(svc, "type")), _col("Cluster-IP", _doc(svc, "clusterIP")),
                    _col("External-IP", _doc(svc, "externalIPs")), _col("Port(s)", _doc(svc, "ports")), _age(),
                    _col("Selector", _doc(svc, "selector"), priority=1)],
        "EndpointSlice": [_name(), _col("AddressType", _doc(eps, "addressType")), _col("Ports", _doc(eps, "ports")),
                          _col("Endpoints", _doc(eps, "endpoints")), _age()],
        "PersistentVolumeClaim": [
            _name(), _col("Status", _doc(pvcs, "phase")), _col("Volume", _doc(pvc, "volumeName")),
            _col("Capacity", _doc(pvcs, "capacity")), _col("Access Modes", _doc(pvcs, "accessModes")),
            _col("StorageClass", "StorageClass of the pvc"),
            _col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"), _age(),
            _col("VolumeMode", _doc(pvc, "volumeMode"), priority=1)],
        "PersistentVolume": [
            _name(), _col("Capacity", _doc(pv, "capacity")), _col("Access Modes", _doc(pv, "accessModes")),
            _col("Reclaim Policy", _doc(pv, "persistentVolumeReclaimPolicy")), _col("Status", _doc(pvs, "phase")),
            _col("Claim", _doc(pv, "claimRef")), _col("StorageClass", "StorageClass of the pv"),
            _col("VolumeAttributesClass", "VolumeAttributesClass of the pv"), _col("Reason", _doc(pvs, "reason")),
            _age(), _col("VolumeMode", _doc(pv, "volumeMode"), priority=1)],
        "StorageClass": [_name(), _col("Provisioner", _doc(sc, "provisioner")),
                         _col("ReclaimPolicy", _doc(sc, "reclaimPolicy")),
                         _col("VolumeBindingMode", _doc(sc, "volumeBindingMode")),
                         _col("AllowVolumeExpansion", _doc(sc, "allowVolumeExpansion")), _age()],
        "RuntimeClass": [_name(), _col("Handler", _doc("io.k8s.api.node.v1.RuntimeClass", "handler")), _age()],
    }
    return table[kind]


# --------------------------------------------------------------------------- helpers


def format_labels(labels: Any) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs, ``<none>`` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def access_modes(modes: Any) -> str:
    """``GetAccessModesAsString``: RWO, ROX, RWX, RWOP in that order, each once."""
    modes = modes or ()
    return ",".join(short for mode, short in _MODES if mode in modes)


def _list_with_more(items: list[str], count: int, limit: int = 3) -> str:
    text = ",".join(items[:limit])
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


def service_ports(ports: Any) -> str:
    pieces = []
    for p in ports or ():
        text = f"{p.get('port')}/{p.get('protocol') or ''}"
        if p.get("nodePort"):
            text = f"{p.get('port')}:{p['nodePort']}/{p.get('protocol') or ''}"
        pieces.append(text)
    return ",".join(pieces) or "<none>"


def _external_ip(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    kind = spec.get("type")
    external = spec.get("externalIPs") or []
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
        return ",".join(lb + list(external)) or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


def _storage(values: Any) -> str:
    return str((values or {}).get("storage") or "0")


# --------------------------------------------------------------------------- rows


def configmap_row(obj: Obj, since: Callable[[Any], str]) -> Row:
    return [obj["metadata"].get("name", ""), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}),
            since(obj["metadata"].get("creationTimestamp"))]


def secret_row(obj: Obj, since: Callable[[Any], str]) -> Row:
    return [obj["metadata"].get("name", ""), obj.get("type") or "", len(obj.get("data") or {}),
            since(obj["metadata"].get("creationTimestamp"))]


def serviceaccount_row(obj: Obj, since: Callable[[Any], str]) -> Row:
    return [obj["metadata"].get("name", ""), len(obj.get("secrets") or ()),
            since(obj["metadata"].get("creationTimestamp"))]


def service_row(obj: Obj, since: Callable[[Any], str]) -> Row:
    spec = obj.get("spec") or {}
    ips = spec.get("clusterIPs") or []
    return [obj["metadata"].get("name", ""), spec.get("type") or "", ips[0] if ips else "<none>",
            _external_ip(obj), service_ports(spec.get("ports")), since(obj["metadata"].get("creationTimestamp")),
            format_labels(spec.get("selector"))]


def endpointslice_row(obj: Obj, since: Callable[[Any], str]) -> Row:
    ports = []
    for p in obj.get("ports") or ():
        if p.get("port") is not None:
            ports.append(str(p["port"]))
        else:
            ports.append(p["name"] if p.get("name") is not None else "*")
    addresses = [a for ep in obj.get("endpoints") or () for a in ep.get("addresses") or ()]
    return [obj["metadata"].get("name", ""), obj.get("addressType") or "", _list_with_more(ports, len(ports)),
            _list_with_more(addresses, len(addresses)), since(obj["metadata"].get("creationTimestamp"))]


def pvc_row(obj: Obj, since: Callable[[Any], str]) -> Row:
    md, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    phase = "Terminating" if md.get("deletionTimestamp") else status.get("phase") or ""
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes(status.get("accessModes"))
        capacity = _storage(status.get("capacity"))
    return [md.get("name", ""), phase, spec.get("volumeName") or "", capacity, modes,
            spec.get("storageClassName") or "", spec.get("volumeAttributesClassName") or "<unset>",
            since(md.get("creationTimestamp")), spec.get("volumeMode") or "<unset>"]


def pv_row(obj: Obj, since: Callable[[Any], str]) -> Row:
    md, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("claimRef")
    claim = f"{ref.get('namespace') or ''}/{ref.get('name') or ''}" if ref else ""
    phase = "Terminating" if md.get("deletionTimestamp") else status.get("phase") or ""
    return [md.get("name", ""), _storage(spec.get("capacity")), access_modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy") or "", phase, claim, spec.get("storageClassName") or "",
            spec.get("volumeAttributesClassName") or "<unset>", status.get("reason") or "",
            since(md.get("creationTimestamp")), spec.get("volumeMode") or "<unset>"]


def storageclass_row(obj: Obj, since: Callable[[Any], str]) -> Row:
    name = obj["metadata"].get("name", "")
    if is_default_class(obj):
        name += " (default)"
    return [name, obj.get("provisioner") or "", obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate", bool(obj.get("allowVolumeExpansion")),
            since(obj["metadata"].get("creationTimestamp"))]


def runtimeclass_row(obj: Obj, since: Callable[[Any], str]) -> Row:
    return [obj["metadata"].get("name", ""), obj.get("handler") or "", since(obj["metadata"].get("creationTimestamp"))]


ROWS: dict[str, Callable[[Obj, Callable[[Any], str]], Row]] = {
    "ConfigMap": configmap_row,
    "Secret": secret_row,
    "ServiceAccount": serviceaccount_row,
    "Service": service_row,
    "EndpointSlice": endpointslice_row,
    "PersistentVolumeClaim": pvc_row,
    "PersistentVolume": pv_row,
    "StorageClass": storageclass_row,
    "RuntimeClass": runtimeclass_row,
}
