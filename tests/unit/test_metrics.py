"""Metric families computed at scrape time, and the per-server registries."""

from __future__ import annotations

import asyncio

import orjson
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jobplane import metrics
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import FakeClock
from jobplane.controllers.state_metrics import cronjob_families, job_families


def samples(families) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_job_gauges_follow_status_and_conditions():
    job = {"metadata": {"namespace": "ns", "name": "j"},
           "status": {"active": 2, "succeeded": 5, "failed": 1,
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    got = samples(job_families([job]))
    key = (("job_name", "j"), ("namespace", "ns"))
    assert got[("kube_job_status_active", key)] == 2
    assert got[("kube_job_status_succeeded", key)] == 5
    assert got[("kube_job_status_failed", key)] == 1
    assert got[("kube_job_complete", (("condition", "true"), *key))] == 1
    assert got[("kube_job_complete", (("condition", "false"), *key))] == 0


def test_cronjob_next_schedule_after_last_run():
    cj = {"metadata": {"namespace": "ns", "name": "c", "creationTimestamp": "2026-01-01T00:00:00Z"},
          "spec": {"schedule": "*/5 * * * *"}, "status": {"lastScheduleTime": "2026-01-01T00:10:00Z"}}
    got = samples(cronjob_families([cj]))
    assert got[("kube_cronjob_next_schedule_time", (("cronjob", "c"), ("namespace", "ns")))] == 1767226500.0


async def test_each_server_counts_in_its_own_registry():
    first, second = metrics.Metrics(), metrics.Metrics()

    async def run_queue(m: metrics.Metrics, adds: int) -> None:
        metrics.use(m)
        q = WorkQueue(FakeClock(), name="q")
        for i in range(adds):
            q.add(str(i))
        key = await q.get()
        q.done(key)

    await asyncio.create_task(run_queue(first, 3))
    await asyncio.create_task(run_queue(second, 1))

    def parsed(m):
        return samples(text_string_to_metric_families(generate_latest(m.registry).decode()))

    assert parsed(first)[("workqueue_adds_total", (("name", "q"),))] == 3
    assert parsed(second)[("workqueue_adds_total", (("name", "q"),))] == 1
    assert parsed(second)[("workqueue_work_duration_seconds_count", (("name", "q"),))] == 1


async def test_storage_writes_counted_by_resource_and_event_type():
    from jobplane.apiserver.metrics_routes import storage_families
    from jobplane.storage.memory import MemoryStore

    store = MemoryStore()
    await store.start()
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}}
    created = await store.create("pods/ns/p", pod)
    await store.update("pods/ns/p", {**created, "status": {"phase": "Running"}}, None)
    await store.create("jobs.batch/ns/j", {"metadata": {"name": "j", "namespace": "ns"}})
    await store.delete("pods/ns/p", None)
    got = samples(storage_families(store))
    assert got[("jobplane_storage_writes_total", (("resource", "pods"), ("type", "ADDED")))] == 1
    assert got[("jobplane_storage_writes_total", (("resource", "pods"), ("type", "MODIFIED")))] == 1
    assert got[("jobplane_storage_writes_total", (("resource", "pods"), ("type", "DELETED")))] == 1
    assert got[("jobplane_storage_writes_total", (("resource", "jobs.batch"), ("type", "ADDED")))] == 1
    assert got[("jobplane_storage_write_bytes_total", (("resource", "pods"), ("type", "ADDED")))] == \
        len(orjson.dumps(created))
