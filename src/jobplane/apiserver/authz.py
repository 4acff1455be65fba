"""Authorization: the attributes of a request, the authorizer chain and upstream's 403.

kube-apiserver's default chain for a kubeadm cluster is ``Node,RBAC`` behind the
privileged-group check (``system:masters`` may do anything). ``check`` raises the
``Forbidden`` Status with upstream's message, e.g. ``jobs.batch is forbidden: User
"alice" cannot create resource "jobs" in API group "batch" in the namespace "team-b"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from jobplane.api import errors
from jobplane.api.rbac import Attributes
from jobplane.api.registry import ResourceInfo
from jobplane.apiserver.identity import MASTERS, UserInfo

Decision = tuple[bool, str]  # (allowed, reason)


class Authorizer(Protocol):
    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision: ...


class AlwaysAllow:
    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        return True, ""


class Chain:
    """Each authorizer in turn; the first that allows wins (upstream's union authorizer,
    where no opinion passes on). ``system:masters`` is allowed before any of them."""

    def __init__(self, authorizers: Sequence[Any]) -> None:
        self.authorizers = list(authorizers)

    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        if MASTERS in user.groups:
            return True, ""
        reasons = []
        for a in self.authorizers:
            allowed, reason = a.authorize(user, attrs)
            if allowed:
                return True, reason
            if reason:
                reasons.append(reason)
        return False, ", ".join(reasons)

    async def recheck(self, user: UserInfo, attrs: Attributes) -> bool:
        """A second, slower look by the authorizers that keep an index which may lag the store
        (the Node authorizer's graph)."""
        for a in self.authorizers:
            again = getattr(a, "recheck", None)
            if again is not None and await again(user, attrs):
                return True
        return False


def forbidden_message(user: UserInfo, a: Attributes) -> str:
    """``forbiddenMessage`` in apiserver's responsewriters."""
    if not a.resource_request:
        return f'User "{user.name}" cannot {a.verb} path "{a.path}"'
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    if a.namespace:
        return (f'User "{user.name}" cannot {a.verb} resource "{resource}" in API group "{a.api_group}" '
                f'in the namespace "{a.namespace}"')
    return f'User "{user.name}" cannot {a.verb} resource "{resource}" in API group "{a.api_group}" at the cluster scope'


def forbidden(user: UserInfo, a: Attributes, reason: str = "") -> errors.StatusError:
    """``NewForbidden(GroupResource{group, resource}, name, err)``."""
    msg = forbidden_message(user, a)
    if reason:
        msg = f"{msg}: {reason}"
    if not a.resource_request:
        return errors.StatusError(403, "Forbidden", f"forbidden: {msg}", {})
    qualified = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
    text = f'{qualified} "{a.name}" is forbidden: {msg}' if a.name else f"{qualified} is forbidden: {msg}"
    details: dict[str, Any] = {"kind": a.resource}
    if a.name:
        details = {"name": a.name, **details}
    if a.api_group:
        details["group"] = a.api_group
    return errors.StatusError(403, "Forbidden", text, details)


def check(authorizer: Any, user: UserInfo, attrs: Attributes) -> None:
    allowed, reason = authorizer.authorize(user, attrs)
    if not allowed:
        raise forbidden(user, attrs, reason)


async def check_async(authorizer: Any, user: UserInfo, attrs: Attributes) -> None:
    """``check``, with a refusal looked at again by ``recheck`` where the authorizer has one."""
    allowed, reason = authorizer.authorize(user, attrs)
    if allowed:
        return
    again = getattr(authorizer, "recheck", None)
    if again is not None and await again(user, attrs):
        return
    raise forbidden(user, attrs, reason)


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def name_from_field_selector(field_selector: str | None) -> str:
    """``metadata.name=X`` in a list/watch selector names the object (upstream's RequestInfo)."""
    if not field_selector:
        return ""
    for term in field_selector.split(","):
        key, op, value = term.partition("=")
        if key.strip() == "metadata.name" and op and not value.startswith("="):
            return value.strip()
        if key.strip() == "metadata.name" and value.startswith("="):
            return value[1:].strip()
    return ""


def resource_attributes(method: str, info: ResourceInfo, namespace: str | None, name: str | None,
                        subresource: str | None, query: Mapping[str, str], watch_prefix: bool = False) -> Attributes:
    """Upstream's ``RequestInfoFactory`` verb rules for a resource URL."""
    if method in ("GET", "HEAD"):
        if watch_prefix or query.get("watch") in ("1", "true", "True"):
            verb = "watch"
        else:
            verb = "get" if name else "list"
        if verb in ("list", "watch") and not name:
            name = name_from_field_selector(query.get("fieldSelector"))
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _METHOD_VERBS.get(method, method.lower())
    return Attributes(verb, True, namespace or "", info.group, info.plural, subresource or "", name or "")


def non_resource_attributes(method: str, path: str) -> Attributes:
    return Attributes(method.lower() if method != "HEAD" else "get", False, path=path)
