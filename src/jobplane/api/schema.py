"""Structural schema checks against the shipped upstream OpenAPI v3 documents."""

from __future__ import annotations

from typing import Any

from jobplane.api.registry import ResourceInfo


def prune_unknown_fields(info: ResourceInfo, obj: dict[str, Any]) -> list[str]:
    """Remove fields the kind's schema does not know; return their dotted paths
    (``spec.bogusField``, ``spec.template.spec.containers[0].foo``) in document order."""
    raise NotImplementedError
