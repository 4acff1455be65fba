"""kubectl's printers: server Tables through a tabwriter (minwidth 6, padding 3),
``-o yaml|json|name|jsonpath=|jsonpath-as-json=|custom-columns=``."""

from __future__ import annotations

import json
from typing import Any

import yaml

from jobplane.api.registry import ResourceInfo
from jobplane.cli import jsonpath
from jobplane.cli.tabwriter import TabWriter

Obj = dict[str, Any]



class _GoYamlDumper(yaml.SafeDumper):
    """Quotes like sigs.k8s.io/yaml (go-yaml): double quotes, ``|`` blocks for multi-line text."""

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data and not any(line != line.rstrip() for line in data.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_GoYamlDumper.add_representer(str, _represent_str)


def kind_name(info: ResourceInfo) -> str:
    """``job.batch`` / ``pod``: how kubectl names a kind in messages."""
    return f"{info.kind.lower()}.{info.group}" if info.group else info.kind.lower()


def new_table_writer(*, watch: bool = False) -> TabWriter:
    return TabWriter(minwidth=6, padding=3, remember_widths=watch)


def _cell_text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    text = str(cell)
    for i, ch in enumerate(text):
        if ch in "\f\n\r":
            return text[:i] + "..."
    return text


def format_labels(labels: dict[str, str] | None) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


# kubectl's formatEventType: the known watch event types padded to one width, so the
# EVENT column does not widen when the first MODIFIED arrives.
_EVENT_CELLS = {"ADDED": "ADDED   ", "MODIFIED": "MODIFIED", "DELETED": "DELETED ", "BOOKMARK": "BOOKMARK",
                "ERROR": "ERROR   "}


def table_lines(table: Obj, *, wide: bool = False, with_namespace: bool = False, show_labels: bool = False,
                kind_prefix: str = "", header: bool = True, columns: list[Obj] | None = None,
                event_type: str | None = None) -> list[str]:
    """Tab-separated lines (header first) for one Table, as kubectl's HumanReadablePrinter."""
    cols = columns if columns is not None else table.get("columnDefinitions") or []
    visible = [i for i, c in enumerate(cols) if wide or not c.get("priority")]
    lines: list[str] = []
    if header:
        names = [cols[i]["name"].upper() for i in visible]
        if with_namespace:
            names.insert(0, "NAMESPACE")
        if show_labels:
            names.append("LABELS")
        if event_type is not None:
            names.insert(0, "EVENT")
        lines.append("\t".join(names))
    for row in table.get("rows") or ():
        cells = row.get("cells") or []
        out = []
        for i in visible:
            text = _cell_text(cells[i]) if i < len(cells) else ""
            if kind_prefix and cols[i].get("format") == "name":
                text = f"{kind_prefix}/{text}"
            out.append(text)
        meta = (row.get("object") or {}).get("metadata") or {}
        if with_namespace:
            out.insert(0, meta.get("namespace", ""))
        if show_labels:
            out.append(format_labels(meta.get("labels")))
        if event_type is not None:
            out.insert(0, _EVENT_CELLS.get(event_type, event_type))
        lines.append("\t".join(out))
    return lines


def as_list(items: list[Obj]) -> Obj:
    """What kubectl prints for several objects: a ``v1`` List."""
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def to_json(obj: Any) -> str:
    """``-o json``: 4-space indent, sorted keys, Go's HTML escaping."""
    text = json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_GoYamlDumper, default_flow_style=False, sort_keys=True, allow_unicode=True,
                     width=1 << 30)


def resource_name(info: ResourceInfo, obj: Obj) -> str:
    return f"{kind_name(info)}/{(obj.get('metadata') or {}).get('name', '')}"


def custom_columns(spec: str, items: list[Obj], *, header: bool = True) -> str:
    """``-o custom-columns=NAME:.metadata.name,...`` (missing values print ``<none>``)."""
    cols = []
    for part in spec.split(","):
        if ":" not in part:
            raise ValueError(f"unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>")
        name, expr = part.split(":", 1)
        cols.append((name, jsonpath.relaxed(expr)))
    w = new_table_writer()
    if header:
        w.write("\t".join(name for name, _ in cols) + "\n")
    for item in items:
        cells = []
        for _, expr in cols:
            vals = jsonpath.find_results(expr, item)
            if not vals:
                cells.append("<none>")
            else:
                cells.append(",".join(jsonpath._text(v) for v in vals))
        w.write("\t".join(cells) + "\n")
    return w.flush()


def parse_output(output: str | None) -> tuple[str, str]:
    """``-o`` value -> (format, argument): ("table", ""), ("wide", ""), ("jsonpath", "{...}")..."""
    if not output:
        return "table", ""
    for fmt in ("jsonpath-as-json", "jsonpath", "custom-columns", "go-template"):
        if output.startswith(fmt + "="):
            return fmt, output[len(fmt) + 1:]
    if output in ("wide", "yaml", "json", "name"):
        return output, ""
    raise ValueError(f'unable to match a printer suitable for the output format "{output}", allowed formats '
                     "are: custom-columns,json,jsonpath,jsonpath-as-json,name,wide,yaml")


def omit_managed_fields(obj: Obj) -> Obj:
    """kubectl's ``OmitManagedFieldsPrinter`` (no ``--show-managed-fields``): a copy without
    ``metadata.managedFields``."""
    md = obj.get("metadata")
    if not isinstance(md, dict) or "managedFields" not in md:
        return obj
    return {**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}}


def print_objects(fmt: str, arg: str, infos_objs: list[tuple[ResourceInfo, Obj]], single: bool) -> str:
    """Non-table output for objects already fetched (``single`` when one object was named)."""
    objs = [omit_managed_fields(o) for _, o in infos_objs]
    if fmt == "name":
        return "".join(resource_name(info, o) + "\n" for info, o in infos_objs)
    data: Any = objs[0] if single and len(objs) == 1 else as_list(objs)
    if fmt == "json":
        return to_json(data)
    if fmt == "yaml":
        return to_yaml(data)
    if fmt == "jsonpath":
        return jsonpath.execute(arg, data)
    if fmt == "jsonpath-as-json":
        return to_json(jsonpath.find_results(arg, data))
    if fmt == "custom-columns":
        return custom_columns(arg, objs)
    raise ValueError(f"unsupported output format {fmt}")
