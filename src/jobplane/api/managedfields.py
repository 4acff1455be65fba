"""Field ownership as structured-merge-diff tracks it: field sets, comparison, apply merge,
pruning and the ``metadata.managedFields`` entries of server-side apply.

Pure functions over JSON values and the compiled OpenAPI schema (``api.openapi.Node``).
A field set is a Python ``set`` of paths; a path is a tuple of FieldsV1 keys
(``"f:spec"``, ``'k:{"name":"c"}'``, ``'v:"x"'``), so set algebra is Python's.

Schema semantics follow upstream's OpenAPI → structured-merge-diff conversion: a list is
``x-kubernetes-list-type`` (``map`` keyed by ``-list-map-keys``, ``set``, ``atomic``); without
one, ``x-kubernetes-patch-strategy: merge`` makes it a map keyed by the patch merge key (or a
set of scalars), otherwise it is atomic. Objects and maps are granular unless
``x-kubernetes-map-type: atomic``. Untyped values (no schema) are deduced: objects granular,
lists atomic.
"""

from __future__ import annotations

from typing import Any

import orjson

from jobplane.api import openapi
from jobplane.api.openapi import ANY, ANY_NODE, ARRAY, MAP, OBJECT, Node

Path = tuple[str, ...]
FieldSet = set[Path]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# Relationships of a node to its children.
LEAF, STRUCT, GRANULAR_MAP, LIST_MAP, LIST_SET, ATOMIC = range(6)


def relation(node: Node, value: Any) -> int:
    kind = node.kind
    if kind == OBJECT:
        return ATOMIC if node.atomic else STRUCT
    if kind == MAP:
        return ATOMIC if node.atomic else GRANULAR_MAP
    if kind == ARRAY:
        list_type = node.list_type
        if not list_type and "merge" in node.strategies:
            list_type = "map" if node.merge_key else "set"
        if list_type == "map":
            return LIST_MAP
        if list_type == "set":
            return LIST_SET
        return ATOMIC
    if kind == ANY and isinstance(value, dict):
        return GRANULAR_MAP
    if kind == ANY and isinstance(value, list):
        return ATOMIC
    return LEAF


def _child(node: Node, key: str) -> tuple[Node, bool]:
    """(schema of a map entry, declared field?)."""
    if node.kind == OBJECT:
        sub = node.properties.get(key)
        return (sub, True) if sub is not None else (ANY_NODE, False)
    if node.kind == MAP and node.items is not None:
        return node.items, False
    return ANY_NODE, False


def _keys(node: Node) -> tuple[str, ...]:
    return node.map_keys or ((node.merge_key,) if node.merge_key else ())


def item_element(node: Node, item: Any, rel: int) -> str:
    """The path element of a list item: ``k:{...}`` (sorted keys, defaults filled) or ``v:...``."""
    if rel == LIST_SET:
        return "v:" + orjson.dumps(item).decode()
    elem = node.items or ANY_NODE
    key: dict[str, Any] = {}
    if isinstance(item, dict):
        for name in _keys(node):
            if name in item:
                key[name] = item[name]
            else:
                sub = elem.properties.get(name) if elem.kind == OBJECT else None
                if sub is not None and sub.default is not None:
                    key[name] = sub.default
    return "k:" + orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode()


def _items(node: Node, values: Any, rel: int) -> dict[str, Any]:
    """List items by path element, first occurrence wins (as upstream)."""
    out: dict[str, Any] = {}
    for item in values if isinstance(values, list) else ():
        out.setdefault(item_element(node, item, rel), item)
    return out


def _is_empty(value: Any) -> bool:
    return value is None or value is MISSING or (isinstance(value, dict | list) and not value)


# -- the set an applied configuration manages -----------------------------------------------

def to_set(value: Any, node: Node) -> FieldSet:
    out: FieldSet = set()
    _to_set(value, node, (), out)
    return out


def _to_set(value: Any, node: Node, path: Path, out: FieldSet) -> None:
    rel = relation(node, value)
    if rel in (LEAF, ATOMIC):
        out.add(path)
        return
    if rel in (STRUCT, GRANULAR_MAP):
        if not isinstance(value, dict):
            out.add(path)
            return
        for key, val in value.items():
            sub, declared = _child(node, key)
            child = (*path, "f:" + key)
            _to_set(val, sub, child, out)
            if not declared or val is None or (isinstance(val, dict) and not val):
                out.add(child)
        return
    if not isinstance(value, list):
        out.add(path)
        return
    elem = node.items or ANY_NODE
    for pe, item in _items(node, value, rel).items():
        child = (*path, pe)
        if rel == LIST_MAP:
            _to_set(item, elem, child, out)
        out.add(child)


# -- comparison --------------------------------------------------------------------------

class Comparison:
    __slots__ = ("added", "modified", "removed")

    def __init__(self) -> None:
        self.added: FieldSet = set()
        self.modified: FieldSet = set()
        self.removed: FieldSet = set()


def compare(old: Any, new: Any, node: Node, skip: frozenset[str] = frozenset()) -> Comparison:
    """What changed from ``old`` to ``new``; top-level fields in ``skip`` are not looked at."""
    cmp = Comparison()
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() | new.keys():
            if key in skip:
                continue
            sub, declared = _child(node, key)
            _compare(old.get(key, MISSING), new.get(key, MISSING), sub, ("f:" + key,), cmp, declared)
    else:
        _compare(old, new, node, (), cmp, True)
    return cmp


def _compare(old: Any, new: Any, node: Node, path: Path, cmp: Comparison, declared: bool) -> None:
    if old is MISSING and new is MISSING:
        return
    if old is not MISSING and new is not MISSING and old == new:
        return
    rel = relation(node, new if new is not MISSING else old)
    if rel in (LEAF, ATOMIC) or (_is_empty(old) and _is_empty(new)) \
            or (rel in (STRUCT, GRANULAR_MAP) and not (isinstance(old, dict | _Missing)
                                                      and isinstance(new, dict | _Missing))) \
            or (rel in (LIST_MAP, LIST_SET) and not (isinstance(old, list | _Missing)
                                                      and isinstance(new, list | _Missing))):
        if old is MISSING:
            cmp.added.add(path)
        elif new is MISSING:
            cmp.removed.add(path)
        else:
            cmp.modified.add(path)
        return
    if rel in (STRUCT, GRANULAR_MAP):
        o = old if isinstance(old, dict) else {}
        n = new if isinstance(new, dict) else {}
        for key in o.keys() | n.keys():
            sub, decl = _child(node, key)
            _compare(o.get(key, MISSING), n.get(key, MISSING), sub, (*path, "f:" + key), cmp, decl)
    else:
        elem = node.items or ANY_NODE
        o_items = _items(node, old, rel)
        n_items = _items(node, new, rel)
        for pe in o_items.keys() | n_items.keys():
            _compare(o_items.get(pe, MISSING), n_items.get(pe, MISSING), elem, (*path, pe), cmp, False)
    # A granular node that appears or disappears is itself a member (upstream's compare).
    # Declared struct fields are not: upstream compares against a Go zero value, where they
    # already exist.
    if rel == STRUCT and declared:
        return
    if old is MISSING:
        cmp.added.add(path)
    elif new is MISSING:
        cmp.removed.add(path)


# -- merge (apply) -----------------------------------------------------------------------

def merge(live: Any, config: Any, node: Node) -> Any:
    """``config`` merged into ``live``: granular parts merge, atomic parts are replaced."""
    if live is MISSING:
        return config
    if config is MISSING:
        return live
    rel = relation(node, config)
    if rel in (STRUCT, GRANULAR_MAP) and isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for key, val in config.items():
            sub, _ = _child(node, key)
            out[key] = merge(live.get(key, MISSING), val, sub)
        return out
    if rel in (LIST_MAP, LIST_SET) and isinstance(live, list) and isinstance(config, list):
        elem = node.items or ANY_NODE
        c_items = _items(node, config, rel)
        out_list, seen = [], set()
        for item in live:
            pe = item_element(node, item, rel)
            if pe in seen:
                continue
            seen.add(pe)
            if pe in c_items:
                out_list.append(merge(item, c_items[pe], elem) if rel == LIST_MAP else c_items[pe])
            else:
                out_list.append(item)
        out_list.extend(item for pe, item in c_items.items() if pe not in seen)
        return out_list
    return config


# -- removal -----------------------------------------------------------------------------

def remove(obj: Any, paths: FieldSet, keep: FieldSet, node: Node) -> Any:
    """``obj`` without the nodes at ``paths`` (a new value). A node something in ``keep`` lies
    under stays (only its other removed parts go); a map or list emptied by the removal goes
    too unless kept, as upstream's prune."""
    if not paths:
        return obj
    tree: dict[str, Any] = {}
    for p in paths:
        cur = tree
        for pe in p:
            cur = cur.setdefault(pe, {})
        cur["."] = True
    kept: dict[str, Any] = {}
    for p in keep:
        cur = kept
        for pe in p:
            cur = cur.setdefault(pe, {})
        cur["."] = True
    result = _remove(obj, tree, kept, node)
    return {} if result is MISSING else result


def _remove(value: Any, tree: dict[str, Any], kept: dict[str, Any] | None, node: Node) -> Any:
    """MISSING when the whole value goes."""
    if tree.get(".") and not _has_children(kept):
        return MISSING
    rel = relation(node, value)
    if rel in (STRUCT, GRANULAR_MAP) and isinstance(value, dict):
        out = dict(value)
        for pe, sub_tree in tree.items():
            if pe == "." or not pe.startswith("f:") or pe[2:] not in out:
                continue
            key = pe[2:]
            sub, _ = _child(node, key)
            res = _remove(out[key], sub_tree, (kept or {}).get(pe), sub)
            if res is MISSING:
                del out[key]
            else:
                out[key] = res
        if not out and value and not (kept and "." in kept):
            return MISSING
        return out
    if rel in (LIST_MAP, LIST_SET) and isinstance(value, list):
        elem = node.items or ANY_NODE
        out_list = []
        for item in value:
            pe = item_element(node, item, rel)
            if pe in tree:
                res = _remove(item, tree[pe], (kept or {}).get(pe), elem)
                if res is MISSING:
                    continue
                out_list.append(res)
            else:
                out_list.append(item)
        if not out_list and value and not (kept and "." in kept):
            return MISSING
        return out_list
    return value


def _has_children(kept: dict[str, Any] | None) -> bool:
    return kept is not None and any(k != "." for k in kept)


# -- paths as text -----------------------------------------------------------------------

def path_string(path: Path) -> str:
    """Upstream's ``fieldpath.Path.String``: ``.spec.containers[name="c"].image``."""
    parts = []
    for pe in path:
        kind, text = pe[0], pe[2:]
        if kind == "f":
            parts.append("." + text)
        elif kind == "k":
            key = orjson.loads(text)
            parts.append("[" + ",".join(f"{k}={_go_value(v)}" for k, v in key.items()) + "]")
        elif kind == "v":
            parts.append(f"[={_go_value(orjson.loads(text))}]")
        else:
            parts.append(f"[{text}]")
    return "".join(parts)


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _sort_key(pe: str) -> tuple[int, str]:
    return ("fkvi".find(pe[0]), pe[2:])


def path_sort_key(path: Path) -> list[tuple[int, str]]:
    return [_sort_key(pe) for pe in path]


# -- FieldsV1 ----------------------------------------------------------------------------

def to_fields_v1(paths: FieldSet) -> dict[str, Any]:
    """The FieldsV1 tree: children as keys, ``".": {}`` on a member that has children."""
    root: dict[str, Any] = {}
    members: set[int] = set()
    for p in paths:
        cur = root
        for pe in p:
            cur = cur.setdefault(pe, {})
        members.add(id(cur))
    return _finish(root, members)


def _finish(tree: dict[str, Any], members: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if id(tree) in members and tree:
        out["."] = {}
    for pe in sorted(tree, key=_sort_key):
        out[pe] = _finish(tree[pe], members)
    return out


def from_fields_v1(tree: Any) -> FieldSet:
    out: FieldSet = set()
    if isinstance(tree, dict):
        _walk_fields(tree, (), out)
    return out


def _walk_fields(tree: dict[str, Any], path: Path, out: FieldSet) -> None:
    if not tree:
        if path:
            out.add(path)
        return
    for pe, sub in tree.items():
        if pe == ".":
            out.add(path)
        elif isinstance(sub, dict):
            _walk_fields(sub, (*path, pe), out)


def strip_prefix(paths: FieldSet, prefix: Path) -> FieldSet:
    """``paths`` without ``prefix`` and everything under it (upstream's RecursiveDifference)."""
    n = len(prefix)
    return {p for p in paths if p[:n] != prefix}


# Fields the server owns, never part of anyone's set (upstream's stripMeta).
STRIPPED = frozenset({("f:apiVersion",), ("f:kind",), ("f:metadata",), ("f:metadata", "f:name"),
                      ("f:metadata", "f:namespace"), ("f:metadata", "f:creationTimestamp"),
                      ("f:metadata", "f:selfLink"), ("f:metadata", "f:uid"),
                      ("f:metadata", "f:generation"), ("f:metadata", "f:managedFields"),
                      ("f:metadata", "f:resourceVersion"), ("f:metadata", "f:deletionTimestamp"),
                      ("f:metadata", "f:deletionGracePeriodSeconds")})


def schema_for(group: str, version: str, kind: str) -> Node:
    return openapi.node_for(group, version, kind) or openapi.generic_object_node()


# -- FieldsV1 trees edited in place (the hot path of Update tracking) ----------------------

def tree_has(tree: dict[str, Any], path: Path) -> bool:
    """Whether ``path`` is a member of a FieldsV1 tree."""
    cur = tree
    for pe in path:
        nxt = cur.get(pe)
        if not isinstance(nxt, dict):
            return False
        cur = nxt
    return not cur or "." in cur


def _own_path(tree: dict[str, Any], path: Path, copied: set[int] | None, create: bool) -> list[dict[str, Any]] | None:
    """The chain of dicts from ``tree`` down ``path``, each copied once when ``copied`` is given
    (copy-on-write: trees shared with the stored object are never changed); None when the
    path is absent and ``create`` is false."""
    chain = [tree]
    cur = tree
    for pe in path:
        nxt = cur.get(pe)
        if not isinstance(nxt, dict):
            if not create:
                return None
            nxt = {}
            if copied is not None:
                copied.add(id(nxt))
        elif copied is not None and id(nxt) not in copied:
            nxt = dict(nxt)
            copied.add(id(nxt))
        cur[pe] = nxt
        chain.append(nxt)
        cur = nxt
    return chain


def tree_add(tree: dict[str, Any], path: Path, copied: set[int] | None = None) -> None:
    """Make ``path`` a member of ``tree`` (whose root the caller owns; with ``copied``, inner
    dicts are copied before they change)."""
    cur = tree
    last = len(path) - 1
    for i, pe in enumerate(path):
        nxt = cur.get(pe)
        if not isinstance(nxt, dict):
            nxt = {}
            if copied is not None:
                copied.add(id(nxt))
        else:
            if copied is not None and id(nxt) not in copied:
                nxt = dict(nxt)
                copied.add(id(nxt))
            if not nxt and i != last:
                nxt["."] = {}  # a member leaf that now gets children stays a member
        cur[pe] = nxt
        cur = nxt
    if cur and "." not in cur:
        cur["."] = {}


def tree_remove(tree: dict[str, Any], path: Path, copied: set[int] | None = None) -> None:
    """Drop ``path``'s membership; emptied non-member parents go too."""
    if not tree_has(tree, path):
        return
    chain = _own_path(tree, path, copied, False)
    if chain is None:
        return
    cur = chain[-1]
    if any(k != "." for k in cur):
        cur.pop(".", None)
        return
    for depth in range(len(path), 0, -1):
        parent = chain[depth - 1]
        parent.pop(path[depth - 1], None)
        if depth - 1 == 0 or parent:
            if parent.keys() == {"."}:
                parent.clear()  # a member without children is written as {}
            break


def added_tree(obj: dict[str, Any], node: Node, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The FieldsV1 tree of ``compare({}, obj)``'s added set, built in one walk (a create's
    owner set, on every create: a set of paths would cost twice as much)."""
    out: dict[str, Any] = {}
    for key, val in obj.items():
        if key in skip:
            continue
        sub, declared = _child(node, key)
        out["f:" + key] = _added(val, sub, declared)
    return out


def _added(value: Any, node: Node, declared: bool) -> dict[str, Any]:
    if isinstance(value, dict):
        if not value:
            return {}
        rel = relation(node, value)
        if rel not in (STRUCT, GRANULAR_MAP):
            return {}
        tree: dict[str, Any] = {} if rel == STRUCT and declared else {".": {}}
        for key, val in value.items():
            sub, decl = _child(node, key)
            tree["f:" + key] = _added(val, sub, decl)
        return tree
    if isinstance(value, list) and value:
        rel = relation(node, value)
        if rel not in (LIST_MAP, LIST_SET):
            return {}
        tree = {".": {}}
        elem = node.items or ANY_NODE
        for pe, item in _items(node, value, rel).items():
            tree[pe] = _added(item, elem, False) if rel == LIST_MAP else {}
        return tree
    return {}
