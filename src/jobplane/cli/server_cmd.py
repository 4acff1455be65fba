"""``jobplane server``: flags override their ``JOBPLANE_*`` environment twins."""

from __future__ import annotations

import asyncio
import functools
import sys
from pathlib import Path

import click

from jobplane.settings import Settings


def _seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A Go duration (``1h``, ``90s``) or plain seconds, as seconds."""
    if value is None:
        return None
    from jobplane.cli.common import CliError, parse_duration

    try:
        if value.strip().endswith("d") and value.strip()[:-1].replace(".", "", 1).isdigit():
            return float(value.strip()[:-1]) * 86400.0  # days, for retention periods
        return parse_duration(value)
    except CliError as exc:
        raise click.BadParameter(str(exc)) from None


def check_runtime(choice: str, agent: bool = True) -> None:
    """Exit with a message when ``--runtime`` names an engine that cannot run here."""
    if choice not in ("host", "podman", "docker", "auto"):
        click.echo(f"error: --runtime {choice!r}: one of host, podman, docker, auto", err=True)
        sys.exit(2)
    if agent and choice in ("podman", "docker"):
        from jobplane.agent.engine import probe

        version, why = probe(choice)
        if version is None:
            click.echo(f"error: --runtime {choice}: {why}", err=True)
            sys.exit(1)


@click.command("server")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="State directory (database, pki, kubeconfig, pod files). [JOBPLANE_DATA_DIR]")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1). [JOBPLANE_HOST]")
@click.option("--port", type=int, default=None,
              help="HTTPS port (default 6443; 0 picks a free one). [JOBPLANE_PORT]")
@click.option("--database", default=None,
              help='"sqlite" (DIR/state.db) or a postgresql:// URL (add ?schema=NAME for a schema other '
                   'than "jobplane"); servers on one PostgreSQL database elect a controller leader. '
                   '[JOBPLANE_DATABASE]')
@click.option("--pki-dir", "pki_path", default=None,
              help="Directory of the CA, server certificate and token (default DIR/pki); point "
                   "every server on one PostgreSQL database at the same one. [JOBPLANE_PKI_PATH]")
@click.option("--agent/--no-agent", "agent", default=None,
              help="Run the embedded node agent (default on). [JOBPLANE_AGENT]")
@click.option("--processes", type=click.IntRange(1, 2), default=None,
              help="1 (default): everything in one process; 2: the node agent runs in a child process "
                   "of its own, restarted if it dies. [JOBPLANE_PROCESSES]")
@click.option("--node-name", default=None, help="Node name of the embedded agent (default: host name).")
@click.option("--sandbox/--no-sandbox", "sandbox", default=None,
              help="Run each container in a bubblewrap sandbox (default on; pods run unsandboxed "
                   "where bwrap cannot). [JOBPLANE_SANDBOX]")
@click.option("--runtime", default=None, type=click.Choice(["host", "podman", "docker", "auto"]),
              help="How the embedded agent runs containers: host (processes on this machine, default), "
                   "podman or docker (from their images, through that engine), auto (podman, then "
                   "docker, else host). [JOBPLANE_RUNTIME]")
@click.option("--runtime-dir", default=None, metavar="DIR",
              help="Where the agent keeps its pods' runtime files (volume contents, tokens, /etc/hosts, "
                   "run state) in memory, as kubelet does (default: a private directory under "
                   "$XDG_RUNTIME_DIR, /run when root, or /dev/shm, whichever is tmpfs; 'off': the data "
                   "dir). [JOBPLANE_RUNTIME_DIR]")
@click.option("--allow-privileged/--no-allow-privileged", "allow_privileged", default=None,
              help="Let image containers with securityContext.privileged run (default: refused). "
                   "[JOBPLANE_ALLOW_PRIVILEGED]")
@click.option("--pod-backoff-base", type=float, default=None,
              help="Job pod re-creation back-off base in seconds (default 10).")
@click.option("--pod-backoff-max", type=float, default=None,
              help="Job pod re-creation back-off cap in seconds (default 360).")
@click.option("--event-ttl", default=None, callback=_seconds, metavar="DURATION",
              help="Amount of time to retain events (default 1h; e.g. 30m, 3600). [JOBPLANE_EVENT_TTL]")
@click.option("--terminated-pod-gc-threshold", type=int, default=None,
              help="Number of terminated pods that can exist before the pod garbage collector starts "
                   "deleting them; <= 0 disables it (default 12500). [JOBPLANE_TERMINATED_POD_GC_THRESHOLD]")
@click.option("--history-retention", default=None, callback=_seconds, metavar="DURATION",
              help="How long records and logs of finished Jobs are kept (default 7d; e.g. 12h, 30d). "
                   "[JOBPLANE_HISTORY_RETENTION]")
@click.option("--history-max-bytes", type=int, default=None,
              help="Size cap of the kept logs; the oldest records go first (default 1 GiB). "
                   "[JOBPLANE_HISTORY_MAX_BYTES]")
@click.option("--service-cluster-ip-range", "service_cidr", default=None, metavar="CIDR",
              help="Range Service cluster IPs are allocated from (default 10.96.0.0/12). "
                   "[JOBPLANE_SERVICE_CIDR]")
@click.option("--request-header-timeout", default=None, callback=_seconds, metavar="DURATION",
              help="Time a new connection has to send a complete request, TLS handshake included "
                   "(default 32s). [JOBPLANE_REQUEST_HEADER_TIMEOUT]")
@click.option("--idle-timeout", default=None, callback=_seconds, metavar="DURATION",
              help="Keep-alive connections idle this long are closed (default 90s). [JOBPLANE_IDLE_TIMEOUT]")
@click.option("--request-timeout", default=None, callback=_seconds, metavar="DURATION",
              help="Time a request's body has to arrive (default 1m). [JOBPLANE_REQUEST_TIMEOUT]")
@click.option("--max-unauthenticated-connections", type=int, default=None,
              help="Connections without valid credentials kept open at most (the oldest is closed "
                   "beyond it; never more than half the file descriptor limit; default 512). "
                   "[JOBPLANE_MAX_UNAUTHENTICATED_CONNECTIONS]")
@click.option("--token-auth-file", default=None, type=click.Path(exists=True, dir_okay=False),
              help='Static bearer tokens, one per line: token,user,uid,"group1,group2" (kube-apiserver\'s '
                   'format). [JOBPLANE_TOKEN_AUTH_FILE]')
@click.option("--authorization-mode", default=None, type=click.Choice(["Node,RBAC", "RBAC", "AlwaysAllow"]),
              help="Node,RBAC (default) or AlwaysAllow (any authenticated caller may do anything). "
                   "[JOBPLANE_AUTHORIZATION_MODE]")
@click.option("--audit-log-path", default=None, metavar="FILE",
              help="Write an audit.k8s.io/v1 Event per request and stage to FILE as JSON lines (0600). "
                   "[JOBPLANE_AUDIT_LOG_PATH]")
@click.option("--audit-policy-file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Upstream's audit Policy (levels None/Metadata/Request/RequestResponse by users, groups, "
                   "verbs, resources, namespaces); default: Metadata for everything. Secret contents and "
                   "tokens are never written. [JOBPLANE_AUDIT_POLICY_FILE]")
@click.option("--audit-log-maxsize", type=int, default=None, metavar="MB",
              help="Rotate the audit log once it reaches this many megabytes (default 0: never). "
                   "[JOBPLANE_AUDIT_LOG_MAXSIZE]")
@click.option("--audit-log-maxbackup", type=int, default=None,
              help="Rotated audit logs kept (default 0: all). [JOBPLANE_AUDIT_LOG_MAXBACKUP]")
@click.option("--audit-log-maxage", type=int, default=None, metavar="DAYS",
              help="Days rotated audit logs are kept (default 0: forever). [JOBPLANE_AUDIT_LOG_MAXAGE]")
@click.option("--log-level", default=None,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="Log level (default info). [JOBPLANE_LOG_LEVEL]")
def server(**flags: object) -> None:
    """Run the API server, the controllers and (by default) a node agent."""
    settings = Settings().apply_env()
    for name, value in flags.items():
        if value is not None:
            setattr(settings, name, value)
    from jobplane import server as server_mod

    check_runtime(settings.runtime, settings.agent)
    server_mod.configure_logging(settings.log_level)
    announce = functools.partial(print, flush=True)
    try:
        asyncio.run(server_mod.serve(settings, announce))
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
