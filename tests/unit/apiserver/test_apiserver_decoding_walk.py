"""Every field of the Job, CronJob and Pod schemas, one at a time, with a value of the
wrong type: each create answers 400 and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jobplane.api import errors, openapi
from jobplane.api.registry import CRONJOBS, JOBS, PODS, ResourceInfo

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


def walk(schema: dict[str, Any], path: tuple, seen: tuple[str, ...]) -> Iterator[tuple[tuple, Any]]:
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


def build(info: ResourceInfo, path: tuple, value: Any) -> dict[str, Any]:
    for step in reversed(path):
        value = [value] if step == "[]" else {"k": value} if step == "{}" else {step: value}
    obj = {"apiVersion": info.api_version, "kind": info.kind, "metadata": {"name": "walk"}}
    top, rest = path[0], value[path[0]]
    if top == "metadata" and isinstance(rest, dict):
        obj["metadata"].update(rest)
    else:
        obj[top] = rest
    return obj


@pytest.mark.parametrize("info", [JOBS, CRONJOBS, PODS], ids=lambda i: i.kind)
async def test_every_field_with_a_wrong_type_is_400_and_nothing_is_stored(service, info):
    root = openapi.raw_schema(openapi.schema_name(info.group, info.version, info.kind))
    cases = list(walk(root, (), ()))
    assert len(cases) > 500  # the whole tree, pod template included
    answers: dict[int, int] = {}
    failures = []
    for path, value in cases:
        try:
            await service.create(info, "default", build(info, path, value))
            code = 201
        except errors.StatusError as exc:
            code = exc.code
            if code == 400 and "cannot be handled as a" not in exc.message:
                failures.append((path, exc.message))
        answers[code] = answers.get(code, 0) + 1
        if code != 400:
            failures.append((path, code))
    assert not failures, failures[:20]
    assert answers == {400: len(cases)}
    assert (await service.list(info, None))["items"] == []
    print(f"{info.kind}: {len(cases)} fields, all 400")
