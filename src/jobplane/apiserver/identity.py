"""Who is asking: upstream's ``user.Info`` (name, uid, groups, extra) and the request's
current user, carried in a context variable so admission (escalation checks, node
restriction, self-subject reviews) sees the same identity in HTTP and in-process calls."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"
MASTERS = "system:masters"
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
ADMIN_USER = "jobplane-admin"
APISERVER_USER = "system:apiserver"  # upstream's loopback identity (group system:masters)


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __hash__(self) -> int:  # extra is a dict: hash what identifies the subject
        return hash((self.name, self.uid, self.groups))

    def to_status(self) -> dict:
        """The ``UserInfo`` shape of authentication.k8s.io (SelfSubjectReview, TokenReview)."""
        out: dict = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


def authenticated(name: str, groups: tuple[str, ...] | list[str] = (), uid: str = "",
                  extra: Mapping[str, tuple[str, ...]] | None = None) -> UserInfo:
    """A user as an authenticator returns it: ``system:authenticated`` added (upstream's
    ``AuthenticatedGroupAdder``), except for the anonymous user."""
    groups = tuple(groups)
    if name != ANONYMOUS_USER and ALL_AUTHENTICATED not in groups:
        groups = (*groups, ALL_AUTHENTICATED)
    return UserInfo(name, uid, groups, dict(extra or {}))


ADMIN = authenticated(ADMIN_USER, (MASTERS,))
APISERVER = authenticated(APISERVER_USER, (MASTERS,))
ANONYMOUS = UserInfo(ANONYMOUS_USER, groups=(ALL_UNAUTHENTICATED,))


def service_account_name(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def split_service_account(username: str) -> tuple[str, str] | None:
    """``system:serviceaccount:NS:NAME`` -> (NS, NAME), else None."""
    if not username.startswith(SA_PREFIX):
        return None
    ns, sep, name = username[len(SA_PREFIX):].partition(":")
    if not sep or not ns or not name or ":" in name:
        return None
    return ns, name


def service_account_user(namespace: str, name: str, uid: str = "",
                         extra: Mapping[str, tuple[str, ...]] | None = None) -> UserInfo:
    return authenticated(service_account_name(namespace, name),
                         (SA_GROUP, f"{SA_GROUP}:{namespace}"), uid, extra)


def node_user(node: str) -> UserInfo:
    return authenticated(NODE_PREFIX + node, (NODES_GROUP,))


def node_name_of(user: UserInfo | None) -> str | None:
    """The node a ``system:node:<name>`` user in ``system:nodes`` speaks for."""
    if user is None or not user.name.startswith(NODE_PREFIX) or NODES_GROUP not in user.groups:
        return None
    return user.name[len(NODE_PREFIX):] or None


# None: a trusted in-process caller that was given no identity (tests, bootstrap).
current_user: ContextVar[UserInfo | None] = ContextVar("jobplane_user", default=None)


@contextlib.contextmanager
def acting_as(user: UserInfo | None) -> Iterator[None]:
    token = current_user.set(user)
    try:
        yield
    finally:
        current_user.reset(token)
