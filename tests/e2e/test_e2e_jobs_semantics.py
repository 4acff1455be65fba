"""Job semantics with real processes: parallelism bounds, backoff limit, active deadline,
Indexed and work-queue jobs, TTL, deletion, and a server SIGKILLed mid-job."""

from __future__ import annotations

import uuid

import pytest
from jobs_helpers import (
    NS,
    TERMINAL,
    condition,
    job_manifest,
    parse_time,
    phase,
    process_running,
    wait_for,
)
from kubernetes import watch as k8s_watch


def _intervals_max_overlap(lines: list[str]) -> int:
    """Max number of simultaneously running processes from "start T"/"end T" lines."""
    events = sorted((float(t), 1 if kind == "start" else -1) for kind, t in (ln.split() for ln in lines))
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at a tie
        running += delta
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize(("completions", "parallelism"), [(6, 2), (3, 5)])
def test_active_pods_never_exceed_parallelism_or_remaining(cluster, tmp_path, completions, parallelism):
    cl = cluster()
    trace = tmp_path / "trace"
    script = f'echo start $(date +%s.%N) >> {trace}; sleep 0.5; echo end $(date +%s.%N) >> {trace}'
    name = f"par-{completions}-{parallelism}"
    rv = cl.core.list_namespaced_pod(NS).metadata.resource_version
    cl.apply(job_manifest(name, ["sh", "-c", script], completions=completions, parallelism=parallelism))

    # Sample every pod change from the watch: the single revision order means a pod's
    # success is seen before the pod created to replace it.
    phases: dict[str, str] = {}
    peak = 0
    w = k8s_watch.Watch()
    for event in w.stream(cl.core.list_namespaced_pod, NS, label_selector=f"job-name={name}",
                          resource_version=rv, timeout_seconds=60):
        pod = event["object"]
        if event["type"] == "DELETED":
            phases.pop(pod.metadata.name, None)
        else:
            phases[pod.metadata.name] = pod.status.phase if pod.status else "Pending"
        succeeded = sum(1 for p in phases.values() if p == "Succeeded")
        active = sum(1 for p in phases.values() if p not in TERMINAL)
        assert active <= min(parallelism, completions - succeeded), (event["type"], phases)
        peak = max(peak, active)
        if succeeded == completions:
            w.stop()
    assert sum(1 for p in phases.values() if p == "Succeeded") == completions, phases
    assert peak == min(parallelism, completions), f"parallelism was never reached: {peak}"

    job = cl.wait_complete(name)
    assert job["status"]["succeeded"] == completions and not job["status"].get("failed")
    lines = trace.read_text().splitlines()
    assert len(lines) == 2 * completions, lines
    assert _intervals_max_overlap(lines) <= min(parallelism, completions)


def test_backoff_limit_exceeded(cluster):
    cl = cluster("--pod-backoff-base", "0.2", "--pod-backoff-max", "1")
    cl.apply(job_manifest("fails", ["sh", "-c", "echo failing; exit 3"], backoffLimit=2))
    job = cl.wait_finished("fails", timeout=30)
    failed = condition(job, "Failed")
    assert failed and failed["reason"] == "BackoffLimitExceeded", job["status"]
    assert failed["message"] == "Job has reached the specified backoff limit"
    assert job["status"]["failed"] == 3 and not job["status"].get("succeeded")
    assert not condition(job, "Complete")
    pods = cl.job_pods("fails")
    assert len(pods) == 3 and all(phase(p) == "Failed" for p in pods), [phase(p) for p in pods]
    exit_codes = {p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods}
    assert exit_codes == {3}
    assert cl.log(pods[0]["metadata"]["name"]).strip() == "failing"


def test_active_deadline_exceeded(cluster):
    cl = cluster()
    marker = f"sleep 60.{uuid.uuid4().int % 10**6:06d}"  # identifies this test's process
    cl.apply(job_manifest("deadline", ["sh", "-c", marker], activeDeadlineSeconds=2))
    wait_for(lambda: process_running(marker), 15, what="the pod's process to start")
    job = cl.wait_finished("deadline", timeout=20)
    failed = condition(job, "Failed")
    assert failed and failed["reason"] == "DeadlineExceeded", job["status"]
    assert failed["message"] == "Job was active longer than specified deadline"
    elapsed = (parse_time(failed["lastTransitionTime"]) - parse_time(job["status"]["startTime"])).total_seconds()
    # Times have one-second resolution: allow the rounding plus 2 s of reaction time.
    assert 1 <= elapsed <= 2 + 2, elapsed
    wait_for(lambda: all(phase(p) in TERMINAL for p in cl.job_pods("deadline")), 15,
             what="the pods to be terminated")
    wait_for(lambda: not process_running(marker), 15, what="the pod's process to be killed")
    assert not cl.job("deadline")["status"].get("active")


def test_indexed_job(cluster):
    cl = cluster()
    cl.apply(job_manifest("idx", ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX"],
                          completions=5, parallelism=3, completionMode="Indexed"))
    job = cl.wait_complete("idx")
    assert job["status"]["completedIndexes"] == "0-4"
    assert job["status"]["succeeded"] == 5
    pods = cl.job_pods("idx")
    assert len(pods) == 5
    seen = set()
    for pod in pods:
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == index
        assert pod["metadata"]["name"].startswith(f"idx-{index}-")
        assert cl.log(pod["metadata"]["name"]).strip() == f"index={index}"
        seen.add(int(index))
    assert seen == set(range(5))


def test_work_queue_job(cluster):
    cl = cluster()
    # Workers end at different times; the others keep running after the first success.
    cl.apply(job_manifest("wq", ["bash", "-c", "sleep 0.$((RANDOM % 7 + 2)); echo done"], parallelism=3))
    job = cl.wait_complete("wq")
    assert "completions" not in job["spec"] or job["spec"]["completions"] is None
    assert job["status"]["succeeded"] == 3 and not job["status"].get("failed")
    pods = cl.job_pods("wq")
    assert len(pods) == 3, "no pod may start after the first success"
    assert all(phase(p) == "Succeeded" for p in pods)


def test_ttl_seconds_after_finished_zero_deletes_job_and_pods(cluster):
    cl = cluster()
    cl.apply(job_manifest("ttl", ["true"], ttlSecondsAfterFinished=0))
    wait_for(lambda: cl.job("ttl") is None, 20, what="the TTL controller to delete the job")
    cl.wait_no_pods("job-name=ttl", timeout=20)


def test_delete_job_removes_its_pods(cluster):
    cl = cluster()
    marker = f"sleep 60.{uuid.uuid4().int % 10**6:06d}"
    cl.apply(job_manifest("victim", ["sh", "-c", marker], parallelism=2, completions=2))
    wait_for(lambda: len([p for p in cl.job_pods("victim") if phase(p) == "Running"]) == 2, 20,
             what="both pods to run")
    out = cl.kubectl("delete", "job", "victim", check=True).stdout
    assert out.strip() == 'job.batch "victim" deleted'
    cl.wait_no_pods("job-name=victim", timeout=45)
    wait_for(lambda: not process_running(marker), 15, what="the pod processes to be killed")
    assert cl.job("victim") is None


def test_server_sigkill_mid_job_finishes_exactly(cluster):
    cl = cluster()
    total = 20
    cl.apply(job_manifest("crash", ["sleep", "0.3"], completions=total, parallelism=4,
                          completionMode="Indexed"))
    for progress in (4, 12):  # crash twice, each time with pods mid-run
        wait_for(lambda n=progress: ((cl.job("crash") or {}).get("status") or {}).get("succeeded", 0) >= n, 30,
                 what=f"{progress} completions before the crash")
        cl.kill_server()
        cl.restart()
    job = cl.wait_complete("crash", timeout=60)
    status = job["status"]
    assert status["succeeded"] == total and not status.get("failed"), status
    assert status["completedIndexes"] == f"0-{total - 1}"
    pods = cl.job_pods("crash")
    succeeded = [p for p in pods if phase(p) == "Succeeded"]
    assert len(succeeded) == total, [(p["metadata"]["name"], phase(p)) for p in pods]
    indexes = sorted(int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"])
                     for p in succeeded)
    assert indexes == list(range(total))


def test_on_failure_restarts_count_toward_backoff_limit(cluster):
    cl = cluster("--pod-backoff-base", "0.2", "--pod-backoff-max", "1")
    rv = cl.core.list_namespaced_pod(NS).metadata.resource_version
    cl.apply(job_manifest("restarts", ["sh", "-c", "exit 1"], restart="OnFailure", backoffLimit=1))
    names, restarts = set(), 0
    w = k8s_watch.Watch()
    for event in w.stream(cl.core.list_namespaced_pod, NS, label_selector="job-name=restarts",
                          resource_version=rv, timeout_seconds=60):
        pod = event["object"]
        names.add(pod.metadata.name)
        for status in (pod.status and pod.status.container_statuses) or ():
            restarts = max(restarts, status.restart_count)
        if event["type"] == "DELETED":
            w.stop()
    # The container restarted in place, in one pod, until the restarts reached the limit.
    assert len(names) == 1 and restarts >= 1, (names, restarts)
    job = cl.wait_finished("restarts", timeout=30)
    failed = condition(job, "Failed")
    assert failed and failed["reason"] == "BackoffLimitExceeded", job["status"]
    # The failed job deletes its active pod, which counts as its one failure.
    assert job["status"]["failed"] == 1 and not job["status"].get("active")
