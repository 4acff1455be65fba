"""Service and EndpointSlice: upstream's defaulting (``SetDefaults_Service``), the REST
strategy's status reset and allocated-value carry-over, and validation
(``ValidateService``, ``ValidateEndpointSlice``). Cluster IPs are allocated by the API
service (it needs the store); here they are only checked for shape."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from jobplane.api.errors import FieldError, duplicate, forbidden, invalid, not_supported, required, too_many
from jobplane.api.validation.metadata import (
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from jobplane.api.validation.names import (
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_port_name,
)

Obj = dict[str, Any]

SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
AFFINITIES = ["ClientIP", "None"]
ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]
PORT_RANGE = "must be between 1 and 65535, inclusive"
DEFAULT_AFFINITY_TIMEOUT = 10800  # 3 hours, as upstream
NODEPORT_REFUSED = ("jobplane does not open node ports (there is no kube-proxy); use type ClusterIP: pods "
                    "use their node's network, so a container port is reached at its node's address")


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def needs_cluster_ip(spec: Mapping[str, Any]) -> bool:
    """Whether the allocator should give this Service an address (not headless, not ExternalName)."""
    return spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None"


def default_service(svc: Obj) -> None:
    spec = _spec(svc)
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "ClientIP":
        cfg = spec.setdefault("sessionAffinityConfig", {}) or {}
        spec["sessionAffinityConfig"] = cfg
        client = cfg.setdefault("clientIP", {}) or {}
        cfg["clientIP"] = client
        if not client.get("timeoutSeconds"):
            client["timeoutSeconds"] = DEFAULT_AFFINITY_TIMEOUT
    for port in spec.get("ports") or ():
        if not isinstance(port, dict):
            continue
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if spec["type"] != "ExternalName" and not spec.get("internalTrafficPolicy"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] in ("NodePort", "LoadBalancer") and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True


def service_prepare_for_create(svc: Obj) -> None:
    svc["status"] = {"loadBalancer": {}}


def service_prepare_for_update(new: Obj, old: Mapping[str, Any]) -> None:
    """Status is the controllers'; allocated addresses the client left out are kept
    (``patchAllocatedValues``), so a PUT without ``clusterIP`` does not try to change it."""
    new["status"] = old.get("status", {"loadBalancer": {}})
    spec, old_spec = _spec(new), old.get("spec") or {}
    if needs_cluster_ip(spec) and needs_cluster_ip(old_spec):
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = old_spec["clusterIPs"]
        for key in ("ipFamilies", "ipFamilyPolicy"):
            if not spec.get(key) and old_spec.get(key):
                spec[key] = old_spec[key]


def _port_number(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return [invalid(path, value, PORT_RANGE)]
    return []


def _service_ports(spec: Mapping[str, Any], headless: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    ports = spec.get("ports") or []
    if not ports and not headless and spec.get("type") != "ExternalName":
        errs.append(required("spec.ports"))
    names: set[str] = set()
    keys: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        port = port if isinstance(port, dict) else {}
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            errs.append(required(path + ".name"))
        elif name:
            errs.extend(invalid(path + ".name", name, m) for m in is_dns1123_label(name))
            if name in names:
                errs.append(duplicate(path + ".name", name))
            names.add(name)
        errs.extend(_port_number(port.get("port"), path + ".port"))
        protocol = port.get("protocol") or ""
        if not protocol:
            errs.append(required(path + ".protocol"))
        elif protocol not in PROTOCOLS:
            errs.append(not_supported(path + ".protocol", protocol, PROTOCOLS))
        target = port.get("targetPort")
        if isinstance(target, str):
            errs.extend(invalid(path + ".targetPort", target, m) for m in is_valid_port_name(target))
        elif target is not None:
            errs.extend(_port_number(target, path + ".targetPort"))
        if port.get("nodePort"):
            errs.append(forbidden(path + ".nodePort", "may not be used when `type` is 'ClusterIP'"))
        key = (port.get("port"), protocol)
        if key in keys:
            errs.append(duplicate(path, f"{key[0]}/{key[1]}"))
        keys.add(key)
    return errs


def validate_service(svc: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(svc.get("metadata") or {}, True, lambda n: tuple(is_dns1035_label(n)))
    spec = svc.get("spec") or {}
    kind = spec.get("type") or ""
    if kind not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", kind, SERVICE_TYPES))
    elif kind == "NodePort":
        errs.append(forbidden("spec.type", NODEPORT_REFUSED))
    cluster_ip = spec.get("clusterIP") or ""
    headless = cluster_ip == "None"
    if kind == "ExternalName":
        name = spec.get("externalName") or ""
        if not name:
            errs.append(required("spec.externalName"))
        else:
            errs.extend(invalid("spec.externalName", name, m) for m in is_dns1123_subdomain(name.rstrip(".")))
        if cluster_ip:
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
    elif cluster_ip and not headless:
        try:
            ipaddress.ip_address(cluster_ip)
        except ValueError:
            errs.append(invalid("spec.clusterIPs[0]", cluster_ip,
                                "must be empty, 'None', or a valid IP address"))
    ips = spec.get("clusterIPs") or []
    if ips and cluster_ip and ips[0] != cluster_ip:
        errs.append(invalid("spec.clusterIPs", ips, "must match `clusterIP` when set"))
    errs.extend(_service_ports(spec, headless))
    affinity = spec.get("sessionAffinity") or ""
    if affinity not in AFFINITIES:
        errs.append(not_supported("spec.sessionAffinity", affinity, AFFINITIES))
    errs.extend(validate_labels(spec.get("selector"), "spec.selector"))
    return errs


def validate_service_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if needs_cluster_ip(old_spec) and needs_cluster_ip(spec) and old_spec.get("clusterIP") \
            and spec.get("clusterIP") != old_spec.get("clusterIP"):
        errs.append(invalid("spec.clusterIPs[0]", spec.get("clusterIP") or "", "may not change once set"))
    if old_spec.get("clusterIP") == "None" and spec.get("clusterIP") != "None" and needs_cluster_ip(spec):
        errs.append(invalid("spec.clusterIPs[0]", spec.get("clusterIP") or "", "may not change once set"))
    errs.extend(validate_service(new))
    return errs


# ---------------------------------------------------------------- EndpointSlice


def _address_errors(address: str, address_type: str, path: str) -> list[FieldError]:
    if address_type in ("IPv4", "IPv6"):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            ip = None
        want = 4 if address_type == "IPv4" else 6
        if ip is None or ip.version != want:
            return [invalid(path, address, f"must be a valid {address_type} address")]
    elif address_type == "FQDN":
        return [invalid(path, address, m) for m in is_dns1123_subdomain(address)]
    return []


def validate_endpointslice(eps: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(eps.get("metadata") or {}, True, is_dns1123_subdomain)
    address_type = eps.get("addressType") or ""
    if not address_type:
        errs.append(required("addressType"))
    elif address_type not in ADDRESS_TYPES:
        errs.append(not_supported("addressType", address_type, ADDRESS_TYPES))
    endpoints = eps.get("endpoints") or []
    if len(endpoints) > 1000:
        errs.append(too_many("endpoints", len(endpoints), 1000))
    for i, ep in enumerate(endpoints):
        path = f"endpoints[{i}]"
        ep = ep if isinstance(ep, dict) else {}
        addresses = ep.get("addresses") or []
        if not addresses:
            errs.append(required(path + ".addresses", "must contain at least 1 address"))
        elif len(addresses) > 100:
            errs.append(too_many(path + ".addresses", len(addresses), 100))
        for j, address in enumerate(addresses):
            errs.extend(_address_errors(str(address), address_type, f"{path}.addresses[{j}]"))
        if ep.get("hostname"):
            errs.extend(invalid(path + ".hostname", ep["hostname"], m) for m in is_dns1123_label(ep["hostname"]))
        if ep.get("nodeName"):
            errs.extend(invalid(path + ".nodeName", ep["nodeName"], m)
                        for m in is_dns1123_subdomain(ep["nodeName"]))
    names: set[str] = set()
    for i, port in enumerate(eps.get("ports") or []):
        path = f"ports[{i}]"
        port = port if isinstance(port, dict) else {}
        name = port.get("name") or ""
        if name:
            errs.extend(invalid(path + ".name", name, m) for m in is_dns1123_label(name))
        if name in names:
            errs.append(duplicate(path + ".name", name))
        names.add(name)
        protocol = port.get("protocol")
        if protocol is not None and protocol not in PROTOCOLS:
            errs.append(not_supported(path + ".protocol", protocol, PROTOCOLS))
        if port.get("port") is not None:
            errs.extend(_port_number(port["port"], path + ".port"))
    return errs


def default_endpointslice(eps: Obj) -> None:
    for port in eps.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("name", "")


def validate_endpointslice_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    if new.get("addressType") != old.get("addressType"):
        errs.append(invalid("addressType", new.get("addressType") or "", "field is immutable"))
    errs.extend(validate_endpointslice(new))
    return errs


def service_warnings(spec: Mapping[str, Any]) -> list[str]:
    """Fields jobplane accepts but does not act on (it has no kube-proxy and no cloud
    provider), each said once per write as a ``Warning`` header."""
    warnings = []
    kind = spec.get("type")
    if kind == "ClusterIP" and spec.get("clusterIP") != "None":
        warnings.append("spec.clusterIP: the cluster IP is allocated but not routed (jobplane has no "
                        "kube-proxy); reach the Service's endpoints at their nodes' addresses")
    if kind == "LoadBalancer":
        warnings.append("spec.type: LoadBalancer is served like ClusterIP: jobplane provisions no load "
                        "balancer and allocates no node ports (EXTERNAL-IP stays <pending>)")
    if spec.get("sessionAffinity") == "ClientIP":
        warnings.append("spec.sessionAffinity: ClientIP is not acted on (jobplane does not proxy Service traffic)")
    if spec.get("externalIPs"):
        warnings.append("spec.externalIPs: not acted on (jobplane does not proxy Service traffic)")
    for key in ("externalTrafficPolicy", "internalTrafficPolicy"):
        if spec.get(key) == "Local":
            warnings.append(f"spec.{key}: Local is not acted on (jobplane does not proxy Service traffic)")
    return warnings
