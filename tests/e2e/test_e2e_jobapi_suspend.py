"""spec.suspend with real processes (upstream test/e2e/apps/job.go #5, #6, #27) and the
scheduling directives that may change while a job is suspended and has never started."""

from __future__ import annotations

import uuid

from jobs_helpers import (
    NS,
    job_manifest,
    parse_time,
    process_running,
    wait_for,
)


def _suspended(job: dict) -> dict | None:
    for cond in job.get("status", {}).get("conditions") or ():
        if cond["type"] == "Suspended":
            return cond
    return None


def _patch(cl, name: str, patch: str) -> None:
    cl.kubectl("patch", "job", name, "--type=merge", "-p", patch, check=True)


def test_created_suspended_runs_nothing_until_resumed(cluster):
    # #5
    cl = cluster()
    cl.apply(job_manifest("sus-create", ["sh", "-c", "exit 0"], completions=2, parallelism=2, suspend=True))
    cond = wait_for(lambda: _suspended(cl.job("sus-create")), 10, what="the Suspended condition")
    assert (cond["status"], cond["reason"], cond["message"]) == ("True", "JobSuspended", "Job suspended")
    status = cl.job("sus-create")["status"]
    assert "startTime" not in status and status.get("active", 0) == 0 and status["ready"] == 0, status
    assert not cl.job_pods("sus-create")
    assert cl.kubectl("get", "job", "sus-create", "--no-headers", check=True).stdout.split()[1] == "Suspended"

    _patch(cl, "sus-create", '{"spec":{"suspend":false}}')
    job = cl.wait_complete("sus-create", timeout=30)
    cond = _suspended(job)
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "JobResumed", "Job resumed")
    assert parse_time(job["status"]["startTime"]) >= parse_time(cond["lastTransitionTime"])
    assert job["status"]["succeeded"] == 2 and not job["status"].get("failed")
    reasons = [e.reason for e in cl.core.list_namespaced_event(
        NS, field_selector="involvedObject.name=sus-create").items]
    assert "Suspended" in reasons and "Resumed" in reasons, reasons


def test_suspending_a_running_job_deletes_its_pods(cluster):
    # #6 and #27: running pods are deleted (not counted failed), ready drops to 0; resuming
    # restarts them with a new startTime.
    cl = cluster()
    marker = f"sleep 60.{uuid.uuid4().int % 10**6:06d}"
    cl.apply(job_manifest("sus-run", ["sh", "-c", marker], completions=2, parallelism=2))
    wait_for(lambda: cl.job("sus-run")["status"].get("ready") == 2, 15, what="2 ready pods")
    first_start = cl.job("sus-run")["status"]["startTime"]

    _patch(cl, "sus-run", '{"spec":{"suspend":true}}')
    cl.wait_no_pods("job-name=sus-run", timeout=15)
    wait_for(lambda: not process_running(marker), 15, what="the pod processes to be killed")
    job = cl.job("sus-run")
    assert _suspended(job)["status"] == "True"
    status = job["status"]
    assert status.get("active", 0) == 0 and status["ready"] == 0 and not status.get("failed"), status

    _patch(cl, "sus-run", '{"spec":{"suspend":false}}')
    wait_for(lambda: cl.job("sus-run")["status"].get("ready") == 2, 15, what="2 ready pods after resume")
    job = cl.job("sus-run")
    assert _suspended(job)["status"] == "False"
    assert parse_time(job["status"]["startTime"]) >= parse_time(first_start)
    assert not job["status"].get("failed")


def test_scheduling_directives_mutable_only_while_suspended_and_never_started(cluster):
    cl = cluster()
    manifest = job_manifest("sus-sched", ["sh", "-c", "exit 0"], suspend=True)
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {"example.com/pool": "none"}
    cl.apply(manifest)
    wait_for(lambda: _suspended(cl.job("sus-sched")), 10, what="the Suspended condition")
    # A queueing controller picks the node and adds a label before resuming.
    _patch(cl, "sus-sched", '{"spec":{"template":{"metadata":{"labels":{"queue":"a"}},'
                            '"spec":{"nodeSelector":{"example.com/pool":null,"kubernetes.io/os":"linux"}}}}}')
    bad = cl.kubectl("patch", "job", "sus-sched", "--type=json", "-p",
                     '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"other"}]')
    assert bad.returncode != 0 and "spec.template: Invalid value" in bad.stderr and "field is immutable" in bad.stderr
    _patch(cl, "sus-sched", '{"spec":{"suspend":false}}')
    job = cl.wait_complete("sus-sched", timeout=30)
    pods = cl.job_pods("sus-sched")
    assert len(pods) == 1 and pods[0]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pods[0]["metadata"]["labels"]["queue"] == "a"
    # Once the job has started, the directives are immutable again.
    bad = cl.kubectl("patch", "job", "sus-sched", "--type=merge", "-p",
                     '{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/os":"other"}}}}}')
    assert bad.returncode != 0 and "field is immutable" in bad.stderr, bad.stderr
    assert job["status"]["succeeded"] == 1
