"""Every field of a kind's shipped OpenAPI schema, with a value of the wrong type: shared by
the wrong-type walk (unit) and the fuzz test (e2e)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jobplane.api import openapi
from jobplane.api.registry import ResourceInfo

_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INTSTR = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


def _ref(schema: dict[str, Any]) -> str | None:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    parts = schema.get("allOf") or ()
    return parts[0]["$ref"].rsplit("/", 1)[-1] if len(parts) == 1 and "$ref" in parts[0] else None


def _wrong(schema: dict[str, Any], ref: str | None) -> Any:
    """A value no decoder accepts for this schema (None: anything goes)."""
    if ref in (_QUANTITY, _INTSTR):
        return True
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return None
    t = schema.get("type")
    if t == "string":
        return 5
    if t in ("integer", "number", "boolean", "array"):
        return "x"
    if t == "object" and (schema.get("properties") or isinstance(schema.get("additionalProperties"), dict)):
        return "x"
    return None


def walk(schema: dict[str, Any], path: tuple = (), seen: tuple[str, ...] = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, wrong value) for every node under ``schema``; path steps are field names,
    ``[]`` (a list item) or ``{}`` (a map value)."""
    ref = _ref(schema)
    if ref is not None:
        if ref in seen:
            return
        seen = (*seen, ref)
        schema = openapi.raw_schema(ref) or {}
    wrong = _wrong(schema, ref)
    if wrong is not None and path:
        yield path, wrong
    if ref in (_QUANTITY, _INTSTR):
        return
    for name, sub in (schema.get("properties") or {}).items():
        if name not in ("apiVersion", "kind"):
            yield from walk(sub, (*path, name), seen)
    if schema.get("type") == "array" and schema.get("items"):
        yield from walk(schema["items"], (*path, "[]"), seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and not schema.get("properties"):
        yield from walk(extra, (*path, "{}"), seen)


def kind_fields(info: ResourceInfo) -> list[tuple[tuple, Any]]:
    root = openapi.raw_schema(openapi.schema_name(info.group, info.version, info.kind) or "") or {}
    return list(walk(root))


def build(info: ResourceInfo, path: tuple, value: Any, name: str = "walk") -> dict[str, Any]:
    """A minimal object of ``info``'s kind with ``value`` at ``path``."""
    for step in reversed(path):
        value = [value] if step == "[]" else {"k": value} if step == "{}" else {step: value}
    obj = {"apiVersion": info.api_version, "kind": info.kind, "metadata": {"name": name}}
    top, rest = path[0], value[path[0]]
    if top == "metadata" and isinstance(rest, dict):
        obj["metadata"].update(rest)
    else:
        obj[top] = rest
    return obj
