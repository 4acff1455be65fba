"""Pieces every ``kubectl describe`` output shares (k8s.io/kubectl/pkg/describe/describe.go):
the PrefixWriter over a Go-style tabwriter, Go value formatting, the labels / annotations /
tolerations blocks and the Events section.

Why a module of its own: each kind's describer is written from these, so the column
alignment and the ``<none>`` / ``<unset>`` conventions are kubectl's everywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobplane.api.printers import parse_ts, since
from jobplane.api.selectors import label_selector_string
from jobplane.cli.tabwriter import tabify

Obj = dict[str, Any]

_SKIP_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration"}
_MAX_ANNOTATION_LEN = 140


class PrefixWriter:
    """describe.go's PrefixWriter: ``write(level, text)`` indents by 2 spaces per level."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, level: int, text: str) -> None:
        self.parts.append("  " * level + text)

    def line(self, text: str = "") -> None:
        self.parts.append(text + "\n")

    def render(self) -> str:
        return tabify("".join(self.parts), minwidth=0, padding=2)


def rfc1123z(value: str | None) -> str:
    """Go's ``time.RFC1123Z`` in the local zone: ``Mon, 02 Jan 2006 15:04:05 -0700``."""
    ts = parse_ts(value) if value else None
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts).astimezone().strftime("%a, %d %b %Y %H:%M:%S %z")


def go_bool(v: Any) -> str:
    return "true" if v else "false"


def print_bool(v: Any) -> str:
    return "True" if v else "False"


def bool_ptr(v: Any) -> str:
    return "<unset>" if v is None else print_bool(v)


def labels_multiline(w: PrefixWriter, title: str, labels: dict[str, str] | None,
                     initial_indent: str = "", inner_indent: str = "\t") -> None:
    w.write(0, f"{initial_indent}{title}:{inner_indent}")
    if not labels:
        w.line("<none>")
        return
    for i, key in enumerate(sorted(labels)):
        if i:
            w.write(0, initial_indent + inner_indent)
        w.write(0, f"{key}={labels[key]}\n")


def annotations_multiline(w: PrefixWriter, title: str, annotations: dict[str, str] | None) -> None:
    w.write(0, f"{title}:\t")
    keys = sorted(k for k in (annotations or {}) if k not in _SKIP_ANNOTATIONS)
    if not keys:
        w.line("<none>")
        return
    for i, key in enumerate(keys):
        if i:
            w.write(0, "\t")
        value = annotations[key].removesuffix("\n")  # type: ignore[index]
        if len(value) + len(key) + 2 > _MAX_ANNOTATION_LEN or "\n" in value:
            w.write(0, f"{key}:\n")
            for s in value.split("\n"):
                short = s if len(s) <= _MAX_ANNOTATION_LEN - 2 else s[:_MAX_ANNOTATION_LEN - 2] + "..."
                w.write(0, f"\t  {short}\n")
        else:
            w.write(0, f"{key}: {value}\n")


def tolerations_multiline(w: PrefixWriter, title: str, tolerations: list[Obj] | None,
                          initial_indent: str = "", inner_indent: str = "\t") -> None:
    w.write(0, f"{initial_indent}{title}:{inner_indent}")
    if not tolerations:
        w.line("<none>")
        return
    for i, t in enumerate(tolerations):
        if i:
            w.write(0, initial_indent + inner_indent)
        text = t.get("key", "")
        if t.get("value"):
            text += "=" + t["value"]
        if t.get("effect"):
            text += ":" + t["effect"]
        if t.get("operator") == "Exists" and not t.get("value"):
            text += " op=Exists" if (t.get("key") or t.get("effect")) else "op=Exists"
        if t.get("tolerationSeconds") is not None:
            text += f" for {t['tolerationSeconds']}s"
        w.write(0, text + "\n")


def controlled_by(obj: Obj) -> str:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return ""


def selector_text(sel: Obj | None) -> str:
    """``LabelSelectorAsSelector(sel).String()``: empty for nil or ``{}``."""
    if not sel:
        return ""
    text = label_selector_string(sel)
    return "" if text == "<none>" else text


def describe_events(w: PrefixWriter, events: list[Obj] | None, now: float) -> None:
    if not events:
        w.write(0, "Events:\t<none>\n")
        return
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(1, "----\t------\t----\t----\t-------\n")

    def sort_key(e: Obj) -> float:
        return parse_ts(e.get("lastTimestamp") or e.get("eventTime") or "") or 0.0

    for e in sorted(events, key=sort_key):
        first = since(e["eventTime"], now) if e.get("eventTime") else since(e.get("firstTimestamp"), now)
        series = e.get("series")
        if series:
            interval = f"{since(series.get('lastObservedTime'), now)} (x{series.get('count')} over {first})"
        elif (e.get("count") or 0) > 1:
            interval = f"{since(e.get('lastTimestamp'), now)} (x{e['count']} over {first})"
        else:
            interval = first
        source = (e.get("source") or {}).get("component") or e.get("reportingController") or ""
        w.write(1, f"{e.get('type', '')}\t{e.get('reason', '')}\t{interval}\t{source}\t"
                   f"{(e.get('message') or '').strip()}\n")
