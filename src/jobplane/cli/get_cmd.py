"""``jobplane get`` and ``jobplane describe``: reading, printed as kubectl prints."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from jobplane.api import printers
from jobplane.api.nodes import LEASE_NAMESPACE
from jobplane.api.registry import ResourceInfo
from jobplane.cli import describe as describers
from jobplane.cli import output
from jobplane.cli.common import Conn, connection_options, fill_type, parse_targets, run
from jobplane.client.base import Client
from jobplane.client.http import HttpClient

Obj = dict[str, Any]

TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
                "g=meta.k8s.io,application/json")


def _list_params(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params = {"limit": "500"}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


async def fetch_table(client: HttpClient, info: ResourceInfo, ns: str | None, names: list[str],
                      label_selector: str | None, field_selector: str | None) -> Obj:
    """The server's Table for a list or for named objects (rows merged)."""
    ns = ns if info.namespaced else None
    if not names:
        resp = await client.request("GET", info.collection_path(ns), accept=TABLE_ACCEPT,
                                    params=_list_params(label_selector, field_selector))
        return _as_table(info, resp.json(), ns)
    merged: Obj | None = None
    for name in names:
        resp = await client.request("GET", info.object_path(ns, name), accept=TABLE_ACCEPT)
        table = _as_table(info, resp.json(), ns)
        if merged is None:
            merged = table
        else:
            merged["rows"].extend(table.get("rows") or [])
    assert merged is not None
    return merged


def _as_table(info: ResourceInfo, data: Obj, ns: str | None) -> Obj:
    """A server that ignored ``as=Table`` answers objects; print them with our printers."""
    if data.get("kind") == "Table":
        return data
    items = data.get("items") if "items" in data else [data]
    return printers.to_table(info, items or [], now=time.time(), list_metadata=data.get("metadata"))


async def fetch_objects(client: Client, info: ResourceInfo, ns: str | None, names: list[str],
                        label_selector: str | None, field_selector: str | None) -> tuple[list[Obj], str]:
    """Full objects (kind/apiVersion filled in) and the list's resourceVersion."""
    ns = ns if info.namespaced else None
    if names:
        return [fill_type(info, await client.get(_resource(info), name, ns)) for name in names], ""
    data = await client.list(_resource(info), ns, label_selector=label_selector, field_selector=field_selector,
                             limit=500)
    items = [fill_type(info, i) for i in data.get("items") or ()]
    return items, (data.get("metadata") or {}).get("resourceVersion", "")


def _resource(info: ResourceInfo) -> str:
    return info.group_resource


def no_resources_message(infos: list[ResourceInfo], all_namespaces: bool, ns: str) -> str:
    if not all_namespaces and all(i.namespaced for i in infos):
        return f"No resources found in {ns} namespace."
    return "No resources found"


@click.command("get")
@click.argument("args", nargs=-1)
@click.option("-A", "--all-namespaces", is_flag=True, help="List across all namespaces.")
@click.option("-l", "--selector", default=None, help="Label selector (e.g. -l key1=value1,key2=value2).")
@click.option("--field-selector", default=None, help="Field selector (e.g. metadata.name=pi).")
@click.option("-o", "--output", "output_fmt", default=None,
              help="wide|yaml|json|name|jsonpath=...|jsonpath-as-json=...|custom-columns=...")
@click.option("-w", "--watch", is_flag=True, help="After listing, watch for changes.")
@click.option("--watch-only", is_flag=True, help="Watch for changes without listing first.")
@click.option("--output-watch-events", is_flag=True, help="Add an EVENT column to watch output.")
@click.option("--show-labels", is_flag=True, help="Show all labels as the last column.")
@click.option("--show-kind", is_flag=True, help="List the resource type with each name.")
@click.option("--no-headers", is_flag=True, help="Print no header line.")
@click.option("--ignore-not-found", is_flag=True, help="Treat a missing named object as no output.")
@connection_options
def get_cmd(args: tuple[str, ...], all_namespaces: bool, selector: str | None, field_selector: str | None,
            output_fmt: str | None, watch: bool, watch_only: bool, output_watch_events: bool, show_labels: bool,
            show_kind: bool, no_headers: bool, ignore_not_found: bool, conn: Conn) -> None:
    """Display one or many resources (kubectl get)."""

    async def main() -> int:
        fmt, arg = output.parse_output(output_fmt)
        targets, multi = parse_targets(args)
        client = conn.client()
        try:
            ns = conn.ns(client)
            list_ns = None if all_namespaces else ns
            if fmt in ("table", "wide"):
                return await _get_tables(client, targets, multi or show_kind, list_ns, ns, fmt == "wide")
            return await _get_objects(client, targets, list_ns, ns, fmt, arg)
        finally:
            await client.close()

    async def _get_tables(client: HttpClient, targets: list[tuple[ResourceInfo, list[str]]], with_kind: bool,
                          list_ns: str | None, ns: str, wide: bool) -> int:
        writer = output.new_table_writer(watch=watch or watch_only)
        printed_any = False
        first_table = True
        columns_by_kind: dict[str, list[Obj]] = {}
        watch_rv: str | None = None
        event_col = "" if output_watch_events else None
        for info, names in targets:
            if watch_only:
                continue
            try:
                table = await fetch_table(client, info, list_ns, names, selector, field_selector)
            except Exception as exc:
                if ignore_not_found and getattr(exc, "code", None) == 404:
                    continue
                raise
            columns_by_kind[info.kind] = table.get("columnDefinitions") or []
            if watch_rv is None:
                watch_rv = _table_rv(table)
            if not table.get("rows"):
                continue
            if not first_table:
                writer.write("\n")
            first_table = False
            printed_any = True
            lines = output.table_lines(table, wide=wide, with_namespace=all_namespaces, show_labels=show_labels,
                                       kind_prefix=output.kind_name(info) if with_kind else "",
                                       header=not no_headers,
                                       event_type="ADDED" if event_col is not None else None)
            writer.write("\n".join(lines) + "\n")
        sys.stdout.write(writer.flush())
        sys.stdout.flush()
        if not printed_any and not (watch or watch_only) and not names_given(targets):
            click.echo(no_resources_message([i for i, _ in targets], all_namespaces, ns), err=True)
        if watch or watch_only:
            info, names = targets[0]
            await _watch(client, info, list_ns, names, writer, wide, with_kind, watch_rv,
                         header=not printed_any and not no_headers,
                         columns=columns_by_kind.get(info.kind) or printers.columns_for(info))
        return 0

    async def _watch(client: Client, info: ResourceInfo, list_ns: str | None, names: list[str], writer: Any,
                     wide: bool, with_kind: bool, rv: str | None, header: bool, columns: list[Obj]) -> None:
        fs = field_selector
        if names:
            fs = ",".join(filter(None, [fs, f"metadata.name={names[0]}"]))
        ns = list_ns if info.namespaced else None
        if watch_only:
            rv = None
        async for etype, obj in client.watch(_resource(info), ns, resource_version=rv, label_selector=selector,
                                             field_selector=fs):
            if etype == "BOOKMARK":
                continue
            table = printers.to_table(info, [obj], now=time.time())
            lines = output.table_lines(table, wide=wide, with_namespace=all_namespaces, show_labels=show_labels,
                                       kind_prefix=output.kind_name(info) if with_kind else "",
                                       header=header, columns=columns,
                                       event_type=etype if output_watch_events else None)
            header = False
            writer.write("\n".join(lines) + "\n")
            sys.stdout.write(writer.flush())
            sys.stdout.flush()

    async def _get_objects(client: Client, targets: list[tuple[ResourceInfo, list[str]]], list_ns: str | None,
                           ns: str, fmt: str, arg: str) -> int:
        found: list[tuple[ResourceInfo, Obj]] = []
        single = len(targets) == 1 and len(targets[0][1]) == 1
        for info, names in targets:
            try:
                items, _ = await fetch_objects(client, info, list_ns, names, selector, field_selector)
            except Exception as exc:
                if ignore_not_found and getattr(exc, "code", None) == 404:
                    continue
                raise
            found.extend((info, o) for o in items)
        if not found and not single and fmt != "name":
            if fmt in ("yaml", "json"):
                sys.stdout.write(output.print_objects(fmt, arg, [], False))
            click.echo(no_resources_message([i for i, _ in targets], all_namespaces, ns), err=True)
            return 0
        sys.stdout.write(output.print_objects(fmt, arg, found, single))
        sys.stdout.flush()
        return 0

    run(main)


def _table_rv(table: Obj) -> str | None:
    """Where a watch after this Table starts: the list's RV, or the newest row's."""
    rv = (table.get("metadata") or {}).get("resourceVersion")
    if rv:
        return str(rv)
    found = [((r.get("object") or {}).get("metadata") or {}).get("resourceVersion") for r in table.get("rows") or ()]
    rvs = [int(v) for v in found if v and str(v).isdigit()]
    return str(max(rvs)) if rvs else None


def names_given(targets: list[tuple[ResourceInfo, list[str]]]) -> bool:
    return any(names for _, names in targets)


async def fetch_events(client: Client, obj: Obj) -> list[Obj]:
    """Events about one object, as describe asks for them; [] when the query fails."""
    meta = obj.get("metadata") or {}
    fs = [f"involvedObject.name={meta.get('name', '')}"]
    if meta.get("namespace"):
        fs.append(f"involvedObject.namespace={meta['namespace']}")
    if meta.get("uid"):
        fs.append(f"involvedObject.uid={meta['uid']}")
    try:
        data = await client.list("events", meta.get("namespace") or None, field_selector=",".join(fs), limit=500)
    except Exception:  # noqa: BLE001 - kubectl shows "Events: <none>" then
        return []
    return list(data.get("items") or ())


async def _node_extras(client: Client, node: Obj) -> tuple[Obj | None, list[Obj] | None]:
    """The node's heartbeat Lease and its non-terminated pods, as describe node shows them."""
    name = (node.get("metadata") or {}).get("name", "")
    try:
        lease = await client.get("leases.coordination.k8s.io", name, LEASE_NAMESPACE)
    except Exception:  # noqa: BLE001 - the section is left out
        lease = None
    try:
        data = await client.list("pods", None, field_selector=f"spec.nodeName={name},status.phase!=Succeeded,"
                                                              "status.phase!=Failed")
        pods = list(data.get("items") or ())
    except Exception:  # noqa: BLE001
        pods = None
    return lease, pods


@click.command("describe")
@click.argument("args", nargs=-1)
@click.option("-A", "--all-namespaces", is_flag=True, help="Describe across all namespaces.")
@click.option("-l", "--selector", default=None, help="Label selector.")
@click.option("--show-events/--no-show-events", default=True, help="Show events about the object.")
@connection_options
def describe_cmd(args: tuple[str, ...], all_namespaces: bool, selector: str | None, show_events: bool,
                 conn: Conn) -> None:
    """Show details of a resource or group of resources (kubectl describe)."""

    async def main() -> int:
        targets, _ = parse_targets(args)
        client = conn.client()
        try:
            ns = None if all_namespaces else conn.ns(client)
            texts: list[str] = []
            for info, names in targets:
                if names:
                    objs, _ = await fetch_objects(client, info, ns, names, None, None)
                else:
                    objs, _ = await fetch_objects(client, info, ns, [], selector, None)
                    if not objs:
                        click.echo(no_resources_message([info], all_namespaces, ns or ""), err=True)
                for obj in objs:
                    events = await fetch_events(client, obj) if show_events and info.kind != "Namespace" \
                        else None
                    if info.kind == "Node":
                        lease, pods = await _node_extras(client, obj)
                        texts.append(describers.describe_node(obj, events, time.time(), lease, pods))
                    else:
                        texts.append(describers.describe(info.kind, obj, events, time.time()))
            sys.stdout.write("\n\n".join(texts))
            sys.stdout.flush()
            return 0
        finally:
            await client.close()

    run(main)
