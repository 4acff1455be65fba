"""``jobplane dashboard``: print a one-time login link to the server's web dashboard."""

from __future__ import annotations

import click

from jobplane.cli.common import Conn, connection_options, run


@click.command("dashboard")
@connection_options
def dashboard_cmd(conn: Conn) -> None:
    """Print a one-time link that logs a browser in to the dashboard (/ui/) as you.

    The link holds a code, not your token: it works once, within 5 minutes, and the
    browser exchanges it for the credential of the kubeconfig that asked for it."""

    async def main() -> int:
        client = conn.client()
        try:
            resp = await client.request("POST", "/ui/api/links", body={})
            code = resp.json()["code"]
            click.echo(f"{client.server}/ui/#code={code}")
            click.echo("(one-time link, valid 5 minutes; the server's certificate is signed by the CA in "
                       "DIR/pki/ca.crt)", err=True)
            return 0
        finally:
            await client.close()

    run(main)
