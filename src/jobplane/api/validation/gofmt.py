"""Go ``%#v`` renderings of the few struct values upstream puts in field errors, so that
messages like ``Invalid value: map[string]string{"a":"b"}: ...`` match byte for byte."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobplane.api.errors import RawValue


def _q(s: Any) -> str:
    from jobplane.api.errors import go_quote
    return go_quote(str(s))


def string_map(m: Mapping[str, Any] | None) -> RawValue:
    if m is None:
        return RawValue("map[string]string(nil)")
    inner = ", ".join(f"{_q(k)}:{_q(v)}" for k, v in sorted(m.items()))
    return RawValue("map[string]string{" + inner + "}")


def string_slice(items: list[Any] | None) -> RawValue:
    if items is None:
        return RawValue("[]string(nil)")
    return RawValue("[]string{" + ", ".join(_q(s) for s in items) + "}")


def int32_slice(items: list[Any] | None) -> RawValue:
    if items is None:
        return RawValue("[]int32(nil)")
    return RawValue("[]int32{" + ", ".join(str(v) for v in items) + "}")


def label_selector(sel: Mapping[str, Any] | None) -> RawValue:
    if sel is None:
        return RawValue("null")
    exprs = sel.get("matchExpressions")
    if exprs is None:
        rendered = "[]v1.LabelSelectorRequirement(nil)"
    else:
        rendered = "[]v1.LabelSelectorRequirement{" + ", ".join(
            f"v1.LabelSelectorRequirement{{Key:{_q(e.get('key', ''))}, Operator:{_q(e.get('operator', ''))}, "
            f"Values:{string_slice(e.get('values'))}}}" for e in exprs) + "}"
    return RawValue(f"v1.LabelSelector{{MatchLabels:{string_map(sel.get('matchLabels'))}, "
                    f"MatchExpressions:{rendered}}}")


_MAP_FIELDS = frozenset({"labels", "annotations", "nodeSelector", "limits", "requests", "matchLabels",
                         "capacity", "allocatable"})


def struct(type_name: str, value: Any) -> RawValue:
    """A compact stand-in for large structs (pod templates, policies): ``batch.X{Field:...}``."""
    if isinstance(value, Mapping):
        return RawValue(type_name + _render(value))
    return RawValue(f"{type_name}{{}}")


def _field(name: str) -> str:
    return name[:1].upper() + name[1:]


def _render(v: Any, as_map: bool = False) -> str:
    if isinstance(v, Mapping):
        if as_map:
            return "map[string]string{" + ", ".join(f"{_q(k)}:{_q(x)}" for k, x in sorted(v.items())) + "}"
        return "{" + ", ".join(f"{_field(k)}:{_render(x, k in _MAP_FIELDS)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_render(x) for x in v) + "]"
    if isinstance(v, str):
        return _q(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "nil"
    return str(v)
