"""The node agent inside ``jobplane server`` (unless ``--no-agent``)."""

from __future__ import annotations

import platform

from jobplane.agent.agent import Agent
from jobplane.client.base import Client
from jobplane.clock import Clock
from jobplane.settings import Settings


def default_node_name() -> str:
    """The host name, lower-cased as a Node name must be."""
    return (platform.node() or "localhost").lower()


async def run_embedded(client: Client, settings: Settings, clock: Clock) -> None:
    """Run an agent for node ``settings.node_name`` (default: the host name) on
    ``settings.data_dir`` until cancelled. The API server reads container logs from the
    same ``DIR/pods`` directory."""
    agent = Agent(client, settings.node_name or default_node_name(), settings.data_dir, clock)
    await agent.run()
