"""Prometheus metrics, by upstream's names, labels and buckets, in one registry per server.

Why a registry per server (not prometheus_client's global one): tests start several
servers in one process, and each must count only its own work. The server makes a
``Metrics`` and installs it with ``use()``; everything started afterwards in that task
(controllers, work queues) finds it with ``current()``, so no constructor signature
changes. Code running with no server installed (unit tests) gets a throw-away registry.

Hot paths only touch pre-resolved children (``labels()`` is looked up once per label
tuple and cached); values that are a function of state (queue depth, per-Job gauges,
object counts) are computed when Prometheus scrapes, by the collectors registered with
``add_collector``.
"""

from __future__ import annotations

import bisect
import contextvars
import itertools
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Upstream's component-base exposes no ``_created`` series; neither do we.
disable_created_metrics()


def exponential_buckets(start: float, factor: float, count: int) -> list[float]:
    """component-base's ``ExponentialBuckets``."""
    return [start * factor ** i for i in range(count)]


# apiserver/pkg/endpoints/metrics: requestLatencies buckets.
REQUEST_BUCKETS = [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20,
                   30, 45, 60]
REQUEST_LABELS = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component")
# client-go workqueue: queue and work durations from 10ns in decades.
WORKQUEUE_BUCKETS = exponential_buckets(10e-9, 10, 10)


class _Cached:
    """``metric.labels(*values)`` memoised: prometheus_client validates and locks on every
    ``labels`` call, which the request path cannot afford."""

    __slots__ = ("metric", "children")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self.metric.labels(*values)
        return child


class _FnCollector(Collector):
    def __init__(self, fn: Callable[[], Iterable[Metric]]) -> None:
        self.fn = fn

    def collect(self) -> Iterable[Metric]:
        return self.fn()


class JobMetrics:
    """pkg/controller/job/metrics (subsystem ``job_controller``)."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.sync_duration = _Cached(Histogram(
            "job_controller_job_sync_duration_seconds", "The time it took to sync a job",
            ("completion_mode", "result", "action"), registry=r, buckets=exponential_buckets(0.004, 2, 15)))
        self.syncs = _Cached(Counter(
            "job_controller_job_syncs", "The number of job syncs", ("completion_mode", "result", "action"),
            registry=r))
        self.finished = _Cached(Counter(
            "job_controller_jobs_finished", "The number of finished jobs", ("completion_mode", "result", "reason"),
            registry=r))
        self.by_external_controller = _Cached(Counter(
            "job_controller_jobs_by_external_controller", "The number of Jobs managed by an external controller",
            ("controller_name",), registry=r))
        self.pods_finished = _Cached(Counter(
            "job_controller_job_pods_finished", "The number of finished Pods that are fully tracked",
            ("completion_mode", "result"), registry=r))
        self.failure_policy = _Cached(Counter(
            "job_controller_pod_failures_handled_by_failure_policy",
            "The number of failed Pods handled by failure policy with respect to the failure policy action "
            "applied based on the matched rule.", ("action",), registry=r))
        self.tracking_finalizer = _Cached(Counter(
            "job_controller_terminated_pods_tracking_finalizer",
            "The number of terminated pods (phase=Failed|Succeeded) that have the finalizer "
            "batch.kubernetes.io/job-tracking. The event label can be \"add\" or \"delete\".", ("event",),
            registry=r))
        self.finished_indexes = _Cached(Counter(
            "job_controller_job_finished_indexes", "The number of finished indexes.", ("status", "backoffLimit"),
            registry=r))
        self.pods_creation = _Cached(Counter(
            "job_controller_job_pods_creation",
            "The number of Pods created by the Job controller labelled with a reason for the Pod creation.",
            ("reason", "status"), registry=r))

    def sync(self, completion_mode: str, result: str, action: str, seconds: float) -> None:
        self.sync_duration(completion_mode, result, action).observe(seconds)
        self.syncs(completion_mode, result, action).inc()


class RequestMetrics:
    """apiserver_request_total / apiserver_request_duration_seconds (upstream labels).

    Counted in plain dicts and turned into families at scrape time: prometheus_client's
    ``Histogram.observe`` (a lock and a linear bucket walk) costs more than the rest of
    a cached GET's bookkeeping; one event loop thread needs no lock."""

    def __init__(self, r: CollectorRegistry) -> None:
        self._totals: dict[tuple[tuple[str, ...], int], int] = {}
        self._durations: dict[tuple[str, ...], list[float]] = {}  # bucket counts..., +Inf, sum
        r.register(_FnCollector(self._collect))

    def observe(self, labels: tuple[str, ...], code: int, seconds: float) -> None:
        key = (labels, code)
        totals = self._totals
        totals[key] = totals.get(key, 0) + 1
        h = self._durations.get(labels)
        if h is None:
            h = self._durations[labels] = [0.0] * (len(REQUEST_BUCKETS) + 2)
        h[bisect.bisect_left(REQUEST_BUCKETS, seconds)] += 1
        h[-1] += seconds

    def _collect(self) -> Iterable[Metric]:
        total = CounterMetricFamily("apiserver_request", "Counter of apiserver requests broken out for each "
                                    "verb, dry run value, group, version, resource, scope, component, and HTTP "
                                    "response code.", labels=[*REQUEST_LABELS, "code"])
        for (labels, code), n in list(self._totals.items()):
            total.add_metric([*labels, str(code)], n)
        duration = HistogramMetricFamily(
            "apiserver_request_duration_seconds", "Response latency distribution in seconds for each verb, dry run "
            "value, group, version, resource, subresource, scope and component.", labels=list(REQUEST_LABELS))
        edges = [*(floatToGoString(b) for b in REQUEST_BUCKETS), "+Inf"]
        for labels, h in list(self._durations.items()):
            cumulative = list(itertools.accumulate(h[:-1]))
            duration.add_metric(list(labels), list(zip(edges, cumulative, strict=True)), h[-1])
        return [total, duration]


class WorkQueueMetrics:
    """client-go's workqueue metrics (label ``name``). Depth, unfinished work and the
    longest running processor are read off the live queues at scrape time."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.adds = _Cached(Counter("workqueue_adds", "Total number of adds handled by workqueue", ("name",),
                                    registry=r))
        self.retries = _Cached(Counter("workqueue_retries", "Total number of retries handled by workqueue",
                                       ("name",), registry=r))
        self.queue_duration = _Cached(Histogram(
            "workqueue_queue_duration_seconds", "How long in seconds an item stays in workqueue before being "
            "requested.", ("name",), registry=r, buckets=WORKQUEUE_BUCKETS))
        self.work_duration = _Cached(Histogram(
            "workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes.",
            ("name",), registry=r, buckets=WORKQUEUE_BUCKETS))
        self.queues: weakref.WeakSet[Any] = weakref.WeakSet()
        r.register(_FnCollector(self._collect))

    def register(self, queue: Any) -> None:
        self.queues.add(queue)

    def _collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily("workqueue_depth", "Current depth of workqueue", labels=["name"])
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds", "How many seconds of work has been done that is in progress "
            "and hasn't been observed by work_duration.", labels=["name"])
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds", "How many seconds has the longest running processor "
            "for workqueue been running.", labels=["name"])
        now = time.perf_counter()
        for q in list(self.queues):
            name = q.name or "unnamed"
            depth.add_metric([name], len(q))
            starts = list(q.processing_since())
            unfinished.add_metric([name], sum(now - s for s in starts))
            longest.add_metric([name], max((now - s for s in starts), default=0.0))
        return [depth, unfinished, longest]


class Metrics:
    """Every metric family of one server, in its own registry."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=False)
        self.job = JobMetrics(r)
        self.requests = RequestMetrics(r)
        self.workqueue = WorkQueueMetrics(r)
        self.cronjob_skew = Histogram(
            "cronjob_controller_cronjob_job_creation_skew_duration_seconds",
            "Time between when a cronjob is scheduled to be run, and when the corresponding job is created",
            registry=r, buckets=exponential_buckets(1, 2, 10))

    def add_collector(self, fn: Callable[[], Iterable[Metric]]) -> Collector:
        """Register ``fn`` to produce metric families at scrape time; returns the handle
        ``remove_collector`` takes (controllers stop and start with leadership)."""
        collector = _FnCollector(fn)
        self.registry.register(collector)
        return collector

    def remove_collector(self, collector: Collector) -> None:
        try:
            self.registry.unregister(collector)
        except KeyError:
            pass

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


_current: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar("jobplane_metrics", default=None)
_fallback: Metrics | None = None


def current() -> Metrics:
    """The running server's metrics, or a process-wide throw-away set outside a server."""
    global _fallback
    m = _current.get()
    if m is not None:
        return m
    if _fallback is None:
        _fallback = Metrics()
    return _fallback


def use(metrics: Metrics) -> None:
    """Install ``metrics`` for this task and the tasks it starts from now on."""
    _current.set(metrics)
