"""``GET /metrics`` and the API server's own metrics (request counts and latencies as
upstream's apiserver labels them, storage object counts).

Mounted on the API handler by ``install``: /metrics takes the same bearer-token check as
every API request (upstream serves it as a nonResourceURL that RBAC authorizes).
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from jobplane.api import errors, registry
from jobplane.apiserver import negotiation
from jobplane.apiserver.http import ROUTE_KEY, ApiHandler, Route
from jobplane.metrics import CONTENT_TYPE, Metrics
from jobplane.storage.base import Store

NON_RESOURCE = ("", "", "", "", "", "")


def request_labels(request: web.Request) -> tuple[str, ...]:
    """(verb, dry_run, group, version, resource, subresource, scope, component), with
    upstream's verb names (LIST, WATCH, DELETECOLLECTION, APPLY) and scopes."""
    method = request.method
    dry_run = "All" if "dryRun" in request.query else ""
    route: Route | None = request.get(ROUTE_KEY)
    if route is None:
        return (method, dry_run, *NON_RESOURCE)
    if method == "GET":
        if route.watch_prefix or negotiation.truthy(request.query.get("watch")):
            verb = "WATCH"
        else:
            verb = "GET" if route.name is not None else "LIST"
    elif method == "DELETE" and route.name is None:
        verb = "DELETECOLLECTION"
    elif method == "PATCH" and "apply-patch" in (request.headers.get("Content-Type") or ""):
        verb = "APPLY"
    else:
        verb = method
    info = route.info
    scope = "resource" if route.name is not None else ("namespace" if route.namespace else "cluster")
    return (verb, dry_run, info.group, info.version, info.plural, route.subresource or "", scope, "apiserver")


def storage_families(store: Store) -> Iterable[Metric]:
    """apiserver_storage_objects{resource}: objects stored per resource (counted in the
    store's in-memory index, no database read)."""
    count = getattr(store, "count_prefix", None)
    if count is None:
        return []
    objects = GaugeMetricFamily("apiserver_storage_objects", "Number of stored objects at the time of last check "
                                "split by kind.", labels=["resource"])
    seen: set[str] = set()
    for info in registry.RESOURCES:
        prefix = info.storage_key_prefix
        if prefix in seen:
            continue
        seen.add(prefix)
        objects.add_metric([info.group_resource], float(count(prefix + "/")))
    rev = GaugeMetricFamily("jobplane_storage_revision", "The store's current revision (every write adds one).")
    rev.add_metric([], float(store.current_revision()))
    families: list[Metric] = [objects, rev]
    tallies = getattr(store, "write_counts", None)
    if tallies is not None:
        writes = CounterMetricFamily("jobplane_storage_writes", "Changes committed to the store since the server "
                                     "started, by storage resource and event type.", labels=["resource", "type"])
        written = CounterMetricFamily("jobplane_storage_write_bytes", "JSON bytes of the changes committed to the "
                                      "store since the server started.", labels=["resource", "type"])
        for (resource, etype), (n, size) in sorted(tallies().items()):
            writes.add_metric([resource, etype], float(n))
            written.add_metric([resource, etype], float(size))
        families += [writes, written]
    return families


def install(handler: ApiHandler, metrics: Metrics, store: Store) -> None:
    """Observe every request and serve ``/metrics`` from ``metrics``' registry."""
    observe = metrics.requests.observe

    def observer(request: web.Request, status: int, seconds: float) -> None:
        observe(request_labels(request), status, seconds)

    async def serve(request: web.Request) -> web.Response:
        if request.path != "/metrics":
            raise errors.resource_not_found_path()
        if request.method != "GET":
            raise errors.StatusError(405, "MethodNotAllowed",
                                     "the server does not allow this method on the requested resource")
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    metrics.add_collector(lambda: storage_families(store))
    handler.observer = observer
    handler.mount("metrics", serve)
