"""``jobplane`` command line: a click group; each verb lives in its own module."""

from __future__ import annotations

import click

from jobplane.cli.agent_cmd import agent
from jobplane.cli.commands import COMMANDS
from jobplane.cli.images_cmd import images
from jobplane.cli.kubeconfig_cmd import kubeconfig
from jobplane.cli.server_cmd import server
from jobplane.cli.token_cmd import token


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jobplane")
def cli() -> None:
    """Kubernetes batch Jobs without a cluster."""


for _command in (server, agent, kubeconfig, token, images, *COMMANDS):
    cli.add_command(_command)


def main() -> None:
    cli()
