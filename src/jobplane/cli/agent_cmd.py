"""``jobplane agent``: a node agent on another machine, talking HTTPS to the server."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from jobplane.settings import default_data_dir


async def _run(server: str, token: str, ca_file: Path | None, name: str, data_dir: Path) -> None:
    from jobplane.agent.agent import Agent
    from jobplane.client.http import HttpClient
    from jobplane.clock import Clock

    client = HttpClient(server, token=token, ca_file=str(ca_file) if ca_file else None)
    try:
        await Agent(client, name, data_dir, Clock()).run()
    finally:
        await client.close()


@click.command("agent")
@click.option("--server", required=True, help="API server URL, e.g. https://10.0.0.1:6443.")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="File holding the bearer token.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CA certificate of the server (default: system trust).")
@click.option("--name", default=None, help="Node name (default: the host name).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Directory for pod volumes, logs and state. [JOBPLANE_DATA_DIR]")
@click.option("--log-level", default="info",
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
def agent(server: str, token_file: Path, ca_file: Path | None, name: str | None, data_dir: Path | None,
          log_level: str) -> None:
    """Run a node agent: register this machine as a Node and run the pods bound to it."""
    from jobplane.agent.embedded import default_node_name

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = token_file.read_text().strip()
    try:
        asyncio.run(_run(server, token, ca_file, name or default_node_name(), data_dir or default_data_dir()))
    except KeyboardInterrupt:
        pass
