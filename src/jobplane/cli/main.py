"""``jobplane`` command line: a click group; each verb lives in its own module."""

from __future__ import annotations

import importlib

import click

# (module, attribute) of each command; modules are owned by different layers.
_COMMANDS = (
    ("jobplane.cli.server_cmd", "server"),
    ("jobplane.cli.agent_cmd", "agent"),
    ("jobplane.cli.commands", "COMMANDS"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jobplane")
def cli() -> None:
    """Kubernetes batch Jobs without a cluster."""


def _register() -> None:
    for module_name, attr in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        value = getattr(module, attr)
        for cmd in value if isinstance(value, list | tuple) else (value,):
            cli.add_command(cmd)


_register()


def main() -> None:
    cli()
