"""Client-side ``kubectl apply``: the last-applied annotation and a three-way patch.

The patch is computed from (original = last applied, modified = manifest,
current = live object) and sent as a strategic merge patch: fields the manifest
sets and the live object lacks or differs in are set; fields the previous apply
set and this manifest drops are deleted (``null``, or ``$patch: delete`` for
named list elements). Lists the live object already contains (server defaults
added to each element) count as unchanged, so re-applying a manifest is a no-op.
"""

from __future__ import annotations

import json
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

Obj = dict[str, Any]


def last_applied_json(manifest: Obj) -> str:
    """The annotation value: the manifest (without that annotation) as compact, key-sorted JSON."""
    clean = json.loads(json.dumps(manifest))
    ann = (clean.get("metadata") or {}).get("annotations")
    if ann is not None:
        ann.pop(LAST_APPLIED, None)
    return json.dumps(clean, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n"


def with_last_applied(manifest: Obj) -> Obj:
    """The manifest plus its last-applied annotation, as kubectl sends it on create."""
    out = json.loads(json.dumps(manifest))
    meta = out.setdefault("metadata", {})
    annotations = meta.get("annotations") or {}
    annotations[LAST_APPLIED] = last_applied_json(manifest)
    meta["annotations"] = annotations
    return out


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return a == b


def contained(modified: Any, current: Any) -> bool:
    """True when ``current`` already holds everything ``modified`` says."""
    if isinstance(modified, dict):
        if not isinstance(current, dict):
            return False
        return all(k in current and contained(v, current[k]) for k, v in modified.items() if v is not None) \
            and all(current.get(k) is None for k, v in modified.items() if v is None)
    if isinstance(modified, list):
        if not isinstance(current, list) or len(modified) != len(current):
            return False
        return all(contained(m, c) for m, c in zip(modified, current, strict=True))
    return _same_scalar(modified, current)


def _named(items: Any) -> bool:
    return isinstance(items, list) and bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def three_way(original: Any, modified: Any, current: Any) -> Any:
    """The strategic-merge patch taking ``current`` to ``modified``; ``{}`` when nothing changes."""
    patch: Obj = {}
    original = original if isinstance(original, dict) else {}
    current = current if isinstance(current, dict) else {}
    for key, mod in modified.items():
        cur = current.get(key)
        if isinstance(mod, dict) and isinstance(cur, dict):
            sub = three_way(original.get(key), mod, cur)
            if sub:
                patch[key] = sub
        elif isinstance(mod, list):
            if not contained(mod, cur):
                value = list(mod)
                orig = original.get(key)
                if _named(orig) and _named(mod):
                    kept = {m["name"] for m in mod}
                    value += [{"$patch": "delete", "name": o["name"]} for o in orig if o["name"] not in kept]
                patch[key] = value
        elif key not in current or not contained(mod, cur):
            patch[key] = mod
    for key in original:
        if key not in modified and key in current:
            patch[key] = None
    return patch


def apply_patch(manifest: Obj, live: Obj) -> Obj:
    """The patch ``kubectl apply`` sends for ``manifest`` over ``live``; ``{}`` if unchanged."""
    annotations = ((live.get("metadata") or {}).get("annotations") or {})
    original = json.loads(annotations[LAST_APPLIED]) if annotations.get(LAST_APPLIED) else {}
    modified = with_last_applied(manifest)
    for drop in ("status",):
        modified.pop(drop, None)
        original.pop(drop, None)
    return three_way(original, modified, live)
