#!/usr/bin/env python3
"""Add messages to ``src/jobplane/data/protobuf-fieldmap-v1.32.json`` from upstream's
``generated.proto`` files (kubernetes/api at tag v0.32.5 = Kubernetes 1.32).

Usage: ``scripts/proto_fieldmap.py API_CHECKOUT_OR_GIT_DIR Root.Message ...`` where each
root is a fully qualified message (``k8s.io.api.core.v1.ConfigMap``); every message it
reaches that the map lacks is added. Field numbers and names only: the map's format is
described in its ``_about`` key.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

MAP = Path(__file__).resolve().parent.parent / "src" / "jobplane" / "data" / "protobuf-fieldmap-v1.32.json"
TAG = "v0.32.5"
PROTOS = ("core/v1", "authentication/v1", "discovery/v1", "storage/v1")
SCALARS = {"int32", "int64", "uint32", "uint64", "bool", "string", "bytes", "double", "float", "sint32", "sint64"}
_FIELD = re.compile(r"^\s*(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)")
_MAP = re.compile(r"^\s*map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)")


def _read(repo: Path, rel: str) -> str:
    if (repo / rel).exists():
        return (repo / rel).read_text()
    return subprocess.run(["git", "-C", str(repo), "show", f"{TAG}:{rel}"], check=True,
                          capture_output=True, text=True).stdout


def _qualify(name: str, package: str) -> str:
    if name in SCALARS:
        return name
    if name.startswith("."):
        return name[1:]
    return f"{package}.{name}"


def parse(text: str) -> dict[str, dict[str, list]]:
    package = re.search(r"^package\s+([\w.]+);", text, re.M).group(1)
    out: dict[str, dict[str, list]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^message\s+(\w+)\s*{", line)
        if m:
            current = out.setdefault(f"{package}.{m.group(1)}", {})
            continue
        if current is None:
            continue
        if line.startswith("}"):
            current = None
            continue
        m = _MAP.match(line)
        if m:
            current[m.group(4)] = [m.group(3), "map", "optional",
                                   [_qualify(m.group(1), package), _qualify(m.group(2), package)]]
            continue
        m = _FIELD.match(line)
        if m:
            current[m.group(4)] = [m.group(3), _qualify(m.group(2), package), m.group(1)]
    return out


def main(argv: list[str]) -> None:
    repo, roots = Path(argv[0]), argv[1:]
    upstream: dict[str, dict[str, list]] = {}
    for rel in PROTOS:
        upstream.update(parse(_read(repo, f"{rel}/generated.proto")))
    doc = json.loads(MAP.read_text())
    messages = doc["messages"]
    todo, added = list(roots), []
    while todo:
        name = todo.pop()
        if name in messages or name not in upstream:
            continue
        messages[name] = upstream[name]
        added.append(name)
        for entry in upstream[name].values():
            for kind in ([entry[1]] if entry[1] != "map" else entry[3]):
                if kind not in SCALARS:
                    todo.append(kind)
    doc["messages"] = dict(sorted(messages.items()))
    MAP.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    print(f"added {len(added)} messages: {', '.join(sorted(added))}")


if __name__ == "__main__":
    main(sys.argv[1:])
