"""The shipped upstream OpenAPI v3 documents: raw bytes (served verbatim) and a compiled,
cached view of each kind's schema (allowed fields, patch merge keys and strategies).

Everything is loaded lazily on first use and cached for the life of the process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson

# Served path (as in ``/openapi/v3/<path>``) -> file name under ``jobplane/data/openapi``.
# Exact copies of upstream release-1.32 ``api/openapi-spec/v3`` (see data/openapi/README.md).
_FILES = {
    "api/v1": "api__v1_openapi.json",
    "apis/batch/v1": "apis__batch__v1_openapi.json",
    "apis/discovery.k8s.io/v1": "apis__discovery.k8s.io__v1_openapi.json",
    "apis/storage.k8s.io/v1": "apis__storage.k8s.io__v1_openapi.json",
    "apis/node.k8s.io/v1": "apis__node.k8s.io__v1_openapi.json",
    "apis/certificates.k8s.io/v1": "apis__certificates.k8s.io__v1_openapi.json",
    # Built from upstream's schemas of these groups (same shapes, shorter descriptions).
    "apis/rbac.authorization.k8s.io/v1": "apis__rbac.authorization.k8s.io__v1_openapi.json",
    "apis/authorization.k8s.io/v1": "apis__authorization.k8s.io__v1_openapi.json",
    "apis/authentication.k8s.io/v1": "apis__authentication.k8s.io__v1_openapi.json",
    # The service-account issuer's discovery endpoints (apiserver/oidc.py): no schemas; listed
    # because kube-apiserver's index names every go-restful web service by its root path.
    ".well-known/openid-configuration": ".well-known__openid-configuration_openapi.json",
    "openid/v1/jwks": "openid__v1__jwks_openapi.json",
}

_REF_PREFIX = "#/components/schemas/"

# Node kinds.
OBJECT = "object"  # fixed properties
MAP = "map"  # additionalProperties: any key, values described by ``items``
ARRAY = "array"  # items described by ``items``
LEAF = "leaf"  # scalar, IntOrString, Quantity
ANY = "any"  # anything goes (preserve-unknown-fields, FieldsV1, RawExtension)


@dataclass(eq=False)
class Node:
    """One compiled schema node. ``merge_key``/``strategies`` come from the property
    that holds the node (``x-kubernetes-patch-merge-key`` / ``-strategy``)."""

    kind: str
    properties: dict[str, Node] = field(default_factory=dict)
    items: Node | None = None
    merge_key: str = ""
    strategies: frozenset[str] = frozenset()
    # Server-side apply: x-kubernetes-list-type / -list-map-keys of the holding property,
    # x-kubernetes-map-type: atomic of the type, and a scalar's default (list-map keys).
    list_type: str = ""
    map_keys: tuple[str, ...] = ()
    atomic: bool = False
    default: Any = None


ANY_NODE = Node(ANY)
LEAF_NODE = Node(LEAF)


@functools.cache
def documents() -> dict[str, bytes]:
    """``{"api/v1": bytes, "apis/batch/v1": bytes, ...}``: the documents byte for byte."""
    base = resources.files("jobplane") / "data" / "openapi"
    return {path: (base / name).read_bytes() for path, name in _FILES.items()}


@functools.cache
def _schemas() -> dict[str, dict[str, Any]]:
    """All component schemas of all documents (shared definitions are identical)."""
    merged: dict[str, dict[str, Any]] = {}
    for raw in documents().values():
        merged.update(orjson.loads(raw)["components"].get("schemas") or {})
    return merged


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in _schemas().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            index.setdefault((gvk.get("group", ""), gvk["version"], gvk["kind"]), name)
    return index


def schema_name(group: str, version: str, kind: str) -> str | None:
    """Component name (``io.k8s.api.batch.v1.Job``) for a group/version/kind, if shipped."""
    return _gvk_index().get((group, version, kind))


def raw_schema(name: str) -> dict[str, Any] | None:
    return _schemas().get(name)


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` and flatten ``allOf``; the holder's own keys (description,
    ``x-kubernetes-*``) win over the referenced schema's."""
    if "$ref" not in schema and "allOf" not in schema:
        return schema
    out: dict[str, Any] = {}
    if "$ref" in schema:
        out.update(resolve(_schemas()[schema["$ref"][len(_REF_PREFIX):]]))
    for part in schema.get("allOf") or ():
        out.update(resolve(part))
    out.update({k: v for k, v in schema.items() if k not in ("$ref", "allOf")})
    return out


_named: dict[str, Node] = {}


def ref_name(schema: dict[str, Any]) -> str | None:
    """The component a schema refers to (``$ref``, or an ``allOf`` of one ``$ref``), if any."""
    if "$ref" in schema:
        return str(schema["$ref"])[len(_REF_PREFIX):]
    parts: list[dict[str, Any]] = schema.get("allOf") or []
    if len(parts) == 1 and "$ref" in parts[0]:
        return str(parts[0]["$ref"])[len(_REF_PREFIX):]
    return None


def _compile_named(name: str) -> Node:
    node = _named.get(name)
    if node is None:
        node = Node(ANY)
        _named[name] = node  # placed before filling, so cycles terminate
        _fill(node, _schemas()[name])
    return node


def _compile(schema: dict[str, Any]) -> Node:
    """Compile a property schema; patch extensions stay on the returned node."""
    merge_key = schema.get("x-kubernetes-patch-merge-key", "")
    strategy = schema.get("x-kubernetes-patch-strategy", "")
    strategies = frozenset(s for s in strategy.split(",") if s)
    list_type = schema.get("x-kubernetes-list-type", "")
    map_keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
    atomic = schema.get("x-kubernetes-map-type") == "atomic"
    name = ref_name(schema)
    if name is not None:
        target = _compile_named(name)
        if not merge_key and not strategies and not list_type and not atomic:
            return target
        return Node(target.kind, target.properties, target.items, merge_key, strategies, list_type,
                    map_keys, atomic or target.atomic, target.default)
    node = Node(ANY, merge_key=merge_key, strategies=strategies, list_type=list_type, map_keys=map_keys,
                atomic=atomic, default=schema.get("default"))
    _fill(node, resolve(schema))
    return node


def _fill(node: Node, schema: dict[str, Any]) -> None:
    if schema.get("x-kubernetes-map-type") == "atomic":
        node.atomic = True
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        node.kind = ANY
        return
    kind = schema.get("type")
    if kind == "array":
        node.kind = ARRAY
        node.items = _compile(schema.get("items") or {}) if schema.get("items") else ANY_NODE
    elif kind == "object" or "properties" in schema:
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props:
            node.kind = OBJECT
            node.properties = {k: _compile(v) for k, v in props.items()}
        elif isinstance(extra, dict):
            node.kind = MAP
            node.items = _compile(extra)
        else:
            node.kind = ANY  # FieldsV1, RawExtension, additionalProperties: true
    elif kind is None and ("oneOf" in schema or "anyOf" in schema):
        node.kind = LEAF  # IntOrString, Quantity
    elif kind is None:
        node.kind = ANY
    else:
        node.kind = LEAF


@functools.cache
def node_for(group: str, version: str, kind: str) -> Node | None:
    """The compiled tree for a kind, or None when no shipped document describes it."""
    name = schema_name(group, version, kind)
    return _compile_named(name) if name else None


@functools.cache
def object_meta_node() -> Node:
    return _compile_named("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")


@functools.cache
def generic_object_node() -> Node:
    """For kinds without a document: known ObjectMeta, anything else free-form."""
    props = {"apiVersion": LEAF_NODE, "kind": LEAF_NODE, "metadata": object_meta_node()}
    return Node(OBJECT, props)
