"""``jobplane run``: exit codes, log prefixes, --rm, Ctrl-C, plain pipes and a terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

JOBPLANE = [sys.executable, "-m", "jobplane"]


def run(srv, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([*JOBPLANE, "run", *args], env=srv.env, capture_output=True, text=True, timeout=timeout)


def test_run_complete_fail_rm_and_usage(server_factory):
    srv = server_factory()
    ok = run(srv, "hello", "--image", "busybox", "--completions", "3", "--parallelism", "3", "--indexed",
             "--env", "WHO=world", "--rm", "--", "sh", "-c", "echo hi $WHO $JOB_COMPLETION_INDEX")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    for i in range(3):
        assert f"[{i}] hi world {i}" in ok.stdout
    assert "job/hello: 3/3 succeeded, 0 failed, 0 active" in ok.stdout
    assert "Complete (CompletionsReached)" in ok.stdout
    assert 'job.batch "hello" deleted' in ok.stdout
    assert "\x1b[" not in ok.stdout  # not a terminal: plain lines
    gone = srv.kubectl("get", "job", "hello")
    assert gone.returncode != 0 and "NotFound" in gone.stderr

    bad = run(srv, "bad", "--image", "busybox", "--backoff-limit", "0", "--logs", "none", "--",
              "sh", "-c", "echo starting; echo it broke >&1; exit 3")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "job/bad failed: BackoffLimitExceeded: Job has reached the specified backoff limit" in bad.stdout
    assert "--- last 10 lines of [bad-" in bad.stdout and "] it broke" in bad.stdout
    assert srv.kubectl("get", "job", "bad").returncode == 0  # no --rm: kept

    again = run(srv, "bad", "--image", "busybox", "--", "true")
    assert again.returncode == 2 and "AlreadyExists" in again.stderr
    usage = run(srv, "x")
    assert usage.returncode == 2 and "--image is required" in usage.stderr


def test_run_in_a_terminal_and_ctrl_c(server_factory):
    srv = server_factory()
    master, slave = pty.openpty()
    proc = subprocess.Popen([*JOBPLANE, "run", "tty", "--image", "busybox", "--completions", "2", "--", "sh",
                             "-c", "echo from-tty"], env={**srv.env, "COLUMNS": "120", "TERM": "xterm"},
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    assert proc.wait(10) == 0
    os.close(master)
    text = out.decode(errors="replace")
    assert "\x1b[" in text  # rich drew a live display
    assert "2/2" in text and "job/tty" in text
    assert "from-tty" in text

    # Ctrl-C with --rm: the Job is deleted and the exit status is 130.
    proc = subprocess.Popen([*JOBPLANE, "run", "sleepy", "--image", "busybox", "--rm", "--", "sleep", "60"],
                            env=srv.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while srv.kubectl("get", "pods", "-l", "batch.kubernetes.io/job-name=sleepy", "-o", "name").stdout == "" \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted" in stdout and 'job.batch "sleepy" deleted' in stdout
