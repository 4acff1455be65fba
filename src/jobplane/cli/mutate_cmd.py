"""``jobplane apply``, ``create`` and ``delete``: writes, reported as kubectl reports them."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from jobplane.api import registry
from jobplane.api.errors import StatusError
from jobplane.api.registry import ResourceInfo
from jobplane.cli import applypatch, manifests, output
from jobplane.cli.common import (
    CliError,
    Conn,
    connection_options,
    error_text,
    parse_duration,
    parse_targets,
    run,
    target_names,
)
from jobplane.client.base import STRATEGIC_MERGE_PATCH, Client

Obj = dict[str, Any]


def _info_for(obj: Obj, source: str) -> ResourceInfo:
    try:
        return registry.for_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
    except KeyError:
        name = (obj.get("metadata") or {}).get("name", "")
        ns = (obj.get("metadata") or {}).get("namespace", "")
        raise CliError(f'resource mapping not found for name: "{name}" namespace: "{ns}" from "{source}": '
                       f'no matches for kind "{obj.get("kind")}" in version "{obj.get("apiVersion")}"\n'
                       "ensure CRDs are installed first") from None


def _target_namespace(info: ResourceInfo, obj: Obj, conn: Conn, client: Client) -> str | None:
    """The object's namespace, checked against an explicit ``-n`` as kubectl does."""
    if not info.namespaced:
        return None
    meta = obj.setdefault("metadata", {})
    own = meta.get("namespace")
    if own and conn.namespace and own != conn.namespace:
        raise CliError(f'the namespace from the provided object "{own}" does not match the namespace '
                       f'"{conn.namespace}". You must pass \'--namespace={own}\' to perform this operation.')
    ns = own or conn.ns(client)
    meta["namespace"] = ns
    return ns


async def apply_one(client: Client, info: ResourceInfo, obj: Obj, ns: str | None) -> str:
    """Create or patch one object; returns ``created``, ``configured`` or ``unchanged``."""
    name = (obj.get("metadata") or {}).get("name")
    if not name:
        raise CliError("error when retrieving current configuration: resource name may not be empty")
    try:
        live = await client.get(info.group_resource, name, ns)
    except StatusError as exc:
        if exc.code != 404:
            raise
        await client.create(info.group_resource, applypatch.with_last_applied(obj), ns)
        return "created"
    patch = applypatch.apply_patch(obj, live)
    if not patch:
        return "unchanged"
    await client.patch(info.group_resource, name, patch, ns, patch_type=STRATEGIC_MERGE_PATCH)
    return "configured"


@click.command("apply")
@click.option("-f", "--filename", "filenames", multiple=True, required=True,
              help="File, directory or - (stdin) with the manifests.")
@connection_options
def apply_cmd(filenames: tuple[str, ...], conn: Conn) -> None:
    """Apply a configuration to resources, creating or updating them (kubectl apply)."""

    async def main() -> int:
        docs = manifests.load(list(filenames))
        if not docs:
            raise CliError("no objects passed to apply")
        client = conn.client()
        failed = False
        try:
            for source, obj in docs:
                try:
                    info = _info_for(obj, source)
                    ns = _target_namespace(info, obj, conn, client)
                    result = await apply_one(client, info, obj, ns)
                    click.echo(f"{output.resource_name(info, obj)} {result}")
                except (StatusError, CliError) as exc:
                    failed = True
                    click.echo(_apply_error(exc, source), err=True)
        finally:
            await client.close()
        return 1 if failed else 0

    run(main)


def _apply_error(exc: Exception, source: str) -> str:
    if isinstance(exc, StatusError) and exc.code == 409 and exc.reason == "AlreadyExists":
        return f'Error from server ({exc.reason}): error when creating "{source}": {exc.message}'
    return error_text(exc)


# --------------------------------------------------------------------------- delete

_CASCADE = {"background": "Background", "true": "Background", "foreground": "Foreground",
            "orphan": "Orphan", "false": "Orphan"}


async def wait_deleted(client: Client, info: ResourceInfo, name: str, ns: str | None, uid: str | None,
                       timeout: float) -> bool:
    """Poll until the object (with this uid) is gone."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.05
    while True:
        try:
            obj = await client.get(info.group_resource, name, ns)
        except StatusError as exc:
            if exc.code == 404:
                return True
            raise
        if uid and (obj.get("metadata") or {}).get("uid") != uid:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


@click.command("delete")
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", "filenames", multiple=True, help="File with the objects to delete.")
@click.option("-l", "--selector", default=None, help="Delete the objects matching this label selector.")
@click.option("--all", "delete_all", is_flag=True, help="Delete all objects of the kind in the namespace.")
@click.option("--cascade", default="background", help="background|foreground|orphan.")
@click.option("--wait/--no-wait", default=True, help="Wait for the objects to be gone before returning.")
@click.option("--timeout", default="0s", help="How long to wait for the deletion (0 = a long time).")
@click.option("--grace-period", type=int, default=-1, help="Seconds given to pods to terminate.")
@click.option("--now", is_flag=True, help="Shorthand for --grace-period=1.")
@click.option("--ignore-not-found", is_flag=True, help="Treat a missing object as a success.")
@connection_options
def delete_cmd(args: tuple[str, ...], filenames: tuple[str, ...], selector: str | None, delete_all: bool,
               cascade: str, wait: bool, timeout: str, grace_period: int, now: bool, ignore_not_found: bool,
               conn: Conn) -> None:
    """Delete resources by file, by kind and name, or by selector (kubectl delete)."""

    async def main() -> int:
        policy = _CASCADE.get(cascade.lower())
        if policy is None:
            raise CliError(f'invalid cascade value ({cascade}). Must be "background", "foreground", or "orphan".')
        if cascade.lower() == "false":
            click.echo("warning: --cascade=false is deprecated (boolean value) and can be replaced with "
                       "--cascade=orphan.", err=True)
        grace = 1 if now else (grace_period if grace_period >= 0 else None)
        wait_for = parse_duration(timeout) or 3600.0
        client = conn.client()
        failed = False
        try:
            work: list[tuple[ResourceInfo, str, str | None]] = []
            if filenames:
                for source, obj in manifests.load(list(filenames)):
                    info = _info_for(obj, source)
                    ns = _target_namespace(info, obj, conn, client)
                    work.append((info, obj["metadata"].get("name", ""), ns))
            else:
                targets, _ = parse_targets(args)
                for info, names in targets:
                    ns = conn.ns(client) if info.namespaced else None
                    names = await target_names(client, info, ns, names, selector, delete_all)
                    if not names:
                        click.echo("No resources found" + (f" in {ns} namespace." if ns else ""), err=True)
                    work.extend((info, n, ns) for n in names)
            deleted: list[tuple[ResourceInfo, str, str | None, str | None]] = []
            for info, name, ns in work:
                try:
                    result = await client.delete(info.group_resource, name, ns, propagation_policy=policy,
                                                 grace_period_seconds=grace)
                except StatusError as exc:
                    if exc.code == 404 and ignore_not_found:
                        continue
                    failed = True
                    click.echo(error_text(exc), err=True)
                    continue
                click.echo(f'{output.kind_name(info)} "{name}" deleted')
                uid = (result.get("metadata") or {}).get("uid") if result.get("kind") != "Status" else None
                deleted.append((info, name, ns, uid))
            if wait:
                for info, name, ns, uid in deleted:
                    if not await wait_deleted(client, info, name, ns, uid, wait_for):
                        failed = True
                        click.echo(f"error: timed out waiting for the condition on {info.plural}/{name}",
                                   err=True)
        finally:
            await client.close()
        return 1 if failed else 0

    run(main)


# --------------------------------------------------------------------------- create


def job_manifest(name: str, image: str, command: list[str]) -> Obj:
    """``kubectl create job NAME --image=IMG -- CMD``."""
    container: Obj = {"name": name, "image": image, "resources": {}}
    if command:
        container["command"] = list(command)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {}, "spec": {"containers": [container], "restartPolicy": "Never"}}},
            "status": {}}


def job_from_cronjob(name: str, cronjob: Obj) -> Obj:
    """``kubectl create job NAME --from=cronjob/CJ``: the job template, owned by the CronJob."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = {"cronjob.kubernetes.io/instantiate": "manual", **(tmeta.get("annotations") or {})}
    meta: Obj = {"name": name, "annotations": annotations,
                 "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                      "name": cronjob["metadata"]["name"], "uid": cronjob["metadata"].get("uid", ""),
                                      "controller": True}]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template.get("spec") or {},
            "status": {}}


def cronjob_manifest(name: str, image: str, schedule: str, command: list[str], restart: str) -> Obj:
    container: Obj = {"name": name, "image": image, "resources": {}}
    if command:
        container["command"] = list(command)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule,
                     "jobTemplate": {"metadata": {"name": name},
                                     "spec": {"template": {"metadata": {},
                                                           "spec": {"containers": [container],
                                                                    "restartPolicy": restart}}}}},
            "status": {}}


def _dry_run_print(obj: Obj, output_fmt: str | None, info: ResourceInfo) -> None:
    if output_fmt in ("yaml", "json"):
        data = dict(obj)
        data.setdefault("status", {})
        sys.stdout.write(output.to_yaml(data) if output_fmt == "yaml" else output.to_json(data))
    else:
        click.echo(f"{output.resource_name(info, obj)} created (dry run)")


async def _create_typed(conn: Conn, info: ResourceInfo, obj: Obj, kind_word: str, dry_run: str,
                        output_fmt: str | None, client: Client | None = None) -> int:
    own = client is None
    client = client or conn.client()
    try:
        ns = conn.ns(client) if info.namespaced else None
        if dry_run == "client":
            _dry_run_print(obj, output_fmt, info)
            return 0
        try:
            created = await client.create(info.group_resource, obj, ns)
        except StatusError as exc:
            raise CliError(f"failed to create {kind_word}: {exc.message}") from exc
        if output_fmt in ("yaml", "json"):
            sys.stdout.write(output.to_yaml(created) if output_fmt == "yaml" else output.to_json(created))
        elif output_fmt == "name":
            click.echo(output.resource_name(info, created))
        else:
            click.echo(f"{output.resource_name(info, created)} created")
        return 0
    finally:
        if own:
            await client.close()


@click.group("create", invoke_without_command=True)
@click.option("-f", "--filename", "filenames", multiple=True, help="File, directory or - with manifests.")
@connection_options
@click.pass_context
def create_cmd(ctx: click.Context, filenames: tuple[str, ...], conn: Conn) -> None:
    """Create a resource from a file or from arguments (kubectl create)."""
    ctx.obj = conn
    if ctx.invoked_subcommand is not None:
        return
    if not filenames:
        click.echo(ctx.get_help())
        sys.exit(1)

    async def main() -> int:
        client = conn.client()
        failed = False
        try:
            for source, obj in manifests.load(list(filenames)):
                try:
                    info = _info_for(obj, source)
                    ns = _target_namespace(info, obj, conn, client)
                    created = await client.create(info.group_resource, obj, ns)
                    click.echo(f"{output.resource_name(info, created)} created")
                except StatusError as exc:
                    failed = True
                    if exc.reason == "AlreadyExists":
                        click.echo(f'Error from server ({exc.reason}): error when creating "{source}": '
                                   f"{exc.message}", err=True)
                    else:
                        click.echo(error_text(exc), err=True)
                except CliError as exc:
                    failed = True
                    click.echo(error_text(exc), err=True)
        finally:
            await client.close()
        return 1 if failed else 0

    run(main)


def _sub_conn(ctx: click.Context, conn: Conn) -> Conn:
    """Options given to ``create`` itself apply unless the subcommand sets its own."""
    parent: Conn | None = ctx.obj if isinstance(ctx.obj, Conn) else None
    if parent is None:
        return conn
    return Conn(conn.kubeconfig or parent.kubeconfig, conn.context or parent.context,
                conn.namespace or parent.namespace)


_dry_run_option = click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
                               help="client: only print the object that would be sent.")
_output_option = click.option("-o", "--output", "output_fmt", default=None, help="yaml|json|name.")


@create_cmd.command("job")
@click.argument("name")
@click.argument("command", nargs=-1)
@click.option("--image", default=None, help="Image name to run.")
@click.option("--from", "from_", default=None, help="cronjob/NAME to create the job from.")
@_dry_run_option
@_output_option
@connection_options
@click.pass_context
def create_job_cmd(ctx: click.Context, name: str, command: tuple[str, ...], image: str | None, from_: str | None,
                   dry_run: str, output_fmt: str | None, conn: Conn) -> None:
    """Create a job: ``create job NAME --image=IMG -- CMD...`` or ``--from=cronjob/NAME``."""
    conn = _sub_conn(ctx, conn)

    async def main() -> int:
        if from_:
            if image or command:
                raise CliError("either --image or --from must be specified")
            kind, _, source = from_.partition("/")
            if not _is_cronjob(kind):
                raise CliError(f"from must be an existing cronjob: {from_}")
            client = conn.client()
            try:
                cj = await client.get("cronjobs.batch", source, conn.ns(client))
                return await _create_typed(conn, registry.JOBS, job_from_cronjob(name, cj), "job", dry_run,
                                           output_fmt, client)
            finally:
                await client.close()
        if not image:
            raise CliError("either --image or --from must be specified")
        return await _create_typed(conn, registry.JOBS, job_manifest(name, image, list(command)), "job", dry_run,
                                   output_fmt)

    run(main)


def _is_cronjob(kind: str) -> bool:
    try:
        return registry.resolve(kind).kind == "CronJob"
    except KeyError:
        return False


@create_cmd.command("cronjob")
@click.argument("name")
@click.argument("command", nargs=-1)
@click.option("--image", required=True, help="Image name to run.")
@click.option("--schedule", required=True, help="A schedule in the Cron format the job should be run with.")
@click.option("--restart", default="OnFailure", help="OnFailure or Never.")
@_dry_run_option
@_output_option
@connection_options
@click.pass_context
def create_cronjob_cmd(ctx: click.Context, name: str, command: tuple[str, ...], image: str, schedule: str,
                       restart: str, dry_run: str, output_fmt: str | None, conn: Conn) -> None:
    """Create a cronjob: ``create cronjob NAME --image=IMG --schedule='*/1 * * * *' -- CMD...``."""
    conn = _sub_conn(ctx, conn)
    run(lambda: _create_typed(conn, registry.CRONJOBS, cronjob_manifest(name, image, schedule, list(command),
                                                                         restart), "cronjob", dry_run, output_fmt))


@create_cmd.command("namespace")
@click.argument("name")
@_dry_run_option
@_output_option
@connection_options
@click.pass_context
def create_namespace_cmd(ctx: click.Context, name: str, dry_run: str, output_fmt: str | None, conn: Conn) -> None:
    """Create a namespace."""
    conn = _sub_conn(ctx, conn)
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {}, "status": {}}
    run(lambda: _create_typed(conn, registry.NAMESPACES, body, "namespace", dry_run, output_fmt))
