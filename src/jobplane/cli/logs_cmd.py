"""``jobplane logs`` and ``jobplane wait``: following a pod's output and an object's state."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import click

from jobplane.api.errors import StatusError
from jobplane.api.meta import parse_time
from jobplane.api.pods import PENDING, RUNNING, UNKNOWN
from jobplane.api.registry import ResourceInfo
from jobplane.api.selectors import label_selector_string
from jobplane.cli import jsonpath, output
from jobplane.cli.common import (
    CliError,
    Conn,
    connection_options,
    parse_duration,
    parse_targets,
    resolve,
    run,
    target_names,
)
from jobplane.client.base import Client

Obj = dict[str, Any]

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
_PHASE_RANK = {RUNNING: 2, UNKNOWN: 1, PENDING: 0}


def logging_rank(pod: Obj) -> tuple:
    """``ByLogging``: scheduled, running, ready, most restarts, newest first (smaller is better)."""
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
    restarts = sum(c.get("restartCount") or 0 for c in status.get("containerStatuses") or ())
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp")) or 0.0
    return (not (pod.get("spec") or {}).get("nodeName"), -_PHASE_RANK.get(status.get("phase", ""), -1),
            not ready, -restarts, -created)


def pick_container(pod: Obj, requested: str | None) -> tuple[str, str | None]:
    """(container, note for stderr) as kubectl chooses when ``-c`` is not given."""
    spec = pod.get("spec") or {}
    names = [c.get("name", "") for c in spec.get("containers") or ()]
    if requested:
        return requested, None
    annotated = ((pod.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if annotated and annotated in names:
        return annotated, None
    if not names:
        raise CliError(f"pod {pod['metadata'].get('name')} does not have a container")
    note = None
    if len(names) > 1:
        all_names = names + [f"{c.get('name')} (init)" for c in spec.get("initContainers") or ()]
        note = f'Defaulted container "{names[0]}" out of: {", ".join(all_names)}'
    return names[0], note


async def _pods_for(client: Client, owner: Obj, ns: str) -> list[Obj]:
    selector = (owner.get("spec") or {}).get("selector")
    text = label_selector_string(selector) if selector else ""
    data = await client.list("pods", ns, label_selector=None if text == "<none>" else text)
    return list(data.get("items") or ())


async def resolve_pod(client: Client, target: str, ns: str, wait_seconds: float) -> Obj:
    """The pod behind ``POD``, ``pod/NAME`` or ``job/NAME`` (waiting for a job's first pod)."""
    kind, slash, name = target.partition("/")
    if not slash:
        return await client.get("pods", target, ns)
    info = resolve(kind)
    if info.kind == "Pod":
        return await client.get("pods", name, ns)
    if info.kind != "Job":
        raise CliError(f"cannot get the logs from {output.kind_name(info)}: selector for {info.kind} "
                       "is not implemented")
    job = await client.get(info.group_resource, name, ns)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        pods = await _pods_for(client, job, ns)
        if pods:
            return sorted(pods, key=logging_rank)[0]
        if loop.time() >= deadline:
            raise CliError("timed out waiting for the condition")
        await asyncio.sleep(0.2)


@click.command("logs")
@click.argument("target")
@click.argument("container_arg", required=False)
@click.option("-c", "--container", default=None, help="Print the logs of this container.")
@click.option("-f", "--follow", is_flag=True, help="Stream the logs.")
@click.option("--tail", type=int, default=-1, help="Lines of recent log to show (-1: all).")
@click.option("--since", "since_", default=None, help="Only logs newer than a duration like 5s, 2m, 3h.")
@click.option("--timestamps", is_flag=True, help="Include timestamps on each line.")
@click.option("-p", "--previous", is_flag=True, help="The logs of the previous terminated container.")
@click.option("--all-containers", is_flag=True, help="Logs of all containers in the pod.")
@click.option("--prefix", is_flag=True, help="Prefix each line with the pod and container name.")
@click.option("--pod-running-timeout", default="20s", help="How long to wait for a pod to exist.")
@click.option("--archived", is_flag=True, help="job/NAME: the logs kept after the Job finished (jobplane history).")
@click.option("--index", type=int, default=None, help="With --archived: only the pod of this completion index.")
@connection_options
def logs_cmd(target: str, container_arg: str | None, container: str | None, follow: bool, tail: int,
             since_: str | None, timestamps: bool, previous: bool, all_containers: bool, prefix: bool,
             pod_running_timeout: str, archived: bool, index: int | None, conn: Conn) -> None:
    """Print the logs of a container in a pod or of a job's pod (kubectl logs)."""

    async def main() -> int:
        client = conn.client()
        try:
            ns = conn.ns(client)
            if archived:
                from jobplane.cli.history_cmd import print_archived

                await print_archived(client, target, ns, index)
                return 0
            pod = await resolve_pod(client, target, ns, parse_duration(pod_running_timeout))
            name = pod["metadata"]["name"]
            spec = pod.get("spec") or {}
            if all_containers:
                containers = [c["name"] for c in spec.get("initContainers") or ()] + \
                             [c["name"] for c in spec.get("containers") or ()]
            else:
                chosen, note = pick_container(pod, container or container_arg)
                if note:
                    click.echo(note, err=True)
                containers = [chosen]
            since_seconds = max(1, int(parse_duration(since_) + 0.999)) if since_ else None
            out = sys.stdout.buffer
            for c in containers:
                line_prefix = f"[pod/{name}/{c}] ".encode() if prefix else b""
                pending = b""
                async for chunk in client.read_log(name, ns, container=c, follow=follow,
                                                   tail_lines=tail if tail >= 0 else None,
                                                   since_seconds=since_seconds, timestamps=timestamps,
                                                   previous=previous):
                    if line_prefix:
                        pending += chunk
                        *lines, pending = pending.split(b"\n")
                        for line in lines:
                            out.write(line_prefix + line + b"\n")
                    else:
                        out.write(chunk)
                    out.flush()
                if pending:
                    out.write(line_prefix + pending)
                    out.flush()
            return 0
        finally:
            await client.close()

    run(main)


# --------------------------------------------------------------------------- wait


def condition_predicate(spec: str) -> Callable[[Obj], bool]:
    """``--for=condition=NAME[=VALUE]`` or ``--for=jsonpath={.path}=VALUE``."""
    if spec.startswith("condition="):
        rest = spec[len("condition="):]
        ctype, _, value = rest.partition("=")
        value = value or "True"

        def has_condition(obj: Obj) -> bool:
            for c in (obj.get("status") or {}).get("conditions") or ():
                if str(c.get("type", "")).lower() == ctype.lower():
                    return str(c.get("status", "")).lower() == value.lower()
            return False

        return has_condition
    if spec.startswith("jsonpath="):
        rest = spec[len("jsonpath="):]
        want: str | None
        if rest.startswith("{"):
            close = rest.rfind("}")
            expr, tail = rest[:close + 1], rest[close + 1:]
            want = tail[1:] if tail.startswith("=") else None
        else:
            expr, sep, after = rest.partition("=")
            want = after if sep else None
        template = jsonpath.relaxed(expr)

        def matches(obj: Obj) -> bool:
            found = jsonpath.find_results(template, obj)
            if want is None:
                return bool(found)
            return any(jsonpath._text(v) == want for v in found)

        return matches
    raise CliError(f"unrecognized condition: \"{spec}\"")


async def wait_for(client: Client, info: ResourceInfo, name: str, ns: str | None, for_delete: bool,
                   predicate: Callable[[Obj], bool] | None, timeout: float) -> str:
    """'met', 'timeout'; NotFound propagates unless waiting for deletion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    resource = info.group_resource
    while True:
        try:
            obj = await client.get(resource, name, ns)
        except StatusError as exc:
            if exc.code == 404 and for_delete:
                return "met"
            raise
        if not for_delete and predicate is not None and predicate(obj):
            return "met"
        uid = (obj.get("metadata") or {}).get("uid")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        remaining = deadline - loop.time()
        if remaining <= 0:
            return "timeout"
        try:
            async with asyncio.timeout(remaining):
                async for etype, ev in client.watch(resource, ns, resource_version=rv,
                                                    field_selector=f"metadata.name={name}",
                                                    timeout_seconds=max(1, int(remaining) + 1)):
                    if etype == "DELETED" and for_delete:
                        return "met"
                    if etype == "DELETED" or (ev.get("metadata") or {}).get("uid") != uid:
                        if for_delete:
                            return "met"
                        continue
                    if not for_delete and predicate is not None and etype in ("ADDED", "MODIFIED") \
                            and predicate(ev):
                        return "met"
        except TimeoutError:
            return "timeout"
        except StatusError as exc:
            if exc.code != 410:
                raise
        if loop.time() >= deadline:
            return "timeout"
        await asyncio.sleep(0.05)


@click.command("wait")
@click.argument("args", nargs=-1)
@click.option("--for", "for_", required=True, help="condition=Complete, delete, or jsonpath='{.x}'=value.")
@click.option("--timeout", default="30s", help="How long to wait (30s, 5m...).")
@click.option("-l", "--selector", default=None, help="Wait for the objects matching this selector.")
@click.option("--all", "all_", is_flag=True, help="Wait for all objects of the kind.")
@connection_options
def wait_cmd(args: tuple[str, ...], for_: str, timeout: str, selector: str | None, all_: bool, conn: Conn) -> None:
    """Wait for a condition on one or many resources (kubectl wait)."""

    async def main() -> int:
        for_delete = for_ == "delete"
        predicate = None if for_delete else condition_predicate(for_)
        seconds = parse_duration(timeout)
        if seconds < 0:
            seconds = 7 * 24 * 3600.0
        targets, _ = parse_targets(args)
        client = conn.client()
        failed = False
        try:
            work: list[tuple[ResourceInfo, str, str | None]] = []
            for info, names in targets:
                ns = conn.ns(client) if info.namespaced else None
                names = await target_names(client, info, ns, names, selector, all_)
                if not names:
                    raise CliError("no matching resources found")
                work.extend((info, n, ns) for n in names)
            for info, name, ns in work:
                result = await wait_for(client, info, name, ns, for_delete, predicate, seconds)
                if result == "met":
                    click.echo(f"{output.kind_name(info)}/{name} condition met")
                else:
                    failed = True
                    click.echo(f"error: timed out waiting for the condition on {info.plural}/{name}", err=True)
        finally:
            await client.close()
        return 1 if failed else 0

    run(main)

