"""Network address strings as Go's ``net`` package writes them, for every layer (the agent's
probes, the API server's node endpoints, ``kubectl describe``)."""

from __future__ import annotations


def join_host_port(host: str, port: int | str) -> str:
    """Go's ``net.JoinHostPort``: ``host:port``, the host in brackets when it holds a colon
    (an IPv6 address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
