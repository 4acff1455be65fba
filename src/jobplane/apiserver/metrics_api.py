"""``metrics.k8s.io/v1beta1`` (NodeMetrics, PodMetrics) from the agents' measurements, in
metrics-server's shapes, so ``kubectl top nodes|pods [--containers]`` works. Nothing is
stored: each request asks the embedded agent directly and other agents over HTTPS
(``/stats/usage``, as metrics-server scrapes kubelets)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
import orjson

from jobplane.api import errors
from jobplane.api.registry import NODE_METRICS, POD_METRICS, ResourceInfo

Obj = dict[str, Any]
API_VERSION = "metrics.k8s.io/v1beta1"
_FETCH_TIMEOUT = 5.0


def cpu_quantity(cores: float) -> str:
    return f"{max(0, round(cores * 1e9))}n"


def memory_quantity(nbytes: int) -> str:
    return f"{max(0, nbytes) // 1024}Ki"


def go_duration(seconds: float) -> str:
    ms = round(seconds * 1000)
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms / 1000:g}s"


async def fetch_remote(endpoint: str, token: str | None) -> Obj | None:
    """An agent's ``/stats/usage``; None when it cannot be reached (that node is left out,
    as metrics-server leaves out a kubelet it cannot scrape)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_FETCH_TIMEOUT)) as session:
            async with session.get(f"https://{endpoint}/stats/usage", headers=headers, ssl=False) as resp:
                if resp.status != 200:
                    return None
                return orjson.loads(await resp.read())
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
        return None


async def gather(nodes: Iterable[Obj], local: tuple[str, Callable[[], Obj]] | None,
                 endpoint_of: Callable[[Obj], str | None], token: str | None) -> list[Obj]:
    """Every reachable node's usage report."""
    reports: list[Obj] = []
    remote = []
    for node in nodes:
        name = node["metadata"]["name"]
        if local is not None and local[0] == name:
            reports.append(local[1]())
            continue
        endpoint = endpoint_of(node)
        if endpoint:
            remote.append(fetch_remote(endpoint, token))
    reports.extend(r for r in await asyncio.gather(*remote) if r)
    return reports


def node_metrics(node: Obj, report: Obj, now: str) -> Obj:
    usage = report["node"]
    md = node.get("metadata") or {}
    return {"metadata": {"name": md["name"], "creationTimestamp": now, "labels": md.get("labels") or {}},
            "timestamp": now, "window": go_duration(usage.get("window") or 0),
            "usage": {"cpu": cpu_quantity(usage["cpu"]), "memory": memory_quantity(usage["memory"])}}


def pod_metrics(pod: Obj, entry: Obj, now: str) -> Obj:
    md = pod.get("metadata") or {}
    return {"metadata": {"name": md["name"], "namespace": md.get("namespace"), "creationTimestamp": now,
                         "labels": md.get("labels") or {}},
            "timestamp": now, "window": go_duration(entry.get("window") or 0),
            "containers": [{"name": c["name"], "usage": {"cpu": cpu_quantity(c["cpu"]),
                                                         "memory": memory_quantity(c["memory"])}}
                           for c in entry["containers"]]}


def as_list(info: ResourceInfo, items: list[Obj]) -> Obj:
    for item in items:
        item["kind"], item["apiVersion"] = info.kind, API_VERSION
    return {"kind": info.kind_list, "apiVersion": API_VERSION, "metadata": {}, "items": items}


def answer(info: ResourceInfo, name: str | None, items: list[Obj]) -> Obj:
    """The list, or the one object ``name`` names (404 as upstream when it has no metrics)."""
    if name is None:
        return as_list(info, items)
    for item in items:
        if item["metadata"]["name"] == name:
            item["kind"], item["apiVersion"] = info.kind, API_VERSION
            return item
    raise errors.not_found(info.plural, info.group, name)


__all__ = ["NODE_METRICS", "POD_METRICS", "answer", "gather", "node_metrics", "pod_metrics"]
