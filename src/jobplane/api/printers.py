"""Server-side Table printing with upstream's columns (pkg/printers/internalversion)."""

from __future__ import annotations

from typing import Any

from jobplane.api.registry import ResourceInfo


def to_table(info: ResourceInfo, objects: list[dict[str, Any]], *, now: float,
             list_metadata: dict[str, Any] | None = None, include_object: str = "Metadata",
             with_definitions: bool = True) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table. Each row has ``cells`` and ``object`` (a
    PartialObjectMetadata when include_object == "Metadata", the full object for
    "Object", none for "None")."""
    raise NotImplementedError


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration``: 0s, 45s, 3m20s, 2h, 3d4h, ..."""
    raise NotImplementedError
