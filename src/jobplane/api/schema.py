"""Structural schema checks against the shipped upstream OpenAPI v3 documents."""

from __future__ import annotations

from typing import Any

from jobplane.api import openapi
from jobplane.api.registry import ResourceInfo


def prune_unknown_fields(info: ResourceInfo, obj: dict[str, Any]) -> list[str]:
    """Remove fields the kind's schema does not know; return their dotted paths
    (``spec.bogusField``, ``spec.template.spec.containers[0].foo``) in document order."""
    node = openapi.node_for(info.group, info.version, info.kind)
    if node is None or not isinstance(obj, dict):
        return []
    found: list[str] = []
    _prune_object(node, obj, "", found)
    return found


def _prune(node: openapi.Node, value: Any, path: str, found: list[str]) -> None:
    kind = node.kind
    if kind == openapi.OBJECT:
        if isinstance(value, dict):
            _prune_object(node, value, path, found)
    elif kind == openapi.ARRAY:
        if isinstance(value, list) and node.items is not None and node.items.kind in _NESTED:
            for i, item in enumerate(value):
                _prune(node.items, item, f"{path}[{i}]", found)
    elif kind == openapi.MAP:
        if isinstance(value, dict) and node.items is not None and node.items.kind in _NESTED:
            for key, item in value.items():
                _prune(node.items, item, f"{path}.{key}", found)


_NESTED = frozenset({openapi.OBJECT, openapi.ARRAY, openapi.MAP})


def _prune_object(node: openapi.Node, obj: dict[str, Any], path: str, found: list[str]) -> None:
    props = node.properties
    unknown: list[str] = []
    for key, value in obj.items():
        child = props.get(key)
        if child is None:
            unknown.append(key)
            found.append(f"{path}.{key}" if path else key)
        elif child.kind in _NESTED and value is not None:
            _prune(child, value, f"{path}.{key}" if path else key, found)
    for key in unknown:
        del obj[key]
