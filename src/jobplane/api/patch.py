"""Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch
with upstream's patch keys (read from the shipped OpenAPI documents)."""

from __future__ import annotations

from typing import Any

import orjson

from jobplane.api import errors, openapi
from jobplane.api.registry import ResourceInfo

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

# What upstream's NewGenericServerResponse(422, ...) says: the detail is not passed on.
_REJECTED = "the server rejected our request due to an error in our request"


def apply_patch(info: ResourceInfo, original: dict[str, Any], patch: Any, patch_type: str, *,
                owned: bool = False) -> dict[str, Any]:
    """Return a new object; ``original`` is not mutated unless ``owned`` (the caller's own copy,
    e.g. a fresh decode of the stored bytes: patched in place, no clone). ``patch`` is the
    decoded JSON body. Raises ``StatusError`` (400 BadRequest / 422) for a malformed patch or a
    failed ``test`` op."""
    media = patch_type.split(";", 1)[0].strip().lower()
    if not owned:
        original = clone(original)
    if media == JSON_PATCH:
        return _json_patch(original, patch)
    if media == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise errors.bad_request("Invalid JSON Patch")
        merged: dict[str, Any] = merge_patch(original, patch)
        return merged
    if media == STRATEGIC_MERGE_PATCH:
        if not isinstance(patch, dict):
            raise errors.bad_request(
                f"json: cannot unmarshal {_go_kind(patch)} into Go value of type map[string]interface {{}}")
        node = openapi.node_for(info.group, info.version, info.kind) or openapi.generic_object_node()
        try:
            return _merge_map(original, clone(patch), node)
        except _SMPError as exc:
            raise _smp_status(exc) from None
    raise errors.unsupported_media_type(patch_type)


def touched(patch: Any, patch_type: str, result: dict[str, Any]) -> Any:
    """Where a merge or JSON patch may have changed ``result``: a tree of dicts whose ``True``
    leaves are changed subtrees (a superset is fine), for ``decode.check_touched``; None when
    that is not known (other patch types, the whole object replaced)."""
    media = patch_type.split(";", 1)[0].strip().lower()
    if media == MERGE_PATCH and isinstance(patch, dict):
        return _merge_touched(patch)
    if media == JSON_PATCH and isinstance(patch, list):
        return _json_touched(patch, result)
    return None


def _merge_touched(patch: dict[str, Any]) -> dict[str, Any]:
    """A merge patch changes exactly its own keys: nested objects merge, anything else replaces."""
    return {k: _merge_touched(v) if isinstance(v, dict) else True for k, v in patch.items()}


def _json_touched(ops: list[Any], result: dict[str, Any]) -> dict[str, Any] | None:
    """Each op's target (and a move's source), cut at the first list or missing key: that
    list, or the object that lost a key, is checked whole."""
    tree: dict[str, Any] = {}
    for op in ops:
        if not isinstance(op, dict) or op.get("op") == "test":
            continue
        for path in (op.get("path"), op.get("from")) if op.get("op") == "move" else (op.get("path"),):
            try:
                tokens = _pointer(path)
            except _PatchFailed:
                return None
            prefix: list[str] = []
            node: Any = result
            for token in tokens:
                if not isinstance(node, dict) or token not in node:
                    break
                prefix.append(token)
                node = node[token]
            if not prefix:
                return None
            at = tree
            for token in prefix[:-1]:
                nxt = at.setdefault(token, {})
                if nxt is True:
                    break
                at = nxt
            else:
                at[prefix[-1]] = True
    return tree


def clone(value: Any) -> Any:
    """Deep copy of a JSON value (faster than copy.deepcopy)."""
    if isinstance(value, dict | list):
        return orjson.loads(orjson.dumps(value))
    return value


def _go_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null"


# --- RFC 7386 -------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch; ``target`` (already a copy) is modified in place and returned."""
    if not isinstance(patch, dict):
        return clone(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


# --- RFC 6902 -------------------------------------------------------------------------


class _PatchFailed(Exception):
    pass


def _json_patch(doc: Any, ops: Any) -> dict[str, Any]:
    """``ops`` applied to ``doc`` (the caller's own copy, changed in place)."""
    if not isinstance(ops, list):
        raise errors.bad_request(f"json: cannot unmarshal {_go_kind(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise errors.bad_request(
                f"json: cannot unmarshal {_go_kind(op)} into Go value of type jsonpatch.Operation")
    try:
        for op in ops:
            doc = _apply_op(doc, op)
    except _PatchFailed:
        raise errors.StatusError(422, "Invalid", _REJECTED) from None
    if not isinstance(doc, dict):
        raise errors.bad_request("Invalid JSON Patch")
    return doc


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise _PatchFailed("missing path")
    if path == "":
        return []
    if not path.startswith("/"):
        raise _PatchFailed(f"invalid path {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    try:
        idx = int(token)
    except ValueError:
        raise _PatchFailed(f"bad index {token!r}") from None
    if idx < 0:
        idx += len(container)
    limit = len(container) if allow_end else len(container) - 1
    if idx < 0 or idx > limit:
        raise _PatchFailed(f"index out of range: {token}")
    return idx


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise _PatchFailed(f"missing key {token!r}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, False)]
        else:
            raise _PatchFailed("path through a scalar")
    return node


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchFailed(f"missing key {last!r}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, False)]
    raise _PatchFailed("path through a scalar")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, True), value)
    else:
        raise _PatchFailed("add to a scalar")
    return doc


def _remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    if not tokens:
        raise _PatchFailed("cannot remove the root")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchFailed(f"Unable to remove nonexistent key: {last}")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, False))
    raise _PatchFailed("remove from a scalar")


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and bool(a == b)
    return bool(a == b)


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    tokens = _pointer(op.get("path"))
    if kind in ("add", "replace", "test") and "value" not in op:
        raise _PatchFailed("missing value")
    if kind == "add":
        return _add(doc, tokens, clone(op["value"]))
    if kind == "remove":
        return _remove(doc, tokens)[0]
    if kind == "replace":
        _get(doc, tokens)  # must exist
        if not tokens:
            return clone(op["value"])
        doc, _ = _remove(doc, tokens)
        return _add(doc, tokens, clone(op["value"]))
    if kind == "move":
        source = _pointer(op.get("from"))
        if tokens[: len(source)] == source and len(tokens) > len(source):
            raise _PatchFailed("cannot move into a child of itself")
        doc, value = _remove(doc, source)
        return _add(doc, tokens, value)
    if kind == "copy":
        value = clone(_get(doc, _pointer(op.get("from"))))
        return _add(doc, tokens, value)
    if kind == "test":
        try:
            current = _get(doc, tokens)
        except _PatchFailed:
            current = None
            if op["value"] is not None:
                raise
        if not _equal(current, op["value"]):
            raise _PatchFailed("test failed")
        return doc
    raise _PatchFailed(f"Unexpected kind: {kind}")


# --- strategic merge patch (a port of apimachinery's strategicpatch.mergeMap) -----------

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_SET_ORDER = "invalid patch format of setElementOrder list"


class _SMPError(Exception):
    def __init__(self, message: str, code: int = 500) -> None:
        super().__init__(message)
        self.code = code


def _smp_status(exc: _SMPError) -> errors.StatusError:
    """Map an SMP failure the way apiserver's interpretStrategicMergePatchError does."""
    if exc.code == 400:
        return errors.bad_request(str(exc))
    if exc.code == 422:
        return errors.StatusError(422, "Invalid", _REJECTED)
    return errors.StatusError(500, "", str(exc))


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "slice"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if value is None:
        return "nil"
    return "string"


def _lookup(node: openapi.Node | None, key: str) -> openapi.Node | None:
    if node is None:
        return None
    if node.kind == openapi.OBJECT:
        return node.properties.get(key)
    if node.kind == openapi.MAP:
        return node.items
    return None


def _strategy(node: openapi.Node | None) -> str:
    """The strategy besides ``retainKeys``: "merge", "replace" or ""."""
    if node is None:
        return ""
    rest = [s for s in node.strategies if s != "retainKeys"]
    return rest[0] if rest else ""


def _no_merge_key(item: Any, merge_key: str) -> _SMPError:
    return _SMPError(f"map: {errors.go_quote(item)} does not contain declared merge key: {merge_key}")


def _merge_map(original: dict[str, Any], patch: dict[str, Any], node: openapi.Node | None) -> dict[str, Any]:
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            del patch[_DIRECTIVE]
            return patch
        if directive == "delete":
            return {}
        raise _SMPError(f"unknown patch type: {directive} in map: {errors.go_quote(patch)}")
    _apply_retain_keys(original, patch)
    _merge_set_element_order(original, patch, node)
    for key, patch_value in patch.items():
        is_delete_list = key.startswith(_DELETE_PRIMITIVE)
        if is_delete_list:
            key = key[len(_DELETE_PRIMITIVE):]
            if not key:
                raise _SMPError(_BAD_PRIMITIVE_LIST, 400)
        if patch_value is None:
            original.pop(key, None)
            continue
        if key not in original or _go_type(original[key]) != _go_type(patch_value):
            if not is_delete_list:
                _discard_nulls(patch_value)
                _set_or_drop(original, key, patch_value)
            continue
        current = original[key]
        child = _lookup(node, key)
        if isinstance(current, dict):
            if _strategy(child) == "replace":
                original[key] = patch_value
            else:
                original[key] = _merge_map(current, patch_value, child)
        elif isinstance(current, list):
            original[key] = _merge_slice_handler(current, patch_value, child, is_delete_list)
        else:
            _set_or_drop(original, key, patch_value)
    return original


def _set_or_drop(target: dict[str, Any], key: str, value: Any) -> None:
    value, keep = _remove_directives(value)
    if keep:
        target[key] = value
    else:
        target.pop(key, None)


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """Strip directives from a value taken over whole; a ``$patch`` map is dropped."""
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        out = {}
        for k, v in value.items():
            if k == _RETAIN_KEYS or k.startswith((_SET_ORDER, _DELETE_PRIMITIVE)):
                continue
            v, keep = _remove_directives(v)
            if keep:
                out[k] = v
        return out, True
    if isinstance(value, list):
        res = []
        for v in value:
            v, keep = _remove_directives(v)
            if keep:
                res.append(v)
        return res, True
    return value, True


def _discard_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for k in [k for k, v in value.items() if v is None]:
            del value[k]
        for v in value.values():
            _discard_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _discard_nulls(v)


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if _RETAIN_KEYS not in patch:
        return
    keep = patch.pop(_RETAIN_KEYS)
    if not isinstance(keep, list):
        raise _SMPError(_BAD_RETAIN_KEYS, 400)
    for k, v in patch.items():
        if v is None or k.startswith((_DELETE_PRIMITIVE, _SET_ORDER)):
            continue
        if k not in keep:
            raise _SMPError(_BAD_RETAIN_KEYS, 400)
    for k in [k for k in original if k not in keep]:
        del original[k]


def _merge_set_element_order(original: dict[str, Any], patch: dict[str, Any], node: openapi.Node | None) -> None:
    for key in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(key)
        field = key[len(_SET_ORDER):]
        if not isinstance(order, list) or not field:
            raise _SMPError(_BAD_SET_ORDER, 400)
        found_original, found_patch = field in original, field in patch
        current = original.get(field) if found_original else []
        incoming = patch.get(field) if found_patch else []
        if not isinstance(current, list) or not isinstance(incoming, list):
            raise _SMPError(_BAD_SET_ORDER, 400)
        child = _lookup(node, field)
        merge_key = child.merge_key if child is not None else ""
        if found_original and found_patch:
            merged = _merge_slice_handler(current, incoming, child, False)
        elif found_patch:
            merged = _merge_slice_handler([], incoming, child, False)
        elif found_original:
            merged = current
        else:
            continue
        elem = _slice_elem_type(current or [], incoming or [])
        if elem is not None:
            if merge_key:
                patch_items, server_only = _partition_maps(merged, order, merge_key)
            else:
                patch_items, server_only = _partition_primitives(merged, order)
            merged = _normalize_order(patch_items, server_only, order, current or [], merge_key, elem)
        original[field] = merged
        patch.pop(field, None)


def _merge_slice_handler(original: list[Any], patch: list[Any], node: openapi.Node | None,
                         is_delete_list: bool) -> list[Any]:
    if _strategy(node) == "merge":
        assert node is not None
        return _merge_slice(original, patch, node.items, node.merge_key, is_delete_list)
    return patch


def _slice_elem_type(*lists: list[Any]) -> str | None:
    kind = None
    for items in lists:
        for v in items:
            t = _go_type(v)
            if kind is None:
                if t == "slice":
                    raise _SMPError("lists of lists are not supported", 422)
                kind = t
            elif kind != t:
                raise _SMPError(f"list element types are not identical: {errors.go_quote(list(lists))}")
    return kind


def _merge_slice(original: list[Any], patch: list[Any], elem: openapi.Node | None, merge_key: str,
                 is_delete_list: bool) -> list[Any]:
    if not original and not patch:
        return original
    kind = _slice_elem_type(original, patch)
    if kind != "map":
        if is_delete_list:
            return [v for v in original if v not in patch]
        merged = _dedupe_scalars(original + patch)
    else:
        if not merge_key:
            raise _SMPError("cannot merge lists without merge key for type map")
        original, patch = _merge_special_elements(original, patch, merge_key)
        merged = _merge_plain_elements(original, patch, merge_key, elem)
    if merge_key:
        patch_items, server_only = _partition_maps(merged, patch, merge_key)
    else:
        patch_items, server_only = _partition_primitives(merged, patch)
    return _normalize_order(patch_items, server_only, patch, original, merge_key, kind or "")


def _merge_special_elements(original: list[Any], patch: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    plain: list[Any] = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            value = item[merge_key]
            original = [o for o in original if not (merge_key in o and o[merge_key] == value)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _SMPError("merging lists cannot yet be specified in the patch")
        else:
            raise _SMPError(f"unknown patch type: {directive} in map: {errors.go_quote(item)}")
    if replace:
        return plain, []
    return original, plain


def _find(items: list[Any], key: str, value: Any) -> int:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _SMPError(f"value for key {i} is not a map.")
        if key in item and item[key] == value:
            return i
    return -1


def _merge_plain_elements(original: list[Any], patch: list[Any], merge_key: str,
                          elem: openapi.Node | None) -> list[Any]:
    original = list(original)  # Go's append leaves the caller's slice (the order reference) alone
    for item in patch:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        idx = _find(original, merge_key, item[merge_key])
        if idx >= 0:
            original[idx] = _merge_map(original[idx], item, elem)
        else:
            original.append(_merge_map({}, item, elem))
    return original


def _dedupe_scalars(s: list[Any]) -> list[Any]:
    """apimachinery's in-place dedupe (it moves the last element into a duplicate's slot)."""
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if s[i] == s[j]:
                s[j] = s[length]
                s = s[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return s


def _partition_primitives(items: list[Any], by: list[Any]) -> tuple[list[Any], list[Any]]:
    present = [v for v in items if v in by]
    return present, [v for v in items if v not in by]


def _partition_maps(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    present: list[Any] = []
    server_only: list[Any] = []
    for item in items:
        if not isinstance(item, dict) or merge_key not in item:
            raise _no_merge_key(item, merge_key)
        (present if _find(by, merge_key, item[merge_key]) >= 0 else server_only).append(item)
    return present, server_only


def _index_in(items: list[Any], value: Any, merge_key: str, kind: str) -> int:
    if kind == "map":
        needle = value.get(merge_key) if isinstance(value, dict) else None
        for i, v in enumerate(items):
            if (v.get(merge_key) if isinstance(v, dict) else None) == needle:
                return i
        return -1
    for i, v in enumerate(items):
        if v == value:
            return i
    return -1


def _normalize_slice_order(to_sort: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    to_delete: list[Any] = []
    if kind == "map":
        for item in (*to_sort, *order):
            if not isinstance(item, dict) or merge_key not in item:
                raise _no_merge_key(item, merge_key)
        to_delete = [v for v in to_sort if v.get(_DIRECTIVE) == "delete"]
        to_sort = [v for v in to_sort if v.get(_DIRECTIVE) != "delete"]

    def less(a: Any, b: Any) -> bool:
        ia = _index_in(order, a, merge_key, kind)
        if ia >= 0:
            ib = _index_in(order, b, merge_key, kind)
            if ib >= 0:
                return ia < ib
        return True

    out = list(to_sort)  # insertion sort with Go's (non-strict) comparator, as sort.SliceStable does
    for i in range(1, len(out)):
        j = i
        while j > 0 and less(out[j], out[j - 1]):
            out[j], out[j - 1] = out[j - 1], out[j]
            j -= 1
    return out + to_delete


def _normalize_order(patch: list[Any], server_only: list[Any], patch_order: list[Any], server_order: list[Any],
                     merge_key: str, kind: str) -> list[Any]:
    patch = _normalize_slice_order(patch, patch_order, merge_key, kind)
    server_only = _normalize_slice_order(server_only, server_order, merge_key, kind)
    # mergeSortedSlice: interleave server-only items (left) into patch items (right).
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patch):
        if i >= len(server_only):
            out.append(patch[j])
            j += 1
        elif j >= len(patch):
            out.append(server_only[i])
            i += 1
        else:
            li = _index_in(server_order, server_only[i], merge_key, kind)
            ri = _index_in(server_order, patch[j], merge_key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patch[j])
                j += 1
    return out
