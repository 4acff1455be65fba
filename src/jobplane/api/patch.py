"""Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch
with upstream's patch keys (read from the shipped OpenAPI documents)."""

from __future__ import annotations

from typing import Any

from jobplane.api.registry import ResourceInfo


def apply_patch(info: ResourceInfo, original: dict[str, Any], patch: Any, patch_type: str) -> dict[str, Any]:
    """Return a new object; ``original`` is not mutated. ``patch`` is the decoded JSON body.
    Raises ``StatusError`` (400 BadRequest / 422) for a malformed patch or a failed ``test`` op."""
    raise NotImplementedError
