"""The node agent inside ``jobplane server`` (unless ``--no-agent``)."""

from __future__ import annotations

import platform
from collections.abc import Callable

from jobplane.agent.agent import Agent
from jobplane.client.base import Client
from jobplane.clock import Clock
from jobplane.settings import Settings


def default_node_name() -> str:
    """The host name, lower-cased as a Node name must be."""
    return (platform.node() or "localhost").lower()


def api_host(settings: Settings) -> str:
    """Where the server's own pods reach its API: its bind address, the loopback for a wildcard."""
    return settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"


async def run_embedded(client: Client, settings: Settings, clock: Clock, api_port: int | None = None,
                       on_start: Callable[[Agent], None] | None = None) -> None:
    """Run an agent for node ``settings.node_name`` (default: the host name) on
    ``settings.data_dir`` until cancelled. The API server reads container logs from the
    same ``DIR/pods`` directory; ``on_start`` lets it reach the agent for pod streams
    (exec, attach, port-forward) without a network hop."""
    host = api_host(settings)
    agent = Agent(client, settings.node_name or default_node_name(), settings.data_dir, clock,
                  sandbox=settings.sandbox, hidden=(settings.data_dir, settings.pki_dir),
                  api_host=host, api_port=api_port, ca_file=settings.pki_dir / "ca.crt",
                  runtime_choice=settings.runtime, allow_privileged=settings.allow_privileged,
                  runtime_dir=settings.runtime_dir)
    if on_start is not None:
        on_start(agent)
    await agent.run()
