"""/metrics: authenticated, parseable by prometheus_client, and counting a Job as it runs."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: counted}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["sh", "-c", "exit 0"]}]
"""


def scrape(srv, token: str | None) -> dict[tuple[str, tuple], float]:
    ctx = ssl.create_default_context(cafile=str(srv.ca_file()))
    req = urllib.request.Request(srv.url + "/metrics")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, metric: str, **labels) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_a_running_job(server_factory):
    srv = server_factory()
    try:
        scrape(srv, None)
        raise AssertionError("unauthenticated /metrics must be refused")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    before = scrape(srv, srv.token())
    assert value(before, "job_controller_jobs_finished_total", completion_mode="Indexed", result="succeeded",
                 reason="CompletionsReached") == 0
    srv.kubectl("apply", "-f", "-", input=JOB, check=True)
    srv.kubectl("wait", "--for=condition=complete", "job/counted", "--timeout=60s", check=True)
    deadline = time.monotonic() + 20
    while True:  # the state gauges follow the informer: wait until it has the final status
        after = scrape(srv, srv.token())
        if value(after, "kube_job_status_succeeded", namespace="default", job_name="counted") == 3 \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert value(after, "job_controller_jobs_finished_total", completion_mode="Indexed", result="succeeded",
                 reason="CompletionsReached") == 1
    assert value(after, "job_controller_job_pods_finished_total", completion_mode="Indexed",
                 result="succeeded") == 3
    assert value(after, "job_controller_job_finished_indexes_total", status="succeeded",
                 backoffLimit="global") == 3
    assert value(after, "job_controller_job_pods_creation_total", reason="new", status="succeeded") == 3
    assert value(after, "job_controller_job_syncs_total", completion_mode="Indexed", result="success",
                 action="pods_created") >= 1
    assert value(after, "job_controller_job_sync_duration_seconds_count", completion_mode="Indexed",
                 result="success", action="pods_created") >= 1
    assert value(after, "job_controller_terminated_pods_tracking_finalizer_total", event="add") >= 3
    assert value(after, "kube_job_status_succeeded", namespace="default", job_name="counted") == 3
    assert value(after, "kube_job_complete", namespace="default", job_name="counted", condition="true") == 1
    created = ("apiserver_request_total", dict(verb="POST", dry_run="", group="batch", version="v1",
                                                resource="jobs", subresource="", scope="namespace",
                                                component="apiserver", code="201"))
    assert value(after, created[0], **created[1]) == 1
    assert value(after, "apiserver_request_duration_seconds_count", verb="POST", dry_run="", group="batch",
                 version="v1", resource="jobs", subresource="", scope="namespace", component="apiserver") == 1
    assert value(after, "apiserver_storage_objects", resource="jobs.batch") == 1
    assert value(after, "apiserver_storage_objects", resource="pods") == 3
    assert value(after, "workqueue_adds_total", name="job") > value(before, "workqueue_adds_total", name="job")
    assert ("workqueue_depth", (("name", "job"),)) in after
