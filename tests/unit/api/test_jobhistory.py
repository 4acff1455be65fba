"""Job records: rows, summaries and pruning (pure)."""

from __future__ import annotations

from jobplane.api import jobhistory
from jobplane.cli import run_view


def pod(name: str, index: int, code: int, started: str, finished: str) -> dict:
    return {"metadata": {"name": name, "uid": name + "-uid",
                         "annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Failed" if code else "Succeeded", "containerStatuses": [
                {"name": "c", "restartCount": 0, "state": {"terminated": {
                    "exitCode": code, "reason": "Error" if code else "Completed",
                    "startedAt": started, "finishedAt": finished}}}]}}


def test_record_rows_and_summary():
    job = {"metadata": {"name": "j", "namespace": "ns", "uid": "u"},
           "spec": {"completions": 2},
           "status": {"startTime": "2026-01-01T00:00:00Z", "failed": 1,
                      "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    pods = [pod("j-1", 1, 0, "2026-01-01T00:00:01Z", "2026-01-01T00:00:05Z"),
            pod("j-0", 0, 2, "2026-01-01T00:00:01Z", "2026-01-01T00:00:09Z")]
    record = jobhistory.build_record(job, pods, {"j-0-uid": ("j-0.log", 10)}, "2026-01-01T00:01:00Z")
    assert [r["index"] for r in record["pods"]] == [0, 1]
    first = record["pods"][0]
    assert (first["node"], first["exitCode"], first["reason"], first["log"]) == ("n1", 2, "Error", "j-0.log")
    assert first["peakMemoryBytes"] is None and "peakMemoryBytes" in record["missing"]
    s = jobhistory.summarize(record)
    assert (s.outcome, s.reason, s.exit_code, s.pods, s.failed) == ("Failed", "BackoffLimitExceeded", 2, 2, 1)
    assert s.elapsed == 9.0  # no completionTime: the last pod's finish


def test_prune_by_age_then_oldest_over_the_cap():
    records = [("old", 0.0, 10), ("a", 100.0, 60), ("b", 200.0, 50), ("c", 300.0, 40)]
    assert jobhistory.to_prune(records, now=350.0, retention=300.0, max_bytes=1000) == ["old"]
    assert jobhistory.to_prune(records, now=350.0, retention=300.0, max_bytes=100) == ["old", "a"]


def test_run_view_rate_eta_and_lines():
    job = {"spec": {"completions": 10}, "status": {"succeeded": 4, "failed": 1, "active": 2}}
    snap = run_view.snapshot(job)
    assert run_view.eta(snap, 8.0) == 12.0
    assert run_view.status_line("x", snap, 8.0) == \
        "job/x: 4/10 succeeded, 1 failed, 2 active, elapsed 8s, 0.50/s, ETA 12s"
    assert run_view.log_prefix(pod("p", 3, 0, "", "")) == "[3]"
    assert run_view.log_prefix({"metadata": {"name": "p-x"}}) == "[p-x]"
