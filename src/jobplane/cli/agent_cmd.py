"""``jobplane agent``: a node agent on another machine, talking HTTPS to the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

import click

from jobplane.settings import default_data_dir

KUBELET_PORT = 10250


async def _run(servers: tuple[str, ...], token: str | None, ca_file: Path | None, name: str, data_dir: Path,
               endpoint: Any, sandbox: bool = True, token_file: Path | None = None,
               bootstrap_token: str | None = None, runtime: str = "host", allow_privileged: bool = False,
               runtime_dir: str = "") -> None:
    from urllib.parse import urlsplit

    from jobplane.agent.agent import Agent
    from jobplane.client.failover import FailoverHttpClient
    from jobplane.clock import Clock

    if token:
        client = FailoverHttpClient(servers, token=token, ca_file=str(ca_file) if ca_file else None)
    else:
        from jobplane.agent.bootstrap import BootstrapError, node_credentials

        try:
            cert, key = await node_credentials(servers, ca_file, data_dir, name, bootstrap_token)
        except BootstrapError as exc:
            raise click.ClickException(str(exc)) from None
        client = FailoverHttpClient(servers, ca_file=str(ca_file) if ca_file else None, cert_file=str(cert),
                                    key_file=str(key))
    try:
        url = urlsplit(servers[0])
        task = asyncio.create_task(Agent(
            client, name, data_dir, Clock(), log_endpoint=endpoint, sandbox=sandbox,
            hidden=tuple(p for p in (token_file,) if p is not None), api_host=url.hostname,
            api_port=url.port or 443, ca_file=ca_file, runtime_choice=runtime,
            allow_privileged=allow_privileged, runtime_dir=runtime_dir).run(), name="agent")
        # SIGTERM (a service manager's stop) ends the agent as the server's child agent ends: its
        # pods keep running, and what it holds is let go (the runtime directories of pods that
        # finished in the last removal batch among them: agent.REMOVAL_BATCH).
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await client.close()


@click.command("agent")
@click.option("--server", "servers", required=True, multiple=True,
              help="API server URL, e.g. https://10.0.0.1:6443. Repeat it for each server sharing one "
                   "PostgreSQL store: the agent moves to the next when one cannot be reached.")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File holding a bearer token to use instead of the node's own certificate (e.g. the "
                   "admin token; the node then acts with that token's rights).")
@click.option("--bootstrap-token", envvar="JOBPLANE_BOOTSTRAP_TOKEN", default=None,
              help="A token from `jobplane token create`, exchanged once for this node's own client "
                   "certificate (kept in DATA_DIR/pki, 0600). Not needed again while that certificate is "
                   "valid. [JOBPLANE_BOOTSTRAP_TOKEN]")
@click.option("--bootstrap-token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The same, read from a file (keeps it out of the process list).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CA certificate of the server (default: system trust).")
@click.option("--name", default=None, help="Node name (default: the host name).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Directory for pod volumes, logs and state. [JOBPLANE_DATA_DIR]")
@click.option("--address", default=None,
              help="Address the container-log endpoint listens on (kubelet's --address; default: this "
                   "machine's address on the route to --server, so 127.0.0.1 for a server on this "
                   "machine; 0.0.0.0 for every interface).")
@click.option("--port", type=int, default=KUBELET_PORT, show_default=True,
              help="HTTPS port of the container-log endpoint; 0 picks a free one, -1 serves none.")
@click.option("--node-ip", default=None,
              help="Address advertised in the Node's status.addresses, where API servers fetch logs "
                   "(default: this machine's address on the route to --server).")
@click.option("--sandbox/--no-sandbox", default=True, show_default=True,
              help="Run each container in a bubblewrap sandbox (pods run unsandboxed where bwrap cannot).")
@click.option("--runtime", default=None, type=click.Choice(["host", "podman", "docker", "auto"]),
              help="How containers run: host (processes on this machine, default), podman or docker "
                   "(from their images, through that engine), auto (podman, then docker, else host). "
                   "[JOBPLANE_RUNTIME]")
@click.option("--runtime-dir", envvar="JOBPLANE_RUNTIME_DIR", default="", metavar="DIR",
              help="Where pods' runtime files (volume contents, tokens, /etc/hosts, run state) are kept in "
                   "memory, as kubelet does (default: a private directory under $XDG_RUNTIME_DIR, /run when "
                   "root, or /dev/shm, whichever is tmpfs; 'off': the data dir). [JOBPLANE_RUNTIME_DIR]")
@click.option("--allow-privileged", is_flag=True, default=False,
              help="Let image containers with securityContext.privileged run (default: refused).")
@click.option("--log-level", default="info",
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
def agent(servers: tuple[str, ...], token_file: Path | None, bootstrap_token: str | None,
          bootstrap_token_file: Path | None, ca_file: Path | None, name: str | None, data_dir: Path | None,
          address: str | None, port: int, node_ip: str | None, sandbox: bool, runtime: str | None,
          runtime_dir: str, allow_privileged: bool, log_level: str) -> None:
    """Run a node agent: register this machine as a Node, run the pods bound to it and
    serve their logs to the API servers."""
    import os

    from jobplane.agent.embedded import default_node_name
    from jobplane.agent.logserver import LogEndpoint, route_address
    from jobplane.cli.server_cmd import check_runtime

    runtime = runtime or os.environ.get("JOBPLANE_RUNTIME") or "host"
    check_runtime(runtime)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = token_file.read_text().strip() if token_file is not None else None
    if bootstrap_token_file is not None:
        bootstrap_token = bootstrap_token_file.read_text().strip()
    endpoint = None
    if port >= 0:
        route = route_address(servers[0])
        endpoint = LogEndpoint(token=token, address=node_ip or route, host=address or route, port=port)
    hidden = [p.resolve() for p in (token_file, bootstrap_token_file) if p is not None]
    try:
        asyncio.run(_run(servers, token, ca_file, name or default_node_name(), data_dir or default_data_dir(),
                         endpoint, sandbox, hidden[0] if hidden else None, bootstrap_token, runtime,
                         allow_privileged, runtime_dir))
    except KeyboardInterrupt:
        pass
