"""Per-object gauges named as kube-state-metrics names them, computed at scrape time.

Why at scrape time: a gauge per Job updated on every informer event would cost work on
the hot path of every status write; reading the shared informer caches when Prometheus
asks (every 15-60 s) costs one pass over the Jobs and CronJobs instead. Runs with the
controllers (on the leader), so its caches are the ones the controllers already keep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric

from jobplane import metrics
from jobplane.api.meta import parse_time
from jobplane.controllers.cronjob import schedule as sched

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

Obj = dict[str, Any]


def job_families(jobs: Iterable[Obj]) -> list[Metric]:
    """kube_job_status_{active,succeeded,failed} and kube_job_complete{condition}."""
    labels = ["namespace", "job_name"]
    active = GaugeMetricFamily("kube_job_status_active", "The number of actively running pods.", labels=labels)
    succeeded = GaugeMetricFamily("kube_job_status_succeeded", "The number of pods which reached Phase "
                                  "Succeeded.", labels=labels)
    failed = GaugeMetricFamily("kube_job_status_failed", "The number of pods which reached Phase Failed.",
                               labels=labels)
    complete = GaugeMetricFamily("kube_job_complete", "The job has completed its execution.",
                                 labels=[*labels, "condition"])
    for job in jobs:
        md = job.get("metadata") or {}
        key = [md.get("namespace", ""), md.get("name", "")]
        status = job.get("status") or {}
        active.add_metric(key, float(status.get("active") or 0))
        succeeded.add_metric(key, float(status.get("succeeded") or 0))
        failed.add_metric(key, float(status.get("failed") or 0))
        cond = next((c for c in status.get("conditions") or () if c.get("type") == "Complete"), None)
        if cond is not None:
            value = str(cond.get("status", "")).lower()
            for option in ("true", "false", "unknown"):
                complete.add_metric([*key, option], 1.0 if option == value else 0.0)
    return [active, succeeded, failed, complete]


def cronjob_families(cronjobs: Iterable[Obj]) -> list[Metric]:
    """kube_cronjob_next_schedule_time: the next run after the last one (or after creation),
    as kube-state-metrics computes it."""
    nxt = GaugeMetricFamily("kube_cronjob_next_schedule_time", "Next time the cronjob should be scheduled. The "
                            "time after lastScheduleTime, or after the cron job's creation time if it's never "
                            "been scheduled. Use this to determine if the job is delayed.",
                            labels=["namespace", "cronjob"])
    for cj in cronjobs:
        when = next_schedule_time(cj)
        if when is not None:
            md = cj.get("metadata") or {}
            nxt.add_metric([md.get("namespace", ""), md.get("name", "")], when)
    return [nxt]


def next_schedule_time(cj: Obj) -> float | None:
    """The schedule's next time after lastScheduleTime (or creation); None when it has none."""
    md = cj.get("metadata") or {}
    spec = cj.get("spec") or {}
    base = parse_time((cj.get("status") or {}).get("lastScheduleTime")) or parse_time(md.get("creationTimestamp"))
    if base is None:
        return None
    try:
        return sched.parse(spec.get("schedule") or "", spec.get("timeZone")).next(
            datetime.fromtimestamp(base, UTC)).timestamp()
    except sched.ScheduleError:
        return None


async def run(ctx: ControllerContext) -> None:
    """Register the collector over the shared Job and CronJob informers until cancelled."""
    jobs = ctx.informers.informer("jobs")
    cronjobs = ctx.informers.informer("cronjobs")
    await jobs.start()
    await cronjobs.start()
    m = metrics.current()
    handle = m.add_collector(lambda: job_families(jobs.list()) + cronjob_families(cronjobs.list()))
    try:
        await asyncio.Event().wait()
    finally:
        m.remove_collector(handle)
