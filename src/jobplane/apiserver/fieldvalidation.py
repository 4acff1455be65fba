"""``fieldValidation`` (Strict / Warn / Ignore) for request bodies.

Unknown fields are always dropped (upstream prunes them); Strict turns them into a 400
with the decoder's exact text, Warn into ``Warning: 299`` headers.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from typing import Any

from jobplane.api import errors
from jobplane.api.registry import ResourceInfo

STRICT = "Strict"
WARN = "Warn"
IGNORE = "Ignore"
_MODES = (STRICT, WARN, IGNORE)
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_mode(value: str | None) -> str:
    """The query value; upstream's default for a request without it is Warn."""
    if not value:
        return WARN
    if value not in _MODES:
        raise errors.bad_request(
            f"fieldValidation parameter unsupported: {value}. Supported values are: Ignore, Warn, Strict")
    return value


def _unknown(path: str) -> str:
    """``unknown field "<path>"``, the path quoted as Go's ``%q`` (a CR/LF in a field name
    shows as ``\\r\\n``, so it can travel in a header)."""
    return f"unknown field {errors.go_quote(path)}"


def strict_error(info: ResourceInfo, unknown: list[str]) -> errors.StatusError:
    detail = ", ".join(_unknown(p) for p in unknown)
    return errors.bad_request(
        f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
        f"strict decoding error: {detail}")


def valid_warning(text: str) -> bool:
    """Upstream's ``NewWarningHeader`` refuses text with control characters (a field name
    holding CR/LF), and its recorder then drops that warning."""
    return not any(unicodedata.category(c) == "Cc" for c in text)


def warning_header(text: str) -> str:
    """``299 - "<text>"`` with Go-style quoting."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def _prune(info: ResourceInfo, obj: dict[str, Any]) -> list[str]:
    from jobplane.api import schema

    return schema.prune_unknown_fields(info, obj)


def check_object(info: ResourceInfo, obj: dict[str, Any], mode: str) -> list[str]:
    """Prune unknown fields from a full object (create/update); return warning texts."""
    unknown = _prune(info, obj)
    return _verdict(info, unknown, mode)


def _verdict(info: ResourceInfo, unknown: list[str], mode: str) -> list[str]:
    if not unknown:
        return []
    if mode == STRICT:
        raise strict_error(info, unknown)
    if mode == WARN:
        return [_unknown(p) for p in unknown]
    return []


def _without_directives(value: Any) -> Any:
    """A copy of a merge/strategic patch with ``$``-directives removed; list indexes are kept
    so the pruned paths still point into the original patch."""
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_without_directives(v) for v in value]
    return value


def drop_path(obj: Any, path: str) -> None:
    """Remove the field a dotted path (``spec.template.spec.containers[0].foo``) names."""
    tokens: list[str | int] = [m.group(1) if m.group(1) is not None else int(m.group(2))
                               for m in _PATH_TOKEN.finditer(path)]
    node = obj
    for tok in tokens[:-1]:
        try:
            node = node[tok]
        except (KeyError, IndexError, TypeError):
            return
    last = tokens[-1] if tokens else None
    if isinstance(node, dict) and isinstance(last, str):
        node.pop(last, None)


def check_patch(info: ResourceInfo, patch: Any, patch_type: str, mode: str) -> list[str]:
    """Unknown fields in a merge / strategic-merge patch body (which has the object's shape):
    dropped from ``patch`` in place; Strict -> 400, Warn -> warning texts. JSON patches
    are not checked."""
    if not isinstance(patch, dict) or patch_type.endswith("json-patch+json"):
        return []
    probe = _without_directives(copy.deepcopy(patch))
    probe.setdefault("apiVersion", info.api_version)
    probe.setdefault("kind", info.kind)
    unknown = _prune(info, probe)
    warnings = _verdict(info, unknown, mode)
    for path in unknown:
        drop_path(patch, path)
    return warnings
