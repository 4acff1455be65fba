"""spec.podReplacementPolicy (upstream test/e2e/apps/job.go #7) and elastic Indexed jobs,
with real processes."""

from __future__ import annotations

from jobapi_helpers import indexed_job
from jobs_helpers import TERMINAL, job_manifest, phase, wait_for

INDEX = "batch.kubernetes.io/job-completion-index"
TRAP = 'trap "sleep 3; exit 143" TERM; sleep 60 & wait'


def _counts(job: dict) -> tuple[int, int, int]:
    s = job["status"]
    return s.get("active", 0), s.get("terminating", 0), s.get("failed", 0)


def test_failed_policy_replaces_only_after_the_pod_failed(cluster):
    cl = cluster("--pod-backoff-base", "0.2")
    cl.apply(job_manifest("prp-failed", ["sh", "-c", TRAP], podReplacementPolicy="Failed"))
    wait_for(lambda: cl.job("prp-failed")["status"].get("ready") == 1, 15, what="a ready pod")
    first = cl.job_pods("prp-failed")[0]["metadata"]["name"]
    cl.kubectl("delete", "pod", first, "--wait=false", check=True)

    # While the container handles SIGTERM: no replacement, not counted failed.
    wait_for(lambda: _counts(cl.job("prp-failed")) == (0, 1, 0), 5, what="active 0, terminating 1, failed 0")
    assert [p["metadata"]["name"] for p in cl.job_pods("prp-failed")] == [first]
    # Then the pod fails (exit 143), is counted, and a replacement starts.
    wait_for(lambda: _counts(cl.job("prp-failed")) == (1, 0, 1), 15, what="active 1, terminating 0, failed 1")
    names = {p["metadata"]["name"] for p in cl.job_pods("prp-failed")}
    assert len(names - {first}) == 1, names


def test_terminating_or_failed_policy_replaces_at_once(cluster):
    cl = cluster("--pod-backoff-base", "0.2")
    cl.apply(job_manifest("prp-default", ["sh", "-c", TRAP]))
    assert cl.job("prp-default")["spec"]["podReplacementPolicy"] == "TerminatingOrFailed"
    wait_for(lambda: cl.job("prp-default")["status"].get("ready") == 1, 15, what="a ready pod")
    first = cl.job_pods("prp-default")[0]["metadata"]["name"]
    cl.kubectl("delete", "pod", first, "--wait=false", check=True)

    def replaced_while_terminating() -> bool:
        pods = {p["metadata"]["name"]: p for p in cl.job_pods("prp-default")}
        old = pods.pop(first, None)
        return bool(old and phase(old) not in TERMINAL and old["metadata"].get("deletionTimestamp")
                    and len(pods) == 1)

    # The terminating pod is counted failed right away and replaced before it has exited.
    wait_for(replaced_while_terminating, 5, what="a replacement while the old pod terminates")
    wait_for(lambda: _counts(cl.job("prp-default")) == (1, 1, 1), 5, what="active 1, terminating 1, failed 1")
    assert replaced_while_terminating()


def test_elastic_indexed_scale_down_removes_highest_indexes(cluster, tmp_path):
    cl = cluster()
    release = tmp_path / "release"
    # Index 3 succeeds at once; the others wait for the release file.
    script = f"if [ $JOB_COMPLETION_INDEX = 3 ]; then exit 0; fi; while [ ! -e {release} ]; do sleep 0.05; done"
    cl.apply(indexed_job("elastic", script, 4, 4))
    wait_for(lambda: cl.job("elastic")["status"].get("completedIndexes") == "3"
             and cl.job("elastic")["status"].get("ready") == 3, 15, what="3 running pods and index 3 done")
    assert cl.job("elastic")["status"]["succeeded"] == 1

    bad = cl.kubectl("patch", "job", "elastic", "--type=merge", "-p", '{"spec":{"completions":2}}')
    assert bad.returncode != 0
    assert ('The Job "elastic" is invalid: spec.completions: Invalid value: 2: '
            "can only be modified in tandem with spec.parallelism") in bad.stderr, bad.stderr

    cl.kubectl("patch", "job", "elastic", "--type=merge", "-p", '{"spec":{"completions":2,"parallelism":2}}',
               check=True)

    def running_indexes() -> list[str]:
        return sorted(p["metadata"]["annotations"][INDEX] for p in cl.job_pods("elastic") if phase(p) not in TERMINAL)

    wait_for(lambda: running_indexes() == ["0", "1"], 15, what="pods of index 2 to be removed")
    # Index 3 is outside the new range: it no longer counts (succeeded may decrease).
    wait_for(lambda: cl.job("elastic")["status"].get("succeeded", 0) == 0, 10, what="succeeded to drop to 0")
    assert not cl.job("elastic")["status"].get("completedIndexes")
    release.touch()
    job = cl.wait_complete("elastic", timeout=30)
    status = job["status"]
    assert status["completedIndexes"] == "0,1" and status["succeeded"] == 2, status
    assert not status.get("failed"), status  # removed pods are not failures
