"""``kubectl logs`` through the pods/log subresource, with the embedded agent running pods."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jobplane.agent.embedded") is None,
                                reason="embedded node agent not available")


def test_logs_of_a_finished_job(server_factory):
    srv = server_factory()
    srv.kubectl("create", "job", "hello", "--image=busybox", "--", "sh", "-c", "echo hi; echo there",
                check=True)
    srv.kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=60s", check=True, timeout=90)
    assert srv.kubectl("logs", "job/hello", check=True).stdout == "hi\nthere\n"
    assert srv.kubectl("logs", "job/hello", "--tail=1", check=True).stdout == "there\n"
    stamped = srv.kubectl("logs", "job/hello", "--timestamps", check=True).stdout.splitlines()
    assert stamped[0].endswith(" hi") and stamped[0][:4].isdigit() and "T" in stamped[0].split()[0]
    assert srv.kubectl("logs", "job/hello", "--limit-bytes=2", check=True).stdout == "hi"


def test_logs_follow_ends_when_container_exits(server_factory):
    srv = server_factory()
    srv.kubectl("create", "job", "slow", "--image=busybox", "--", "sh", "-c",
                "echo start; sleep 2; echo end", check=True)
    srv.kubectl("wait", "--for=condition=ready", "pod", "-l", "job-name=slow", "--timeout=60s", timeout=90)
    result = srv.kubectl("logs", "-f", "job/slow", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "start\nend\n"
