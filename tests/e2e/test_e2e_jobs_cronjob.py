"""CronJobs end to end: created with kubectl, listed, scheduled on the minute, and
instantiated by hand with ``kubectl create job --from=cronjob/...``."""

from __future__ import annotations

import json
import re

import pytest
from jobs_helpers import EXAMPLES, parse_time, phase, wait_for


def _owned_by(job: dict, cronjob: dict) -> bool:
    return any(r["kind"] == "CronJob" and r["name"] == cronjob["metadata"]["name"]
               and r["uid"] == cronjob["metadata"]["uid"] and r.get("controller")
               for r in job["metadata"].get("ownerReferences") or ())


def _cronjob(cl, name: str) -> dict:
    resp = cl.batch.read_namespaced_cron_job(name, "default", _preload_content=False)
    return json.loads(resp.data)


def test_get_cronjobs_and_create_job_from_cronjob(cluster):
    cl = cluster()
    out = cl.kubectl("create", "cronjob", "hello", "--image=busybox", "--schedule=0 0 1 1 *", "--",
                     "echo", "hi", check=True).stdout
    assert out.strip() == "cronjob.batch/hello created"

    table = cl.kubectl("get", "cronjobs", check=True).stdout.splitlines()
    assert re.split(r"\s{2,}", table[0].strip()) == \
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    row = re.split(r"\s{2,}", table[1].strip())
    assert row[:6] == ["hello", "0 0 1 1 *", "<none>", "False", "0", "<none>"], table
    assert re.fullmatch(r"\d+s", row[6]), row

    out = cl.kubectl("create", "job", "manual", "--from=cronjob/hello", check=True).stdout
    assert out.strip() == "job.batch/manual created"
    job = cl.job("manual")
    cronjob = _cronjob(cl, "hello")
    assert _owned_by(job, cronjob), job["metadata"].get("ownerReferences")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    cl.wait_complete("manual", timeout=30)
    pods = cl.job_pods("manual")
    assert len(pods) == 1 and phase(pods[0]) == "Succeeded"
    assert cl.log(pods[0]["metadata"]["name"]).strip() == "hi"


def test_cronjob_example_run_now(cluster):
    cl = cluster()
    out = cl.kubectl("apply", "-f", str(EXAMPLES / "cronjob.yaml"), check=True).stdout
    assert out.strip() == "cronjob.batch/hello created"
    out = cl.kubectl("create", "job", "hello-now", "--from=cronjob/hello", check=True).stdout
    assert out.strip() == "job.batch/hello-now created"
    assert _owned_by(cl.job("hello-now"), _cronjob(cl, "hello"))
    cl.wait_complete("hello-now", timeout=30)
    pods = cl.job_pods("hello-now")
    assert len(pods) == 1
    lines = cl.log(pods[0]["metadata"]["name"]).strip().splitlines()
    assert len(lines) == 2 and lines[1] == "Hello from jobplane", lines


@pytest.mark.slow
def test_cronjob_runs_on_schedule(cluster):
    cl = cluster()
    out = cl.kubectl("create", "cronjob", "hello", "--image=busybox", "--schedule=*/1 * * * *", "--",
                     "echo", "hi", check=True).stdout
    assert out.strip() == "cronjob.batch/hello created"
    cronjob = _cronjob(cl, "hello")

    def scheduled() -> list[dict]:
        resp = cl.batch.list_namespaced_job("default", _preload_content=False)
        return [j for j in json.loads(resp.data)["items"] if _owned_by(j, cronjob)]

    jobs = wait_for(scheduled, 65, interval=0.5, what="the first scheduled job")
    assert len(jobs) == 1 and re.fullmatch(r"hello-\d+", jobs[0]["metadata"]["name"]), jobs
    name = jobs[0]["metadata"]["name"]
    # Upstream names a scheduled job after its scheduled time in minutes since the epoch and
    # records that time (RFC 3339, on the minute) in an annotation.
    scheduled_at = parse_time(jobs[0]["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"])
    assert scheduled_at.second == 0 and name == f"hello-{int(scheduled_at.timestamp()) // 60}", (name, scheduled_at)
    cl.wait_complete(name, timeout=30)
    pods = cl.job_pods(name)
    assert len(pods) == 1 and cl.log(pods[0]["metadata"]["name"]).strip() == "hi"

    def last_successful() -> dict | None:
        status = _cronjob(cl, "hello").get("status") or {}
        return status if status.get("lastSuccessfulTime") and not status.get("active") else None

    status = wait_for(last_successful, 10, what="the cronjob status to record the success")
    assert status["lastScheduleTime"]
    table = cl.kubectl("get", "cronjobs", "hello", check=True).stdout.splitlines()
    row = re.split(r"\s{2,}", table[1].strip())
    assert row[:5] == ["hello", "*/1 * * * *", "<none>", "False", "0"] and row[5] != "<none>", row
