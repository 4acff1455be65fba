"""Generate ``src/jobplane/data/go-named-types-v1.32.json`` from kubernetes/api's types.go.

Upstream's JSON decoder names the Go type of a field in its errors (``... of type
v1.RestartPolicy``). The OpenAPI documents say ``string`` for such named string types, so this
records, per schema component and JSON field, the Go type of every field whose type involves a
named scalar (``type RestartPolicy string``) or ``types.UID``. Struct types are not recorded:
the decoder derives them from the schema's ``$ref``.

Usage: python research/gen_go_types.py /path/to/kubernetes-api-checkout > out.json
(the checkout at tag v0.32.5, Kubernetes 1.32.5).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

PACKAGES = ("core/v1", "batch/v1", "coordination/v1", "discovery/v1", "storage/v1", "node/v1",
            "rbac/v1", "policy/v1", "authorization/v1", "authentication/v1", "certificates/v1")
_STRUCT = re.compile(r"^type (\w+) struct \{")
_SCALAR = re.compile(r"^type (\w+) (string|int32|int64|bool|float64|map\[.*|\[\].*)\s*$")
_FIELD = re.compile(r"^\t(\w+)\s+([\w.*\[\]]+)\s+`json:\"([^\",]*)")
_BUILTIN = {"string", "int32", "int64", "bool", "float64", "byte", "int", "uint8"}


def go_type(expr: str, pkg: str) -> str:
    """reflect's ``Type.String()`` for a field type written in package ``pkg``."""
    expr = expr.lstrip("*")
    if expr.startswith("[]"):
        inner = go_type(expr[2:], pkg)
        return "[]uint8" if inner == "uint8" else "[]" + inner
    m = re.match(r"map\[([\w.]+)\](.+)", expr)
    if m:
        return f"map[{go_type(m.group(1), pkg)}]{go_type(m.group(2), pkg)}"
    if expr == "byte":
        return "uint8"
    if expr in _BUILTIN:
        return expr
    if "." in expr:
        qual, name = expr.split(".", 1)
        return f"{'v1' if qual.endswith('v1') else qual}.{name}"
    return f"{pkg}.{expr}"


def main(root: Path) -> None:
    out: dict[str, dict[str, str]] = {}
    for package in PACKAGES:
        group, version = package.split("/")
        lines = (root / package / "types.go").read_text().splitlines()
        named = {m.group(1) for line in lines if (m := _SCALAR.match(line))}
        struct = None
        for line in lines:
            if (m := _STRUCT.match(line)):
                struct = m.group(1)
                continue
            if line.startswith("}"):
                struct = None
                continue
            if struct is None or not (m := _FIELD.match(line)) or not m.group(3):
                continue
            expr = m.group(2)
            base = re.sub(r"[\[\]*]|map\[", " ", expr).split()
            if not any(t in named or t == "types.UID" for t in base):
                continue
            out.setdefault(f"io.k8s.api.{group}.{version}.{struct}", {})[m.group(3)] = go_type(expr, version)
    json.dump(out, sys.stdout, indent=0, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
