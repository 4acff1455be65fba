"""Reading URL query parameters as the apiserver does.

Why a module of its own: the API server's handlers and the pod-log options (also parsed by
the agent's log endpoint) read integer parameters the same way: absent or empty is None,
anything else must be an integer or the request is a 400.
"""

from __future__ import annotations

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
