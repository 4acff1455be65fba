"""Admission: defaulting, the registry strategies (PrepareForCreate/Update) and validation,
in upstream's order. ``apiserver.service.ApiService`` calls exactly these three functions.

Each mutates ``obj`` in place (defaults, generated selector, cleared status...) and raises
``StatusError`` (422 Invalid via ``errors.invalid_object``) when validation fails, so that
nothing invalid is stored. They return a list of warning strings (sent as ``Warning: 299``).

Called by the service *after* it has filled the server-owned metadata (namespace, name
from generateName, uid, creationTimestamp, generation=1 on create) — see service.py.
"""

from __future__ import annotations

from typing import Any

from jobplane.api.registry import ResourceInfo

Obj = dict[str, Any]


def admit_create(info: ResourceInfo, obj: Obj) -> list[str]:
    raise NotImplementedError


def admit_update(info: ResourceInfo, new: Obj, old: Obj) -> list[str]:
    """Spec/metadata update (PUT or PATCH on the main resource). ``new.status`` is reset to
    ``old.status`` by the strategy for kinds with a status subresource; ``generation`` bumps
    when the spec changes."""
    raise NotImplementedError


def admit_status_update(info: ResourceInfo, new: Obj, old: Obj) -> list[str]:
    """Update through the ``/status`` subresource: everything but status is reset to ``old``."""
    raise NotImplementedError
