"""Label and field selectors: the string forms (``?labelSelector=``), metav1.LabelSelector
dicts, and matching. Errors are 400 BadRequest as upstream's parser gives them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jobplane.api.errors import StatusError, bad_request

_IN_RE = re.compile(r"^\s*(!?)\s*([^\s!=,()]+)\s*(?:(notin|in)\s*\(([^)]*)\)|(==|=|!=)\s*([^\s,()]*))?\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        if self.op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        return False

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return "!" + self.key
        if self.op in ("=", "!="):
            return f"{self.key}{self.op}{self.values[0]}"
        return f"{self.key} {self.op} ({','.join(self.values)})"


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements. ``nothing=True`` matches no object (a nil selector)."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.nothing and not self.requirements

    def equality_pairs(self) -> dict[str, str]:
        """``k=v`` requirements, usable as an index hint by stores."""
        return {r.key: r.values[0] for r in self.requirements if r.op in ("=", "in") and len(r.values) == 1}

    def matcher(self) -> Callable[[Mapping[str, str] | None], bool]:
        """``matches`` compiled for a hot loop (LIST/watch filtering): a selector of only
        ``k=v`` requirements becomes direct dict lookups instead of the generic walk."""
        if self.nothing:
            return lambda labels: False
        if not self.requirements:
            return lambda labels: True
        pairs = self.equality_pairs()
        if len(pairs) != len(self.requirements):  # other operators, or a key required twice
            return self.matches
        if len(pairs) == 1:
            ((key, value),) = pairs.items()
            return lambda labels: bool(labels) and labels.get(key) == value  # type: ignore[union-attr]
        items = tuple(pairs.items())

        def match_all(labels: Mapping[str, str] | None) -> bool:
            if not labels:
                return False
            for k, v in items:
                if labels.get(k) != v:
                    return False
            return True

        return match_all

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``a=b,c!=d,e in (f,g),!h,i``. Raises StatusError 400 on bad syntax."""
    if text is None or not text.strip():
        return EVERYTHING
    reqs: list[Requirement] = []
    for part in _split_top_level(text):
        if not part.strip():
            raise bad_request(f"unable to parse requirement: found '', expected: identifier in {text!r}")
        m = _IN_RE.match(part)
        if not m:
            raise bad_request(f"unable to parse requirement: invalid label selector {part.strip()!r}")
        bang, key, setop, setvals, eqop, eqval = m.groups()
        if bang:
            if setop or eqop:
                raise bad_request(f"unable to parse requirement: invalid label selector {part.strip()!r}")
            reqs.append(Requirement(key, "!"))
        elif setop:
            vals = tuple(sorted(v.strip() for v in setvals.split(",") if v.strip()))
            reqs.append(Requirement(key, setop, vals))
        elif eqop:
            reqs.append(Requirement(key, "!=" if eqop == "!=" else "=", (eqval,)))
        else:
            reqs.append(Requirement(key, "exists"))
    return LabelSelector(tuple(reqs))


def from_label_selector_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelector -> LabelSelector. None matches nothing; ``{}`` matches everything."""
    if sel is None:
        return NOTHING
    reqs: list[Requirement] = []
    for k, v in sorted((sel.get("matchLabels") or {}).items()):
        reqs.append(Requirement(k, "=", (str(v),)))
    for expr in sel.get("matchExpressions") or ():
        op = expr.get("operator")
        key = expr.get("key", "")
        vals = tuple(sorted(expr.get("values") or ()))
        if op == "In":
            reqs.append(Requirement(key, "in", vals))
        elif op == "NotIn":
            reqs.append(Requirement(key, "notin", vals))
        elif op == "Exists":
            reqs.append(Requirement(key, "exists"))
        elif op == "DoesNotExist":
            reqs.append(Requirement(key, "!"))
        else:
            raise StatusError(422, "Invalid", f'"{op}" is not a valid label selector operator')
    return LabelSelector(tuple(reqs))


def label_selector_string(sel: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: ``k=v,k2 in (a,b)``; ``<none>`` for empty, ``<error>`` for nil."""
    if sel is None:
        return "<none>"
    text = str(from_label_selector_dict(sel))
    return text or "<none>"


# ---------------------------------------------------------------------------
# Field selectors


def _get_path(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
        if cur is None:
            return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


# Fields each kind supports beyond metadata.name / metadata.namespace (upstream's field label conversion).
SUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type", "regarding.kind", "regarding.name",
              "regarding.namespace", "regarding.uid"),
    "Job": ("status.successful",),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),
    "Secret": ("type",),
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if self.field == "source":
            actual = _get_path(obj, "source.component")
        elif self.field == "status.successful":
            actual = str((obj.get("status") or {}).get("succeeded") or 0)
        else:
            actual = _get_path(obj, self.field)
        return (actual == self.value) if self.op == "=" else (actual != self.value)


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def value_of(self, field: str) -> str | None:
        for r in self.requirements:
            if r.field == field and r.op == "=":
                return r.value
        return None


def parse_field_selector(text: str | None, kind: str = "") -> FieldSelector:
    """Parse ``metadata.name=pi,status.phase!=Running``; unknown fields for ``kind`` are a 400
    ``field label not supported: <f>`` as upstream."""
    if text is None or not text.strip():
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    allowed = ("metadata.name", "metadata.namespace") + SUPPORTED_FIELDS.get(kind, ())
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        for op in ("!=", "==", "="):
            if op in part:
                f, _, v = part.partition(op)
                f = f.strip()
                if kind and f not in allowed:
                    raise bad_request(f'field label not supported: {f}')
                reqs.append(FieldRequirement(f, "!=" if op == "!=" else "=", v.strip()))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return FieldSelector(tuple(reqs))


def predicate(label_selector: str | None, field_selector: str | None, kind: str = ""
              ) -> Callable[[Mapping[str, Any]], bool] | None:
    """A single filter for a list/watch, or None when both selectors are empty."""
    ls = parse_label_selector(label_selector)
    fs = parse_field_selector(field_selector, kind)
    return object_predicate(ls, fs)


def object_predicate(ls: LabelSelector, fs: FieldSelector) -> Callable[[Mapping[str, Any]], bool] | None:
    """One filter over whole objects for a parsed label and field selector (None: no filter).
    Skips the field selector when it is empty and uses the compiled label matcher."""
    if ls.empty() and fs.empty():
        return None
    if ls.empty():
        return fs.matches
    labels_match = ls.matcher()
    if fs.empty():
        return lambda o: labels_match((o.get("metadata") or {}).get("labels"))
    fields_match = fs.matches
    return lambda o: labels_match((o.get("metadata") or {}).get("labels")) and fields_match(o)
