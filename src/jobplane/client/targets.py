"""Which kind, namespace and name a client call goes to: shared by both transports, and
kept apart from ``client.inproc`` so the HTTP client (the CLI, agents) does not import the
API service to get them."""

from __future__ import annotations

from jobplane.api import errors
from jobplane.api.registry import ResourceInfo, resolve
from jobplane.client.base import Obj


def resource_info(resource: str) -> ResourceInfo:
    """``registry.resolve`` with the apiserver's 404 for unknown kinds."""
    try:
        return resolve(resource)
    except KeyError:
        raise errors.resource_not_found_path() from None


def update_target(resource: str, body: Obj, namespace: str | None) -> tuple[ResourceInfo, str | None, str]:
    """Kind, namespace and name an update of ``body`` goes to (both transports): the namespace
    from the body's metadata unless given; 400 without a name."""
    info = resource_info(resource)
    md = body.get("metadata") or {}
    if namespace is None and info.namespaced:
        namespace = md.get("namespace")
    name = md.get("name")
    if not name:
        raise errors.bad_request("name is required for update")
    return info, (namespace if info.namespaced else None), name
