"""History that outlives pods: a Job deleted by its TTL is still listed, with its logs."""

from __future__ import annotations

import subprocess
import sys
import time

JOBPLANE = [sys.executable, "-m", "jobplane"]

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: short}
spec:
  ttlSecondsAfterFinished: 0
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["sh", "-c", "echo index $JOB_COMPLETION_INDEX says hi"]}]
"""


def jp(srv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*JOBPLANE, *args], env=srv.env, capture_output=True, text=True, timeout=60)


def test_history_and_archived_logs_after_ttl_deletion(server_factory):
    srv = server_factory()
    srv.kubectl("apply", "-f", "-", input=JOB, check=True)
    deadline = time.monotonic() + 60
    while srv.kubectl("get", "job", "short").returncode == 0:  # the TTL controller deletes it
        assert time.monotonic() < deadline, "the TTL controller did not delete the job"
        time.sleep(0.2)
    while srv.kubectl("get", "pods", "-o", "name").stdout.strip():  # ... and its pods go with it
        assert time.monotonic() < deadline, "the job's pods were not deleted"
        time.sleep(0.2)

    listed = jp(srv, "history", "--since", "1d")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "STATE", "REASON", "COMPLETIONS"]
    assert row.split()[:7] == ["short", "Complete", "CompletionsReached", "2", "2", "0", "2"]
    assert row.split()[-1] == "0"  # exit code

    logs = jp(srv, "logs", "--archived", "job/short")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == ["[0] index 0 says hi", "[1] index 1 says hi"]
    one = jp(srv, "logs", "--archived", "job/short", "--index", "1")
    assert one.stdout == "index 1 says hi\n"

    other = jp(srv, "history", "-n", "kube-system")
    assert other.returncode == 0 and other.stdout == ""
    missing = jp(srv, "logs", "--archived", "job/nope")
    assert missing.returncode == 1 and 'no history of job "nope"' in missing.stderr
