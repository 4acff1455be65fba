"""``jobplane get`` and ``jobplane describe``: reading, printed as kubectl prints.

``get`` decides everything in ``cli/get_plan.py`` (pure, table-tested); what is here fetches
what the plan names (server Tables, or full objects for ``-o``), prints it and follows the
watch."""

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
from jobplane.cli.get_plan import GetOptions, GetPlan, no_resources_message, parse_get, plan_get
from jobplane.cli.tabwriter import TabWriter
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
    options = GetOptions(args, all_namespaces, selector, field_selector, output_fmt, watch, watch_only,
                         output_watch_events, show_labels, show_kind, no_headers, ignore_not_found)

    async def main() -> int:
        parsed = parse_get(options)
        client = conn.client()
        try:
            plan = plan_get(parsed, conn.ns(client))
            if plan.tables:
                await get_tables(client, plan)
            else:
                await get_objects(client, plan)
            return 0
        finally:
            await client.close()

    run(main)


def _missing(plan: GetPlan, exc: Exception) -> bool:
    """A 404 that ``--ignore-not-found`` turns into no output."""
    return plan.ignore_not_found and getattr(exc, "code", None) == 404


def _table_lines(plan: GetPlan, info: ResourceInfo, table: Obj, *, header: bool, event_type: str | None,
                 columns: list[Obj] | None = None) -> list[str]:
    return output.table_lines(table, wide=plan.wide, with_namespace=plan.with_namespace,
                              show_labels=plan.show_labels, kind_prefix=plan.kind_prefix(info), header=header,
                              columns=columns, event_type=event_type if plan.event_column else None)


def _emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


async def get_tables(client: HttpClient, plan: GetPlan) -> None:
    """The server's Tables, one block per kind, then the watch if the plan has one."""
    writer = output.new_table_writer(watch=plan.watch is not None)
    printed_any = False
    columns_by_kind: dict[str, list[Obj]] = {}
    watch_rv: str | None = None
    for f in plan.fetches:
        try:
            table = await fetch_table(client, f.info, f.namespace, list(f.names), f.label_selector,
                                      f.field_selector)
        except Exception as exc:
            if _missing(plan, exc):
                continue
            raise
        columns_by_kind[f.info.kind] = table.get("columnDefinitions") or []
        if watch_rv is None:
            watch_rv = _table_rv(table)
        if not table.get("rows") or not plan.print_list:
            continue
        if printed_any:
            writer.write("\n")
        printed_any = True
        writer.write("\n".join(_table_lines(plan, f.info, table, header=plan.header, event_type="ADDED")) + "\n")
    _emit(writer.flush())
    if not printed_any and plan.empty_message:
        click.echo(plan.empty_message, err=True)
    if plan.watch is not None:
        w = plan.watch
        await watch_tables(client, plan, writer, rv=watch_rv,
                           header=plan.header and not printed_any,
                           columns=columns_by_kind.get(w.info.kind) or printers.columns_for(w.info))


async def watch_tables(client: Client, plan: GetPlan, writer: TabWriter, *, rv: str | None, header: bool,
                       columns: list[Obj]) -> None:
    """One table line per watch event, columns fixed by the list before it."""
    assert plan.watch is not None
    w = plan.watch
    async for etype, obj in client.watch(_resource(w.info), w.namespace, resource_version=rv,
                                         label_selector=w.label_selector, field_selector=w.field_selector):
        if etype == "BOOKMARK":
            continue
        table = printers.to_table(w.info, [obj], now=time.time())
        writer.write("\n".join(_table_lines(plan, w.info, table, header=header, event_type=etype,
                                            columns=columns)) + "\n")
        header = False
        _emit(writer.flush())


async def get_objects(client: Client, plan: GetPlan) -> None:
    """Full objects through the ``-o`` printer (name, json, yaml, jsonpath, custom-columns)."""
    found: list[tuple[ResourceInfo, Obj]] = []
    watch_rv: str | None = None
    for f in plan.fetches:
        try:
            items, rv = await fetch_objects(client, f.info, f.namespace, list(f.names), f.label_selector,
                                            f.field_selector)
        except Exception as exc:
            if _missing(plan, exc):
                continue
            raise
        found.extend((f.info, o) for o in items)
        if watch_rv is None:
            watch_rv = rv or _newest_rv(items)
    if plan.watch is not None:
        await watch_objects(client, plan, found if plan.print_list else [], watch_rv)
        return
    if not found and plan.empty_message:
        if plan.empty_list:
            sys.stdout.write(output.print_objects(plan.printer, plan.printer_arg, [], False))
        click.echo(plan.empty_message, err=True)
        return
    _emit(output.print_objects(plan.printer, plan.printer_arg, found, plan.single))


async def watch_objects(client: Client, plan: GetPlan, listed: list[tuple[ResourceInfo, Obj]],
                        rv: str | None) -> None:
    """``get -w -o FORMAT``: the listed objects one by one, then one object per event."""
    assert plan.watch is not None
    w = plan.watch
    stream = output.ObjectStream(plan.printer, plan.printer_arg, event_types=plan.event_column, header=plan.header)
    for info, obj in listed:
        _emit(stream.text(info, obj))
    async for etype, obj in client.watch(_resource(w.info), w.namespace, resource_version=rv,
                                         label_selector=w.label_selector, field_selector=w.field_selector):
        if etype != "BOOKMARK":
            _emit(stream.text(w.info, fill_type(w.info, obj), etype))


def _newest_rv(items: list[Obj]) -> str | None:
    """A named object's own resourceVersion (a GET answers no list's)."""
    found = [str((i.get("metadata") or {}).get("resourceVersion") or "") for i in items]
    rvs = [int(v) for v in found if v.isdigit()]
    return str(max(rvs)) if rvs else None


def _table_rv(table: Obj) -> str | None:
    """Where a watch after this Table starts: the list's RV, or the newest row's."""
    rv = (table.get("metadata") or {}).get("resourceVersion")
    if rv:
        return str(rv)
    found = [((r.get("object") or {}).get("metadata") or {}).get("resourceVersion") for r in table.get("rows") or ()]
    rvs = [int(v) for v in found if v and str(v).isdigit()]
    return str(max(rvs)) if rvs else None


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
