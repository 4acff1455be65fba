"""Reading URL query parameters as the apiserver does.

Why a module of its own: the API server's handlers and the pod-log options (also parsed by
the agent's log endpoint) read integer parameters the same way: absent or empty is None,
anything else must be an integer or the request is a 400. The list options' consistency
parameters are checked here too, before any handler acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobplane.api import errors


def int_param(query: Any, name: str, *, what: str = "invalid value for") -> int | None:
    """``query[name]`` as an int; a 400 ``"{what} {name}: {raw!r}"`` when it is not one."""
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f"{what} {name}: {raw!r}") from None


def list_limit(query: Any) -> int | None:
    """``limit`` of a list: None for no limit. A limit of 0 or below is no limit (kube-apiserver
    pages only when ``Predicate.Limit > 0``, etcd3 store GetList and the cacher alike)."""
    limit = int_param(query, "limit")
    return limit if limit is not None and limit > 0 else None


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")

EXACT = "Exact"
NOT_OLDER_THAN = "NotOlderThan"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def bool_param(query: Any, name: str) -> bool | None:
    """``query[name]`` as a bool the way Go's ``strconv.ParseBool`` reads it (the apiserver's
    query decoder); absent is None, anything else unreadable a 400."""
    raw = query.get(name)
    if raw is None:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise errors.bad_request(f"invalid value for {name}: {raw!r}")


@dataclass(frozen=True)
class ListOptions:
    """The consistency options of a list or watch request (metav1.ListOptions' share of them)."""

    resource_version: str = ""
    match: str = ""
    send_initial_events: bool | None = None
    continue_: str = ""

    @property
    def exact(self) -> bool:
        return self.match == EXACT


def list_options(query: Any, *, watch: bool) -> ListOptions:
    """Read and check ``resourceVersion``, ``resourceVersionMatch``, ``sendInitialEvents`` and
    ``continue`` as upstream's ``ValidateListOptions`` does (with the WatchList feature on, as in
    1.32): a 422 ``ListOptions.meta.k8s.io "" is invalid`` naming each offending field."""
    opts = ListOptions(query.get("resourceVersion") or "", query.get("resourceVersionMatch") or "",
                       bool_param(query, "sendInitialEvents"), query.get("continue") or "")
    errs = _watch_errors(opts) if watch else _list_errors(opts)
    if errs:
        raise errors.invalid_object("ListOptions", "meta.k8s.io", "", errs)
    return opts


def _list_errors(opts: ListOptions) -> list[errors.FieldError]:
    errs: list[errors.FieldError] = []
    path = "resourceVersionMatch"
    if opts.match:
        if not opts.resource_version:
            errs.append(errors.forbidden(path, "resourceVersionMatch is forbidden unless resourceVersion is provided"))
        if opts.continue_:
            errs.append(errors.forbidden(path, "resourceVersionMatch is forbidden when continue is provided"))
        if opts.match not in (EXACT, NOT_OLDER_THAN):
            errs.append(errors.not_supported(path, opts.match, [EXACT, NOT_OLDER_THAN, ""]))
        if opts.match == EXACT and opts.resource_version == "0":
            errs.append(errors.forbidden(path, 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
    if opts.send_initial_events is not None:
        errs.append(errors.forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    return errs


def _watch_errors(opts: ListOptions) -> list[errors.FieldError]:
    errs: list[errors.FieldError] = []
    path = "resourceVersionMatch"
    if opts.send_initial_events is not None and opts.match != NOT_OLDER_THAN:
        errs.append(errors.forbidden(path, f"sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}"))
    if opts.match:
        if opts.send_initial_events is None:
            errs.append(errors.forbidden(path, "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
        if opts.match != NOT_OLDER_THAN:
            errs.append(errors.not_supported(path, opts.match, [NOT_OLDER_THAN]))
        if opts.continue_:
            errs.append(errors.forbidden(path, "resourceVersionMatch is forbidden when continue is provided"))
    return errs
