"""Impersonation (``Impersonate-User``, ``-Group``, ``-Uid``, ``-Extra-*`` headers, i.e.
``kubectl --as --as-group``): the caller must be allowed ``impersonate`` on each thing it
asks for, as upstream's ``WithImpersonation`` filter checks; the request then runs as the
impersonated user."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from jobplane.api import errors
from jobplane.api.rbac import Attributes
from jobplane.apiserver.authz import check
from jobplane.apiserver.identity import (
    ALL_AUTHENTICATED,
    ALL_UNAUTHENTICATED,
    ANONYMOUS_USER,
    SA_GROUP,
    UserInfo,
    split_service_account,
)

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
EXTRA_PREFIX = "Impersonate-Extra-"


def wants_impersonation(headers: Mapping[str, str]) -> bool:
    return USER_HEADER in headers or GROUP_HEADER in headers or UID_HEADER in headers or \
        any(k.startswith(EXTRA_PREFIX) for k in headers)


def impersonate(user: UserInfo, headers: Any, authorizer: Any) -> UserInfo:
    """The user the headers ask for, after checking ``user`` may impersonate each part."""
    name = headers.get(USER_HEADER, "")
    groups = list(headers.getall(GROUP_HEADER, [])) if hasattr(headers, "getall") else \
        ([headers[GROUP_HEADER]] if GROUP_HEADER in headers else [])
    uid = headers.get(UID_HEADER, "")
    extra: dict[str, tuple[str, ...]] = {}
    for key in headers:
        if key.startswith(EXTRA_PREFIX):
            extra_key = unquote(key[len(EXTRA_PREFIX):]).lower()
            values = headers.getall(key, []) if hasattr(headers, "getall") else [headers[key]]
            extra[extra_key] = tuple(extra.get(extra_key, ())) + tuple(values)
    if not name:
        raise errors.internal_error(f"requested {_describe(groups, uid, extra)} without impersonating a user")
    checks: list[Attributes] = []
    sa = split_service_account(name)
    if sa is not None:
        checks.append(Attributes("impersonate", True, sa[0], "", "serviceaccounts", "", sa[1]))
        groups = [*groups, SA_GROUP, f"{SA_GROUP}:{sa[0]}"] if not groups else groups
    else:
        checks.append(Attributes("impersonate", True, "", "", "users", "", name))
    checks.extend(Attributes("impersonate", True, "", "", "groups", "", g) for g in groups
                  if not (sa and g.startswith(SA_GROUP)))
    if uid:
        checks.append(Attributes("impersonate", True, "", "authentication.k8s.io", "uids", "", uid))
    for key, values in extra.items():
        checks.extend(Attributes("impersonate", True, "", "authentication.k8s.io", "userextras", key, v)
                      for v in values)
    for attrs in checks:
        check(authorizer, user, attrs)
    if name == ANONYMOUS_USER:
        if ALL_UNAUTHENTICATED not in groups:
            groups.append(ALL_UNAUTHENTICATED)
    elif ALL_AUTHENTICATED not in groups:
        groups.append(ALL_AUTHENTICATED)
    return UserInfo(name, uid, tuple(dict.fromkeys(groups)), extra)


def _describe(groups: list[str], uid: str, extra: dict[str, tuple[str, ...]]) -> str:
    parts = [f"Group {g}" for g in groups]
    if uid:
        parts.append(f"UID {uid}")
    parts.extend(f"Extra {k}" for k in extra)
    return "[" + ", ".join(parts) + "]"
