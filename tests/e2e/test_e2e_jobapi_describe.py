"""``jobplane describe job`` against ``/usr/bin/kubectl describe job`` on a live server, for
jobs using the newer Job API fields (Indexed with failed indexes, success policy, pod
failure policy, suspended, externally managed)."""

from __future__ import annotations

import re
import subprocess
import sys

from jobapi_helpers import FAIL_ODD_SUCCEED_EVEN, indexed_job, with_host_dir
from jobs_helpers import job_manifest, wait_for


def _jobplane_describe(srv, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobplane", "describe", "job", name], env=srv.env,
                          capture_output=True, text=True, timeout=60)


def _without_event_ages(text: str) -> str:
    """The output with the Age column of event rows dropped (it ticks between the two
    commands, and its width moves the columns after it); everything else stays exact."""
    head, sep, events = text.partition("\nEvents:\n")
    rows = [re.split(r"\s{2,}", row.strip()) for row in events.splitlines()]
    return head + sep + "\n".join(" | ".join(r[:2] + r[3:]) for r in rows)


def test_describe_matches_kubectl(cluster, tmp_path):
    cl = cluster("--pod-backoff-base", "0.2")
    cl.apply(indexed_job("d-indexes", FAIL_ODD_SUCCEED_EVEN, 4, 2, backoffLimitPerIndex=1, maxFailedIndexes=3))
    cl.apply(with_host_dir(indexed_job("d-success", "exit 0", 3, 3, successPolicy={"rules": [
        {"succeededIndexes": "0-1", "succeededCount": 1}]}), str(tmp_path)))
    cl.apply(job_manifest("d-pfp", ["sh", "-c", "exit 42"], podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}}]}))
    cl.apply(job_manifest("d-suspended", ["true"], suspend=True, activeDeadlineSeconds=60, ttlSecondsAfterFinished=30))
    cl.apply(job_manifest("d-managed", ["true"], managedBy="example.com/custom"))
    for name in ("d-indexes", "d-success", "d-pfp"):
        cl.wait_finished(name, timeout=30)
    wait_for(lambda: cl.job("d-suspended")["status"].get("conditions"), 10, what="the Suspended condition")

    for name in ("d-indexes", "d-success", "d-pfp", "d-suspended", "d-managed"):
        ours = _jobplane_describe(cl.srv, name)
        theirs = cl.kubectl("describe", "job", name, check=True)
        assert ours.returncode == 0, ours.stderr
        assert _without_event_ages(ours.stdout) == _without_event_ages(theirs.stdout), \
            f"{name}:\n--- jobplane\n{ours.stdout}\n--- kubectl\n{theirs.stdout}"

    text = _jobplane_describe(cl.srv, "d-indexes").stdout
    assert "Completed Indexes:  0,2\n" in text
    assert "Pods Statuses:      0 Active (0 Ready) / 2 Succeeded / 4 Failed\n" in text
    assert "Warning  FailedIndexes" in text and "Job has failed indexes" in text
    suspended = _jobplane_describe(cl.srv, "d-suspended").stdout
    assert "Suspend:                     true\n" in suspended
    assert "Active Deadline Seconds:     60s\n" in suspended
