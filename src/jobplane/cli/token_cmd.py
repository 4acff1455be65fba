"""``jobplane token create``: a bootstrap token for a node agent (``kubeadm token create``).

The token is stored as the Secret ``kube-system/bootstrap-token-<id>`` through the API (with
the admin kubeconfig) and printed once; ``jobplane agent --bootstrap-token`` exchanges it for
the node's own client certificate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from jobplane.settings import Settings


@click.group("token")
def token() -> None:
    """Bootstrap tokens for node agents."""


def _client(kubeconfig: str | None, data_dir: Path | None) -> Any:
    from jobplane.client.http import HttpClient

    if kubeconfig is None or data_dir is not None:
        settings = Settings().apply_env()
        if data_dir is not None:
            settings.data_dir = data_dir
        kubeconfig = str(settings.kubeconfig_path)
    if not Path(kubeconfig).exists():
        raise click.ClickException(f"{kubeconfig} not found: run this where `jobplane server` keeps its data dir, "
                                   "or pass --kubeconfig")
    return HttpClient.from_kubeconfig(kubeconfig, user_agent="jobplane-cli")


_KUBECONFIG = click.option("--kubeconfig", envvar="KUBECONFIG", default=None,
                           help="An admin kubeconfig (default: DIR/kubeconfig of the server's data dir).")
_DATA_DIR = click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                         help="The server's data dir. [JOBPLANE_DATA_DIR]")


@token.command("list")
@_KUBECONFIG
@_DATA_DIR
def list_(kubeconfig: str | None, data_dir: Path | None) -> None:
    """The bootstrap tokens (their ids; the secret half is never shown again)."""
    import base64

    from jobplane.apiserver import bootstraptokens as bt
    from jobplane.cli.common import error_text

    async def run() -> list[dict]:
        client = _client(kubeconfig, data_dir)
        try:
            listed = await client.list("secrets", bt.NAMESPACE)
            return [s for s in listed.get("items") or () if s.get("type") == bt.SECRET_TYPE]
        finally:
            await client.close()

    try:
        secrets = asyncio.run(run())
    except click.ClickException:
        raise
    except Exception as exc:  # noqa: BLE001 - kubectl-style one-line error
        raise click.ClickException(error_text(exc)) from None

    def field(secret: dict, key: str) -> str:
        raw = (secret.get("data") or {}).get(key) or ""
        return base64.b64decode(raw).decode(errors="replace") if raw else ""

    rows = [("TOKEN ID", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")]
    for s in secrets:
        usages = ",".join(k[len("usage-bootstrap-"):] for k in sorted(s.get("data") or {})
                          if k.startswith("usage-bootstrap-") and field(s, k) == "true")
        rows.append((field(s, "token-id"), field(s, "expiration") or "<forever>", usages,
                     field(s, "description") or "<none>", field(s, "auth-extra-groups")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@token.command("delete")
@click.argument("tokens", nargs=-1, required=True)
@_KUBECONFIG
@_DATA_DIR
def delete(tokens: tuple[str, ...], kubeconfig: str | None, data_dir: Path | None) -> None:
    """Delete bootstrap tokens, by id or whole token: nodes can no longer bootstrap with them
    (nodes that already have their certificate keep it)."""
    from jobplane.apiserver import bootstraptokens as bt
    from jobplane.cli.common import error_text

    async def run() -> None:
        client = _client(kubeconfig, data_dir)
        try:
            for t in tokens:
                token_id = t.split(".", 1)[0]
                await client.delete("secrets", bt.SECRET_PREFIX + token_id, bt.NAMESPACE)
                click.echo(f'bootstrap token "{token_id}" deleted')
        finally:
            await client.close()

    try:
        asyncio.run(run())
    except click.ClickException:
        raise
    except Exception as exc:  # noqa: BLE001 - kubectl-style one-line error
        raise click.ClickException(error_text(exc)) from None


@token.command("create")
@click.option("--ttl", default="24h", show_default=True,
              help="How long the token may be used (Go duration); it is deleted once expired.")
@click.option("--description", default="", help="A note kept with the token.")
@_KUBECONFIG
@_DATA_DIR
def create(ttl: str, description: str, kubeconfig: str | None, data_dir: Path | None) -> None:
    """Create a bootstrap token and print it (the only time it is shown)."""
    from jobplane.apiserver import bootstraptokens as bt
    from jobplane.cli.common import error_text, positive_duration

    seconds = positive_duration(ttl, "--ttl")
    client = _client(kubeconfig, data_dir)

    async def run() -> str:
        import time

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
