"""Read manifests as kubectl's ``-f`` does: multi-document YAML or JSON from a
file, a directory (``.yaml``, ``.yml``, ``.json``) or ``-`` (stdin); ``kind: List``
is expanded into its items."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

_EXTENSIONS = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    pass


def parse_documents(text: str, source: str = "") -> list[dict[str, Any]]:
    """Objects in a YAML/JSON stream; empty documents are skipped."""
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        raise ManifestError(f'error parsing {source or "input"}: {exc}') from exc
    out: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(f"error validating {source or 'input'}: expected an object, got {type(doc).__name__}")
        if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            out.extend(item for item in doc["items"] if isinstance(item, dict))
            continue
        if not doc.get("kind"):
            raise ManifestError(f'error validating "{source}": error validating data: kind not set')
        if not doc.get("apiVersion"):
            raise ManifestError(f'error validating "{source}": error validating data: apiVersion not set')
        out.append(doc)
    return out


def load(paths: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(source, object) pairs from every ``-f`` argument, in order."""
    out: list[tuple[str, dict[str, Any]]] = []
    for p in paths:
        if p == "-":
            out.extend(("STDIN", d) for d in parse_documents(sys.stdin.read(), "STDIN"))
            continue
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.suffix in _EXTENSIONS and f.is_file())
        elif path.exists():
            files = [path]
        else:
            raise ManifestError(f'the path "{p}" does not exist')
        for f in files:
            out.extend((str(f), d) for d in parse_documents(f.read_text(), str(f)))
    return out
