"""``kubectl describe`` for the remaining kinds: Namespace, and the generic describer
kubectl falls back to for kinds without a dedicated one.
"""

from __future__ import annotations

import re
from typing import Any

from jobplane.cli.describe.common import (
    PrefixWriter,
    annotations_multiline,
    describe_events,
    go_bool,
    labels_multiline,
)

Obj = dict[str, Any]


def describe_namespace(ns: Obj, events: list[Obj] | None, now: float) -> str:
    w = PrefixWriter()
    meta = ns.get("metadata") or {}
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Status:\t{(ns.get('status') or {}).get('phase', '')}\n")
    return w.render()


_ACRONYMS = {"API", "URL", "UID", "OSB", "GUID"}


def smart_label(field_name: str) -> str:
    """``smartLabelFor``: ``apiVersion`` -> ``API Version``."""
    if any(not (ch.isalpha() or ch == "-") for ch in field_name):
        return field_name
    parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[A-Z]+|-", field_name)
    out = []
    for p in parts:
        if p == "_":
            continue
        out.append(p.upper() if p.upper() in _ACRONYMS else p[:1].upper() + p[1:])
    return " ".join(out)


def _unstructured(w: PrefixWriter, level: int, content: Obj, prefix: str, skip: set[str]) -> None:
    for key in sorted(content):
        value = content[key]
        path = f"{prefix}.{key}"
        if path in skip:
            continue
        if isinstance(value, dict):
            w.write(level, f"{smart_label(key)}:\n")
            _unstructured(w, level + 1, value, path, skip)
        elif isinstance(value, list):
            w.write(level, f"{smart_label(key)}:\n")
            for child in value:
                if isinstance(child, dict):
                    _unstructured(w, level + 1, child, path, skip)
                else:
                    w.write(level + 1, f"{_go_value(child)}\n")
        else:
            w.write(level, f"{smart_label(key)}:\t{_go_value(value)}\n")


def _go_value(v: Any) -> str:
    if isinstance(v, bool):
        return go_bool(v)
    if v is None:
        return "<nil>"
    return str(v)


def describe_generic(obj: Obj, events: list[Obj] | None, now: float) -> str:
    """The generic describer kubectl uses for kinds without a dedicated one."""
    w = PrefixWriter()
    meta = obj.get("metadata") or {}
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    _unstructured(w, 0, obj, "", {".metadata.managedFields", ".metadata.name", ".metadata.namespace",
                                  ".metadata.labels", ".metadata.annotations"})
    if events is not None:
        describe_events(w, events, now)
    return w.render()
