"""``jobplane token create``: a bootstrap token for a node agent (``kubeadm token create``).

The token is stored as the Secret ``kube-system/bootstrap-token-<id>`` through the API (with
the admin kubeconfig) and printed once; ``jobplane agent --bootstrap-token`` exchanges it for
the node's own client certificate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from jobplane.settings import Settings


@click.group("token")
def token() -> None:
    """Bootstrap tokens for node agents."""


@token.command("create")
@click.option("--ttl", default="24h", show_default=True,
              help="How long the token may be used (Go duration); it is deleted once expired.")
@click.option("--description", default="", help="A note kept with the token.")
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None,
              help="An admin kubeconfig (default: DIR/kubeconfig of the server's data dir).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="The server's data dir. [JOBPLANE_DATA_DIR]")
def create(ttl: str, description: str, kubeconfig: str | None, data_dir: Path | None) -> None:
    """Create a bootstrap token and print it (the only time it is shown)."""
    from jobplane.apiserver import bootstraptokens as bt
    from jobplane.cli.common import CliError, error_text, parse_duration
    from jobplane.client.http import HttpClient

    try:
        seconds = parse_duration(ttl)
    except CliError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None
    if seconds <= 0:
        raise click.BadParameter("must be positive", param_hint="--ttl")
    if kubeconfig is None or data_dir is not None:
        settings = Settings().apply_env()
        if data_dir is not None:
            settings.data_dir = data_dir
        kubeconfig = str(settings.kubeconfig_path)
    if not Path(kubeconfig).exists():
        raise click.ClickException(f"{kubeconfig} not found: run this where `jobplane server` keeps its data dir, "
                                   "or pass --kubeconfig")

    async def run() -> str:
        import time

        client = HttpClient.from_kubeconfig(kubeconfig, user_agent="jobplane-cli")
        try:
            value = bt.generate()
            await client.create("secrets", bt.secret_for(value, time.time() + seconds, description=description),
                                bt.NAMESPACE)
            return value
        finally:
            await client.close()

    try:
        click.echo(asyncio.run(run()))
    except Exception as exc:  # noqa: BLE001 - kubectl-style one-line error
        raise click.ClickException(error_text(exc)) from None
