"""Discovery documents built once from ``api.registry``: aggregated
(``apidiscovery.k8s.io/v2``) when the client asks for it, legacy otherwise.

Shapes follow kubectl-wire.md §1.2 and the captured ``aggregated_*.json`` /
``legacy_*.json``; resources are sorted by name as upstream does.
"""

from __future__ import annotations

from typing import Any

import orjson

from jobplane.api import registry
from jobplane.api.registry import ResourceInfo

_SUB_VERBS = {"status": ["get", "patch", "update"], "log": ["get"], "binding": ["create"], "eviction": ["create"],
              "token": ["create"], "exec": ["create", "get"], "attach": ["create", "get"],
              "portforward": ["create", "get"], "ephemeralcontainers": ["get", "patch", "update"]}
# subresources whose kind is not the parent's
_SUB_KINDS = {"binding": "Binding", "eviction": "Eviction", "token": "TokenRequest", "exec": "PodExecOptions",
              "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions"}
# subresources whose kind lives in another group/version (upstream's GroupVersionKindProvider)
_SUB_GROUP_VERSIONS = {"eviction": ("policy", "v1"), "token": ("authentication.k8s.io", "v1")}


def _sorted(resources: list[ResourceInfo]) -> list[ResourceInfo]:
    return sorted(resources, key=lambda r: r.plural)


def _sub_kind(parent: dict[str, str], sub: str) -> dict[str, str]:
    group, version = _SUB_GROUP_VERSIONS.get(sub, (parent["group"], parent["version"]))
    return {"group": group, "version": version, "kind": _SUB_KINDS.get(sub, parent["kind"])}


def _aggregated_resource(r: ResourceInfo) -> dict[str, Any]:
    kind = {"group": "", "version": "", "kind": r.kind}
    out: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": kind,
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    subs = [s for s in sorted(r.subresources) if not r.read_only]
    if subs:
        out["subresources"] = [{"subresource": s, "responseKind": _sub_kind(kind, s), "verbs": _SUB_VERBS.get(s, ["get"])}
                               for s in subs]
    return out


def _aggregated_group(name: str, version: str, resources: list[ResourceInfo]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": None},
        "versions": [{"version": version, "resources": [_aggregated_resource(r) for r in _sorted(resources)],
                      "freshness": "Current"}],
    }


def aggregated_api() -> dict[str, Any]:
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": [_aggregated_group("", "v1", registry.for_group_version("", "v1"))]}


def aggregated_apis() -> dict[str, Any]:
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": [_aggregated_group(g, v, registry.for_group_version(g, v)) for g, v in registry.groups()]}


def legacy_api(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_entry(group: str, version: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [gv], "preferredVersion": dict(gv)}


def legacy_apis() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_entry(g, v) for g, v in registry.groups()]}


def legacy_group(group: str) -> dict[str, Any] | None:
    for g, v in registry.groups():
        if g == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(g, v)}
    return None


def legacy_resource_list(group: str, version: str) -> dict[str, Any] | None:
    resources = registry.for_group_version(group, version)
    if not resources:
        return None
    entries: list[dict[str, Any]] = []
    for r in _sorted(resources):
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        if not r.read_only:
            for s in sorted(r.subresources):
                sub: dict[str, Any] = {"name": f"{r.plural}/{s}", "singularName": "", "namespaced": r.namespaced}
                if s in _SUB_GROUP_VERSIONS:
                    sub["group"], sub["version"] = _SUB_GROUP_VERSIONS[s]
                sub.update(kind=_SUB_KINDS.get(s, r.kind), verbs=_SUB_VERBS.get(s, ["get"]))
                entries.append(sub)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}


class DiscoveryBodies:
    """Every discovery answer, serialised once: ``body(path, aggregated)`` -> bytes or None."""

    def __init__(self, server_address: str = "127.0.0.1:6443") -> None:
        self.aggregated = {"/api": orjson.dumps(aggregated_api()), "/apis": orjson.dumps(aggregated_apis())}
        legacy: dict[str, bytes] = {"/api": orjson.dumps(legacy_api(server_address)),
                                    "/apis": orjson.dumps(legacy_apis()),
                                    "/api/v1": orjson.dumps(legacy_resource_list("", "v1"))}
        for g, v in registry.groups():
            legacy[f"/apis/{g}"] = orjson.dumps(legacy_group(g))
            legacy[f"/apis/{g}/{v}"] = orjson.dumps(legacy_resource_list(g, v))
        self.legacy = legacy

    def body(self, path: str, aggregated: bool) -> tuple[bytes, bool] | None:
        """(body, is_aggregated) for a discovery path, or None when it is not one."""
        if aggregated and path in self.aggregated:
            return self.aggregated[path], True
        found = self.legacy.get(path)
        return (found, False) if found is not None else None
