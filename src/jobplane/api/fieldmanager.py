"""``metadata.managedFields``: who owns which fields, kept on every write (operation
``Update``) and decided by server-side apply (operation ``Apply``), as upstream's field
manager does it (``k8s.io/apimachinery/pkg/util/managedfields``).

Pure: the caller passes the old and new objects, the manager, the API version and the
time; field-set algebra lives in ``api.managedfields``.
"""

from __future__ import annotations

from typing import Any

from jobplane.api import errors
from jobplane.api import managedfields as mf
from jobplane.api.openapi import Node

Obj = dict[str, Any]
# (manager, operation, apiVersion ("" for Apply), subresource): upstream's manager identifier.
Key = tuple[str, str, str, str]

APPLY = "Apply"
UPDATE = "Update"
_META_STRIPPED = frozenset(pe[1][2:] for pe in mf.STRIPPED if len(pe) == 2)
MAX_MANAGER_LEN = 128


def default_manager(user_agent: str | None) -> str:
    """Upstream's manager for a write without ``fieldManager``: the User-Agent up to the first
    ``/`` (``kubectl``, ``OpenAPI-Generator``), at most 128 characters."""
    return (user_agent or "unknown").split("/", 1)[0][:MAX_MANAGER_LEN] or "unknown"


def validate_manager(name: str) -> None:
    """422 on PatchOptions as upstream's ``ValidateFieldManager``."""
    if len(name) > MAX_MANAGER_LEN:
        raise errors.invalid_object("PatchOptions", "meta.k8s.io", "", [
            errors.too_long("fieldManager", MAX_MANAGER_LEN)])
    if any(not ch.isprintable() for ch in name):
        raise errors.invalid_object("PatchOptions", "meta.k8s.io", "", [
            errors.invalid("fieldManager", name, "must only contain printable characters")])


class Managers:
    """Decoded managedFields: field sets and times by manager identifier, in stored order."""

    def __init__(self, entries: Any) -> None:
        self.sets: dict[Key, mf.FieldSet] = {}
        self.times: dict[Key, str | None] = {}
        self.versions: dict[Key, str] = {}
        for e in entries if isinstance(entries, list) else ():
            if not isinstance(e, dict) or not e.get("manager") and not e.get("operation"):
                continue
            key = _key(e)
            self.sets[key] = self.sets.get(key, set()) | mf.from_fields_v1(e.get("fieldsV1"))
            self.times[key] = e.get("time")
            self.versions[key] = e.get("apiVersion") or ""
        self._before = {k: frozenset(v) for k, v in self.sets.items()}

    def others(self, key: Key) -> list[Key]:
        return [k for k in self.sets if k != key]

    def owned(self) -> mf.FieldSet:
        out: mf.FieldSet = set()
        for s in self.sets.values():
            out |= s
        return out

    def encode(self, now: str, touched: Key, api_versions: dict[Key, str]) -> list[Obj]:
        """The managedFields list: empty sets dropped, the writer's time renewed when its set
        changed, sorted as upstream (Apply before Update, then by time, then by manager)."""
        entries = []
        for key, fields in self.sets.items():
            if not fields:
                continue
            manager, operation, api_version, subresource = key
            changed = self._before.get(key) != frozenset(fields)
            time = now if (key == touched and (changed or not self.times.get(key))) else self.times.get(key)
            entry: Obj = {"manager": manager, "operation": operation,
                          "apiVersion": api_versions.get(key) or api_version or self.versions.get(key, ""),
                          "time": time, "fieldsType": "FieldsV1",
                          "fieldsV1": mf.to_fields_v1(fields)}
            if subresource:
                entry["subresource"] = subresource
            entries.append(entry)
        entries.sort(key=_entry_order)
        return entries


def _key(entry: Obj) -> Key:
    op = entry.get("operation") or UPDATE
    return (entry.get("manager") or "", op, "" if op == APPLY else entry.get("apiVersion") or "",
            entry.get("subresource") or "")


def _trackable(obj: Obj) -> Obj:
    """The object as field sets see it: server-owned metadata left out."""
    md = obj.get("metadata")
    view = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if isinstance(md, dict):
        view["metadata"] = {k: v for k, v in md.items() if k not in _META_STRIPPED}
    return view


def _ignored(subresource: str | None, has_status: bool) -> str | None:
    """Upstream's reset fields: a main-resource write never owns ``status``; a status write
    only owns ``status`` (``spec`` is reset)."""
    if subresource == "status":
        return "spec"
    return "status" if has_status else None


def _transfer(managers: Managers, key: Key, cmp: mf.Comparison, conflicts_out: dict[Key, mf.FieldSet] | None,
              ) -> None:
    """Upstream's ``Updater.update``: fields another manager owns that this write changes are
    conflicts (collected when ``conflicts_out`` is given) or move to the writer; removed
    fields leave everyone."""
    changed = cmp.modified | cmp.added
    for other in managers.others(key):
        fields = managers.sets[other]
        clash = fields & changed
        if clash:
            if conflicts_out is not None:
                conflicts_out[other] = clash
            fields -= clash
        if cmp.removed:
            fields -= cmp.removed


def track_update(old: Obj | None, new: Obj, node: Node, *, manager: str, api_version: str,
                 subresource: str | None, now: str, has_status: bool) -> None:
    """Set ``new.metadata.managedFields`` for a create/update/patch by ``manager``. The managed
    fields the request carries win when non-empty (that is how a client replaces them);
    otherwise the stored ones carry on.

    This runs on every write, controllers' included, so it edits the FieldsV1 trees of the
    entries it touches instead of decoding them all: a write that changes nothing owned by
    anyone else and only fields its writer already owns leaves the entries as they were."""
    md = new.setdefault("metadata", {})
    entries = md.get("managedFields")
    if not entries and old is not None:
        entries = (old.get("metadata") or {}).get("managedFields")
    if not isinstance(entries, list):
        entries = []
    ignored = _ignored(subresource, has_status)
    skip = frozenset(("apiVersion", "kind", ignored) if ignored else ("apiVersion", "kind"))
    if old is None and not entries:
        created = mf.added_tree(_trackable(new), node, skip)
        if created:
            entry = {"manager": manager, "operation": UPDATE, "apiVersion": api_version, "time": now,
                     "fieldsType": "FieldsV1", "fieldsV1": created}
            if subresource:
                entry["subresource"] = subresource
            md["managedFields"] = [entry]
        return
    cmp = mf.compare(_trackable(old) if old is not None else {}, _trackable(new), node, skip)
    if not (cmp.added or cmp.modified or cmp.removed):
        if entries:
            md["managedFields"] = entries
        else:
            md.pop("managedFields", None)
        return
    changed = cmp.modified | cmp.added
    key: Key = (manager, UPDATE, api_version, subresource or "")
    out: list[Obj] = []
    own: Obj | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        raw = entry.get("fieldsV1")
        tree: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if _key(entry) == key and own is None:
            own = entry
            continue
        hits = [p for p in changed if mf.tree_has(tree, p)] + [p for p in cmp.removed if mf.tree_has(tree, p)]
        if hits:
            tree, touched = dict(tree), set[int]()
            for p in hits:
                mf.tree_remove(tree, p, touched)
            if not tree:
                continue
            entry = {**entry, "fieldsV1": tree}
        out.append(entry)
    own_tree = dict(own["fieldsV1"]) if own is not None and isinstance(own.get("fieldsV1"), dict) else {}
    copied: set[int] = set()
    dirty = own is None
    for p in cmp.removed:
        if mf.tree_has(own_tree, p):
            mf.tree_remove(own_tree, p, copied)
            dirty = True
    for p in sorted(changed, key=len):
        if not mf.tree_has(own_tree, p):
            mf.tree_add(own_tree, p, copied)
            dirty = True
    if own_tree:
        if dirty or own is None:
            own = {"manager": manager, "operation": UPDATE, "apiVersion": api_version, "time": now,
                   "fieldsType": "FieldsV1", "fieldsV1": own_tree}
            if subresource:
                own["subresource"] = subresource
        out.append(own)
    out.sort(key=_entry_order)
    if out:
        md["managedFields"] = out
    else:
        md.pop("managedFields", None)


def _entry_order(e: Obj) -> tuple[str, str, str, str, str]:
    """Upstream's order: Apply before Update, then by time, manager, apiVersion, subresource."""
    return (e.get("operation") or "", e.get("time") or "", e.get("manager") or "", e.get("apiVersion") or "",
            e.get("subresource") or "")


def conflict_error(conflicts: dict[Key, mf.FieldSet]) -> errors.StatusError:
    """409 with upstream's message and one ``FieldManagerConflict`` cause per field."""
    rows = []
    for key, fields in conflicts.items():
        for path in fields:
            rows.append((_identifier(key), _print_manager(key), path))
    rows.sort(key=lambda r: (r[0], mf.path_sort_key(r[2])))
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {who}", "field": mf.path_string(p)}
              for _, who, p in rows]
    if len(rows) == 1:
        message = f"Apply failed with 1 conflict: conflict with {rows[0][1]}: {mf.path_string(rows[0][2])}"
    else:
        lines: list[str] = []
        last = None
        for ident, who, path in rows:
            if ident != last:
                lines.append(f"conflicts with {who}:")
                last = ident
            lines.append(f"- {mf.path_string(path)}")
        message = f"Apply failed with {len(rows)} conflicts: " + "\n".join(lines)
    return errors.StatusError(409, "Conflict", message, {"causes": causes})


def _identifier(key: Key) -> str:
    manager, op, api_version, sub = key
    return f'{{"manager":"{manager}","operation":"{op}","apiVersion":"{api_version}","subresource":"{sub}"}}'


def _print_manager(key: Key) -> str:
    manager, op, api_version, sub = key
    text = errors.go_quote(manager)
    if sub:
        text += f" with subresource {errors.go_quote(sub)}"
    if op == UPDATE:
        text += f" using {api_version}"
    return text


def apply(live: Obj | None, config: Obj, node: Node, *, manager: str, api_version: str,
          subresource: str | None, force: bool, now: str, has_status: bool) -> Obj:
    """Server-side apply of ``config`` onto ``live`` (None: the object does not exist yet):
    the merged object with its managedFields, or 409 on conflicts unless ``force``."""
    live_obj: Obj = live if live is not None else {}
    managers = Managers((live_obj.get("metadata") or {}).get("managedFields"))
    key: Key = (manager, APPLY, "", subresource or "")
    ignored = _ignored(subresource, has_status)
    config_view = _trackable(config)
    config_set = {p for p in mf.to_set(config_view, node) if p not in mf.STRIPPED}
    if ignored:
        config_set = mf.strip_prefix(config_set, ("f:" + ignored,))
        config_view.pop(ignored, None)
    live_view = _trackable(live_obj)
    merged_view = mf.merge(live_view, config_view, node)
    last = managers.sets.get(key, set())
    managers.sets[key] = config_set
    stale = last - config_set
    if stale:
        owned = managers.owned()
        merged_view = mf.remove(merged_view, stale - owned, owned, node)
    skip = frozenset(("apiVersion", "kind", ignored) if ignored else ("apiVersion", "kind"))
    cmp = mf.compare(live_view, merged_view, node, skip)
    conflicts: dict[Key, mf.FieldSet] = {}
    _transfer(managers, key, cmp, conflicts)
    if conflicts and not force:
        raise conflict_error(conflicts)
    merged = dict(live_obj)
    for k in list(merged):
        if k not in ("apiVersion", "kind", "metadata") and k not in merged_view:
            del merged[k]
    merged.update({k: v for k, v in merged_view.items() if k != "metadata"})
    md = dict(live_obj.get("metadata") or {})
    for k in list(md):
        if k not in _META_STRIPPED and k not in (merged_view.get("metadata") or {}):
            del md[k]
    md.update(merged_view.get("metadata") or {})
    if live is None:
        cmd = config.get("metadata") or {}
        for k in ("name", "namespace", "generateName"):
            if k in cmd:
                md[k] = cmd[k]
    md["managedFields"] = managers.encode(now, key, {key: api_version})
    merged["metadata"] = md
    merged["apiVersion"] = config.get("apiVersion") or live_obj.get("apiVersion")
    merged["kind"] = config.get("kind") or live_obj.get("kind")
    return merged
