"""spec.successPolicy with real processes (upstream test/e2e/apps/job.go #10-#12):
SuccessCriteriaMet first, then Complete with reason SuccessPolicy; lingering pods terminated."""

from __future__ import annotations

import os

import pytest
from jobapi_helpers import indexed_job, jobs_resource_version, watch_conditions, with_host_dir
from jobs_helpers import condition, process_running, wait_for

MESSAGE = "Matched rules at index 0"


def _assert_success_policy_complete(cl, name: str, rv: str) -> dict:
    history = watch_conditions(cl, name, rv)
    assert [("SuccessCriteriaMet", "SuccessPolicy")] in history, f"no interim condition: {history}"
    assert history[-1] == [("SuccessCriteriaMet", "SuccessPolicy"), ("Complete", "SuccessPolicy")], history
    job = cl.job(name)
    for ctype in ("SuccessCriteriaMet", "Complete"):
        assert condition(job, ctype)["message"] == MESSAGE
    status = job["status"]
    assert status.get("active", 0) == 0 and status["ready"] == 0 and status["terminating"] == 0, status
    assert not status.get("failed"), status
    assert status["completionTime"] == condition(job, "Complete")["lastTransitionTime"]
    return job


def test_succeeded_count_all_indexes(cluster):
    # #10: p=c=2, rule succeededCount=2.
    cl = cluster()
    rv = jobs_resource_version(cl)
    cl.apply(indexed_job("sp-all", "exit 0", 2, 2, successPolicy={"rules": [{"succeededCount": 2}]}))
    job = _assert_success_policy_complete(cl, "sp-all", rv)
    assert job["status"]["succeeded"] == 2 and job["status"]["completedIndexes"] == "0,1"


@pytest.mark.parametrize("rule", [{"succeededIndexes": "0"}, {"succeededCount": 1}], ids=["indexes", "count"])
def test_rule_met_while_other_indexes_still_run(cluster, tmp_path, rule):
    # #11/#12: index 0 succeeds once index 1 has started; odd indexes would run for a minute:
    # the job completes on the rule and the lingering pods (and their processes) are terminated.
    cl = cluster()
    started = tmp_path / "odd-started"
    # The odd index says it started (then execs a long sleep with a unique argument, by which
    # the test finds it: its pid inside the pod's PID namespace means nothing on the host);
    # index 0 waits for it.
    marker = f"60.{os.getpid()}{len(str(rule))}"
    script = (f"if [ $((JOB_COMPLETION_INDEX % 2)) -eq 1 ]; then echo started > {started}.tmp; "
              f"mv {started}.tmp {started}; exec sleep {marker}; fi; "
              f"while [ ! -e {started} ]; do sleep 0.05; done; exit 0")
    rv = jobs_resource_version(cl)
    cl.apply(with_host_dir(indexed_job("sp-partial", script, 5, 2, backoffLimit=2147483647,
                                       successPolicy={"rules": [rule]}), str(tmp_path)))
    job = _assert_success_policy_complete(cl, "sp-partial", rv)
    status = job["status"]
    assert status["completedIndexes"].startswith("0"), status
    assert status["succeeded"] == len(status["completedIndexes"].split(",")), status
    # Lingering pods are deleted without being counted as failed.
    assert started.read_text() == "started\n"
    wait_for(lambda: not process_running(f"sleep {marker}"), 15, what="the lingering pod's process to end")
    wait_for(lambda: not [p for p in cl.job_pods("sp-partial") if p["status"].get("phase") != "Succeeded"],
             15, what="the lingering pods to be gone")
    assert not cl.job("sp-partial")["status"].get("failed")
