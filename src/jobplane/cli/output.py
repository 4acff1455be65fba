"""kubectl's printers: server Tables through a tabwriter (minwidth 6, padding 3),
``-o yaml|json|name|jsonpath=|jsonpath-as-json=|custom-columns=``."""

from __future__ import annotations

import functools
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


# go-yaml v2 reads these as booleans too (PyYAML does not), so sigs.k8s.io/yaml quotes them.
_GO_YAML_BOOL_WORDS = frozenset({"y", "Y", "n", "N"})


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data and not any(line != line.rstrip() for line in data.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    if data in _GO_YAML_BOOL_WORDS:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


def _go_key_less(a: str, b: str) -> bool:
    """go-yaml v2's ``keyList.Less`` for string keys: runs of digits compare as numbers
    (``k9`` before ``k10``), a non-letter before a letter."""
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            continue
        al, bl = a[i].isalpha(), b[i].isalpha()
        if al and bl:
            return a[i] < b[i]
        if al or bl:
            return bl
        an = bn = 0
        if a[i] == "0" or b[i] == "0":
            j = i - 1
            while j >= 0 and a[j].isdigit():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdigit():
            an = an * 10 + int(a[ai])
            ai += 1
        bi = i
        while bi < len(b) and b[bi].isdigit():
            bn = bn * 10 + int(b[bi])
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return a[i] < b[i]
    return len(a) < len(b)


def _go_key_cmp(a: str, b: str) -> int:
    return -1 if _go_key_less(a, b) else (1 if _go_key_less(b, a) else 0)


_go_key = functools.cmp_to_key(_go_key_cmp)


def _represent_dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    """Keys in go-yaml's order (what sigs.k8s.io/yaml, hence kubectl, prints)."""
    pairs = sorted(data.items(), key=lambda kv: _go_key(str(kv[0])))
    return dumper.represent_mapping("tag:yaml.org,2002:map", pairs)


_GoYamlDumper.add_representer(str, _represent_str)
_GoYamlDumper.add_representer(dict, _represent_dict)


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
    return _go_escape(json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)) + "\n"


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_GoYamlDumper, default_flow_style=False, sort_keys=False, allow_unicode=True,
                     width=1 << 30)


def resource_name(info: ResourceInfo, obj: Obj) -> str:
    return f"{kind_name(info)}/{(obj.get('metadata') or {}).get('name', '')}"


def custom_columns(spec: str, items: list[Obj], *, header: bool = True) -> str:
    """``-o custom-columns=NAME:.metadata.name,...`` (missing values print ``<none>``)."""
    w = new_table_writer()
    w.write("".join(line + "\n" for line in custom_columns_lines(spec, items, header=header)))
    return w.flush()


def custom_columns_lines(spec: str, items: list[Obj], *, header: bool = True) -> list[str]:
    """The tab-separated lines of ``custom_columns``, header first."""
    cols = []
    for part in spec.split(","):
        if ":" not in part:
            raise ValueError(f"unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>")
        name, expr = part.split(":", 1)
        cols.append((name, jsonpath.relaxed(expr)))
    lines = ["\t".join(name for name, _ in cols)] if header else []
    for item in items:
        cells = []
        for _, expr in cols:
            vals = jsonpath.find_results(expr, item)
            if not vals:
                cells.append("<none>")
            else:
                cells.append(",".join(jsonpath._text(v) for v in vals))
        lines.append("\t".join(cells))
    return lines


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


class ObjectStream:
    """kubectl's ``-o`` printers fed one object at a time, as ``get --watch`` prints the
    list's objects and then every event: names one a line, JSON objects one after another
    (a watch event, with ``--output-watch-events``, as one compact line), YAML documents
    separated by ``---``, JSONPath results run together, custom columns under one header."""

    def __init__(self, fmt: str, arg: str, *, event_types: bool = False, header: bool = True) -> None:
        self.fmt = fmt
        self.arg = arg
        self.event_types = event_types
        self.header = header
        self.count = 0
        self.columns = new_table_writer(watch=True)

    def text(self, info: ResourceInfo, obj: Obj, event_type: str = "ADDED") -> str:
        self.count += 1
        if not self.event_types:  # kubectl omits managedFields from objects, not from watch events
            obj = omit_managed_fields(obj)
        if self.fmt == "name":
            return resource_name(info, obj) + "\n"
        data: Any = {"type": event_type, "object": obj} if self.event_types else obj
        if self.fmt == "json":
            if self.event_types:  # metav1.WatchEvent's field order, the object's keys sorted
                compact = json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
                return _go_escape(f'{{"type":{json.dumps(event_type)},"object":{compact}}}') + "\n"
            return to_json(data)
        if self.fmt == "yaml":
            return ("---\n" if self.count > 1 else "") + to_yaml(data)
        if self.fmt == "jsonpath":
            return jsonpath.execute(self.arg, data)
        if self.fmt == "jsonpath-as-json":
            return to_json(jsonpath.find_results(self.arg, data))
        if self.fmt == "custom-columns":
            lines = custom_columns_lines(self.arg, [obj], header=self.header and self.count == 1)
            self.columns.write("".join(line + "\n" for line in lines))
            return self.columns.flush()
        raise ValueError(f"unsupported output format {self.fmt}")


def _go_escape(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
