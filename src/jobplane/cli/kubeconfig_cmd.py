"""``jobplane kubeconfig``: a kubeconfig with its own client certificate for one person,
issued on the server machine from the CA in the pki directory (like ``kubeadm kubeconfig
user``); ``--revoke`` puts a user's certificates on the server's deny list."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import click
import yaml

from jobplane.settings import Settings


def _pki_dir(data_dir: Path | None, pki_dir: Path | None) -> tuple[Settings, Path]:
    settings = Settings().apply_env()
    if data_dir is not None:
        settings.data_dir = data_dir
    if pki_dir is not None:
        settings.pki_path = str(pki_dir)
    return settings, settings.pki_dir


@click.command("kubeconfig")
@click.option("--user", "user", required=True, help="User name (the certificate's CN).")
@click.option("--group", "groups", multiple=True, help="A group the user is in (the certificate's O); repeatable.")
@click.option("--namespace", "-n", default="default", show_default=True, help="Namespace of the context.")
@click.option("--expires", default="24h", show_default=True,
              help="Lifetime of the certificate (Go duration: 8h, 720h). Keep it short: revocation is the "
                   "deny list (--revoke) plus expiry.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the kubeconfig to this file (mode 0600) instead of standard output.")
@click.option("--server", default=None, help="API server URL (default: the one in DIR/kubeconfig).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="The server's data dir. [JOBPLANE_DATA_DIR]")
@click.option("--pki-dir", type=click.Path(path_type=Path), default=None, help="Default DIR/pki.")
@click.option("--revoke", is_flag=True, help="Instead: deny every certificate issued to --user so far.")
def kubeconfig(user: str, groups: tuple[str, ...], namespace: str, expires: str, output: Path | None,
               server: str | None, data_dir: Path | None, pki_dir: Path | None, revoke: bool) -> None:
    """Issue a client certificate for USER (and GROUPs) and write a kubeconfig that uses it."""
    from jobplane.apiserver import kubeconfig as kc
    from jobplane.apiserver import usercerts
    from jobplane.certs import write_private
    from jobplane.cli.common import positive_duration

    settings, pki = _pki_dir(data_dir, pki_dir)
    if not (pki / "ca.key").exists():
        raise click.ClickException(f"no CA key in {pki}: run this where `jobplane server` keeps its data dir")
    if revoke:
        serials = usercerts.revoke(pki, user=user)
        click.echo(f"revoked {len(serials)} certificate(s) of user {user!r}", err=True)
        return
    lifetime = positive_duration(expires, "--expires")
    if server is None:
        admin = settings.kubeconfig_path
        if not admin.exists():
            raise click.ClickException(f"{admin} not found: pass --server or start the server first")
        server = yaml.safe_load(admin.read_text())["clusters"][0]["cluster"]["server"]
    issued = usercerts.issue_client_cert(pki, user, list(groups), datetime.timedelta(seconds=lifetime))
    cfg = kc.user_kubeconfig_dict(server, (pki / "ca.crt").read_bytes(), user, issued.cert_pem, issued.key_pem,
                                  namespace)
    text = yaml.safe_dump(cfg, sort_keys=False)
    if output is None:
        sys.stdout.write(text)
    else:
        write_private(output, text.encode())
        click.echo(f"wrote {output} for user {user!r} (certificate {issued.serial}, expires "
                   f"{issued.not_after.strftime('%Y-%m-%dT%H:%M:%SZ')})", err=True)
