"""Generate ``src/jobplane/data/go-omitempty-v1.32.json`` from kubernetes/api's and
kubernetes/apimachinery's types.go.

Upstream stores and serves what Go's ``encoding/json`` writes after decoding a body into the
API structs: a field tagged ``omitempty`` is left out when it holds its zero value (``""``,
``0``, ``false``, an empty list or map, or ``null``), a pointer field only when it is ``nil``.
The OpenAPI documents cannot tell a pointer (``suspend: false`` is kept) from a plain
``omitempty`` field (``stdin: false`` is dropped), so this records, per schema component and
JSON field: ``"p"`` for a pointer, ``"o"`` for a non-pointer field tagged ``omitempty``.
Embedded ``json:",inline"`` structs are flattened into their parent, as the schema does.

Usage: python research/gen_go_omitempty.py /path/to/kubernetes-api-checkout \
           /path/to/kubernetes-apimachinery-checkout > out.json
(both at tag v0.32.5, Kubernetes 1.32.5).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

PACKAGES = ("core/v1", "batch/v1", "coordination/v1", "discovery/v1", "storage/v1", "node/v1",
            "rbac/v1", "policy/v1", "authorization/v1", "authentication/v1", "certificates/v1")
META = "pkg/apis/meta/v1"
_STRUCT = re.compile(r"^type (\w+) struct \{")
_FIELD = re.compile(r"^\t(\w+)\s+([\w.*\[\]]+)\s+`json:\"([^\"]*)\"")
_EMBED = re.compile(r"^\t([\w.]+)\s+`json:\",inline\"")


def parse(text: str) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    """struct -> {json name: "p" | "o" | ""}, and struct -> its inline embedded structs."""
    fields: dict[str, dict[str, str]] = {}
    embeds: dict[str, list[str]] = {}
    struct = None
    for line in text.splitlines():
        if (m := _STRUCT.match(line)):
            struct = m.group(1)
            fields[struct], embeds[struct] = {}, []
            continue
        if line.startswith("}"):
            struct = None
            continue
        if struct is None:
            continue
        if (e := _EMBED.match(line)):
            embeds[struct].append(e.group(1).split(".")[-1])
            continue
        if (m := _FIELD.match(line)):
            _, expr, tag = m.groups()
            name, _, opts = tag.partition(",")
            if not name or name == "-":
                continue
            pointer = expr.startswith("*")
            omitempty = "omitempty" in opts.split(",")
            fields[struct][name] = "p" if pointer else ("o" if omitempty else "")
    return fields, embeds


def flatten(fields: dict[str, dict[str, str]], embeds: dict[str, list[str]], struct: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for inner in embeds.get(struct, ()):
        if inner in fields:
            out.update(flatten(fields, embeds, inner))
    out.update(fields.get(struct, {}))
    return out


def main(api: Path, machinery: Path) -> None:
    out: dict[str, dict[str, str]] = {}
    sources = [(f"io.k8s.api.{p.split('/')[0]}.{p.split('/')[1]}", api / p / "types.go") for p in PACKAGES]
    sources.append(("io.k8s.apimachinery.pkg.apis.meta.v1", machinery / META / "types.go"))
    for prefix, path in sources:
        fields, embeds = parse(path.read_text())
        for struct in fields:
            codes = {k: v for k, v in flatten(fields, embeds, struct).items() if v}
            if codes:
                out[f"{prefix}.{struct}"] = dict(sorted(codes.items()))
    json.dump({"_about": "Per OpenAPI component and JSON field: p = Go pointer (omitted when nil), "
               "o = non-pointer field tagged omitempty (omitted when zero). From kubernetes/api and "
               "kubernetes/apimachinery v0.32.5 types.go by research/gen_go_omitempty.py. Apache-2.0 facts.",
               **dict(sorted(out.items()))}, sys.stdout, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
