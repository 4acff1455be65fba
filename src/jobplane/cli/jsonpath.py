"""kubectl's JSONPath templates (k8s.io/client-go/util/jsonpath).

``{.items[*].metadata.name}``, ``{range .items[*]}{.metadata.name}{"\\n"}{end}``,
filters ``[?(@.status.phase=="Running")]``, recursive descent ``..``, indices,
slices, unions and literal text. Results of one action are joined by a space;
maps and lists print as compact JSON, as kubectl does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


class JSONPathError(ValueError):
    pass


_MISSING = object()

# --------------------------------------------------------------------------- template parsing


@dataclass
class Text:
    text: str


@dataclass
class Expr:
    steps: list[Any]  # parsed path steps
    source: str


@dataclass
class Range:
    expr: Expr
    body: list[Any] = field(default_factory=list)


def _split_actions(template: str) -> list[tuple[str, str]]:
    """('text', s) and ('action', inner) pieces; braces inside quotes do not count."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(template)
    buf: list[str] = []
    while i < n:
        ch = template[i]
        if ch == "{":
            if buf:
                out.append(("text", "".join(buf)))
                buf = []
            close = _find_close(template, i, "{", "}")
            if close is None:
                raise JSONPathError(f"unclosed action in {template!r}")
            out.append(("action", template[i + 1:close]))
            i = close + 1
        else:
            buf.append(ch)
            i += 1
    if buf:
        out.append(("text", "".join(buf)))
    return out


def _unquote(s: str) -> str:
    if s.startswith('"'):
        return json.loads(s)
    # single quotes: Go's strconv.Unquote is not used for them; take the content
    return s[1:-1]


def parse(template: str) -> list[Any]:
    """Parse a template into nodes (Text, Expr, Range with body)."""
    root: list[Any] = []
    stack: list[list[Any]] = [root]
    for kind, piece in _split_actions(template):
        if kind == "text":
            stack[-1].append(Text(piece))
            continue
        inner = piece.strip()
        if re.match(r"range(?![A-Za-z0-9_])", inner):
            r = Range(Expr(_parse_path(inner[5:].strip()), inner[5:].strip()))
            stack[-1].append(r)
            stack.append(r.body)
        elif inner == "end":
            if len(stack) == 1:
                raise JSONPathError("not in range, nothing to end")
            stack.pop()
        elif inner[:1] in "\"'" and inner[-1:] == inner[:1] and len(inner) >= 2:
            stack[-1].append(Text(_unquote(inner)))
        else:
            stack[-1].append(Expr(_parse_path(inner), inner))
    if len(stack) != 1:
        raise JSONPathError("unclosed range")
    return root


_IDENT = re.compile(r"[A-Za-z0-9_\-/$]+")


def _parse_path(text: str) -> list[Any]:
    """Steps: ('field', name), ('recurse',), ('index', [..]), ('slice', a, b, c), ('wild',),
    ('filter', lhs_steps, op, rhs), ('union', [steps...])."""
    steps: list[Any] = []
    i, n = 0, len(text)
    if text.startswith("$"):
        i = 1
    elif text.startswith("@"):
        i = 1
    while i < n:
        ch = text[i]
        if ch == ".":
            if text.startswith("..", i):
                steps.append(("recurse",))
                i += 2
                if i < n and text[i] == "[":
                    continue
            else:
                i += 1
            if i < n and text[i] == "*":
                steps.append(("wild",))
                i += 1
                continue
            m = _IDENT.match(text, i)
            if m:
                steps.append(("field", m.group(0)))
                i = m.end()
        elif ch == "[":
            j = _match_bracket(text, i)
            steps.append(_parse_bracket(text[i + 1:j]))
            i = j + 1
        elif ch.isspace():
            i += 1
        else:
            m = _IDENT.match(text, i)
            if not m:
                raise JSONPathError(f"unrecognized character in action: {text[i:]!r}")
            steps.append(("field", m.group(0)))
            i = m.end()
    return steps


def _find_close(text: str, start: int, open_ch: str, close_ch: str) -> int | None:
    """Index of the ``close_ch`` that balances the ``open_ch`` at ``start``; brackets inside
    quoted strings (with backslash escapes) do not count. None when it never closes."""
    depth, quote, j = 0, "", start
    while j < len(text):
        c = text[j]
        if quote:
            if c == "\\":
                j += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return None


def _match_bracket(text: str, start: int) -> int:
    j = _find_close(text, start, "[", "]")
    if j is None:
        raise JSONPathError(f"unterminated array in {text!r}")
    return j


_FILTER = re.compile(r"^\?\((.*)\)$", re.S)
_COMPARE = re.compile(r"^(.*?)\s*(==|!=|<=|>=|<|>|=~)\s*(.*)$", re.S)


def _parse_bracket(inner: str) -> Any:
    inner = inner.strip()
    m = _FILTER.match(inner)
    if m:
        cond = m.group(1).strip()
        cm = _COMPARE.match(cond)
        if cm:
            return ("filter", _parse_path(cm.group(1).strip()), cm.group(2), _parse_literal(cm.group(3).strip()))
        return ("filter", _parse_path(cond), "exists", None)
    if inner == "*":
        return ("wild",)
    if inner[:1] in "\"'":
        names = [_unquote(p.strip()) for p in _split_commas(inner)]
        return ("fields", names)
    if ":" in inner:
        parts = inner.split(":")
        if len(parts) > 3:
            raise JSONPathError(f"invalid slice {inner!r}")
        vals = [int(p) if p.strip() else None for p in parts] + [None] * (3 - len(parts))
        return ("slice", vals[0], vals[1], vals[2])
    if "," in inner:
        return ("index", [int(p) for p in inner.split(",")])
    if re.fullmatch(r"-?\d+", inner):
        return ("index", [int(inner)])
    return ("fields", [inner])


def _split_commas(text: str) -> list[str]:
    parts, cur, quote = [], [], ""
    for c in text:
        if quote:
            cur.append(c)
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
            cur.append(c)
        elif c == ",":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def _parse_literal(text: str) -> Any:
    if text[:1] in "\"'":
        return _unquote(text)
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if text.startswith("@") or text.startswith("$"):
        return ("path", _parse_path(text))
    return text


# --------------------------------------------------------------------------- evaluation


def _walk_all(value: Any) -> list[Any]:
    """Value and all its descendants, depth first (for ``..``)."""
    out = [value]
    if isinstance(value, dict):
        for v in value.values():
            out.extend(_walk_all(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_walk_all(v))
    return out


def _apply_step(values: list[Any], step: Any, root: Any) -> list[Any]:
    kind = step[0]
    out: list[Any] = []
    if kind == "field":
        for v in values:
            if isinstance(v, dict) and step[1] in v:
                out.append(v[step[1]])
    elif kind == "fields":
        for v in values:
            if isinstance(v, dict):
                out.extend(v[name] for name in step[1] if name in v)
    elif kind == "recurse":
        for v in values:
            out.extend(_walk_all(v))
    elif kind == "wild":
        for v in values:
            if isinstance(v, dict):
                out.extend(v[k] for k in sorted(v))
            elif isinstance(v, list):
                out.extend(v)
    elif kind == "index":
        for v in values:
            if isinstance(v, list):
                for idx in step[1]:
                    if -len(v) <= idx < len(v):
                        out.append(v[idx])
                    else:
                        raise JSONPathError(f"array index out of bounds: index {idx}, length {len(v)}")
    elif kind == "slice":
        for v in values:
            if isinstance(v, list):
                out.extend(v[slice(step[1], step[2], step[3])])
    elif kind == "filter":
        _, lhs, op, rhs = step
        for v in values:
            items = v if isinstance(v, list) else ([v[k] for k in sorted(v)] if isinstance(v, dict) else [])
            for item in items:
                if _filter_match(item, lhs, op, rhs, root):
                    out.append(item)
    return out


def _filter_match(item: Any, lhs: list[Any], op: str, rhs: Any, root: Any) -> bool:
    left = _eval_steps([item], lhs, root)
    if op == "exists":
        return bool(left)
    if isinstance(rhs, tuple) and rhs and rhs[0] == "path":
        right_vals = _eval_steps([item], rhs[1], root)
        if not right_vals:
            return False
        rhs = right_vals[0]
    if not left:
        return False
    lv = left[0]
    try:
        if op == "==":
            return _norm(lv) == _norm(rhs)
        if op == "!=":
            return _norm(lv) != _norm(rhs)
        if op == "=~":
            return isinstance(lv, str) and re.search(str(rhs), lv) is not None
        a, b = _norm(lv), _norm(rhs)
        if op == "<":
            return a < b
        if op == ">":
            return a > b
        if op == "<=":
            return a <= b
        if op == ">=":
            return a >= b
    except TypeError:
        return False
    return False


def _norm(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return float(v)
    return v


def _eval_steps(values: list[Any], steps: list[Any], root: Any) -> list[Any]:
    for step in steps:
        values = _apply_step(values, step, root)
    return values


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _render(nodes: list[Any], data: Any, root: Any, out: list[str], allow_missing: bool) -> None:
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Expr):
            vals = _eval_steps([data], node.steps, root)
            if not vals and node.steps and not allow_missing:
                raise JSONPathError(f"{_last_field(node)} is not found")
            out.append(" ".join(_text(v) for v in vals))
        elif isinstance(node, Range):
            vals = _eval_steps([data], node.expr.steps, root)
            for v in vals:
                _render(node.body, v, root, out, allow_missing)


def _last_field(node: Expr) -> str:
    for step in reversed(node.steps):
        if step[0] == "field":
            return step[1]
    return node.source


def execute(template: str, data: Any, *, allow_missing: bool = True) -> str:
    """Render ``template`` against ``data`` the way ``kubectl -o jsonpath=`` prints it."""
    return render(parse(template), data, allow_missing=allow_missing)


def render(nodes: list[Any], data: Any, *, allow_missing: bool = True) -> str:
    out: list[str] = []
    _render(nodes, data, data, out, allow_missing)
    return "".join(out)


def find_results(expression: str, data: Any) -> list[Any]:
    """Raw values of one path expression (for custom-columns and ``jsonpath-as-json``)."""
    out: list[Any] = []
    for node in parse(expression):
        if isinstance(node, Expr):
            out.extend(_eval_steps([data], node.steps, data))
    return out


def relaxed(expression: str) -> str:
    """``RelaxedJSONPathExpression``: ``.a.b`` / ``a.b`` / ``{.a.b}`` all become ``{.a.b}``."""
    expr = expression.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    if expr.startswith("$"):
        expr = expr[1:]
    if expr and not expr.startswith(".") and not expr.startswith("["):
        expr = "." + expr
    return "{" + expr + "}"
