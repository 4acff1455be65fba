"""The four job patterns under ``examples/`` run to completion with the expected outputs."""

from __future__ import annotations

import re
import shutil
import subprocess

from jobs_helpers import EXAMPLES, load_example, phase, set_env, wait_for


def _fill_queue(queue, items: list[str]) -> None:
    subprocess.run(["bash", str(EXAMPLES / "queue-per-item" / "fill-queue.sh"), str(queue), *items],
                   check=True)
    assert len(list((queue / "todo").iterdir())) == len(items)


def _queue_job(rel: str, queue) -> dict:
    """The example with its worker scripts copied beside the queue: a pod has its own /tmp, so a
    checkout under the host's /tmp would be invisible to it."""
    examples = queue.parent / "examples"
    shutil.copytree(EXAMPLES / rel.split("/")[0], examples / rel.split("/")[0], dirs_exist_ok=True)
    return set_env(load_example(rel), {"EXAMPLES_DIR": str(examples), "QUEUE_DIR": str(queue)})


def test_job_template_expansion(cluster, tmp_path):
    cl = cluster()
    items = ["apple", "banana", "cherry"]
    jobs_dir = tmp_path / "jobs"
    subprocess.run(["bash", str(EXAMPLES / "job-template-expansion" / "expand.sh"), str(jobs_dir), *items],
                   check=True)
    assert sorted(p.name for p in jobs_dir.iterdir()) == [f"job-{i}.yaml" for i in items]

    out = cl.kubectl("create", "-f", str(jobs_dir), check=True).stdout
    assert sorted(out.splitlines()) == [f"job.batch/process-item-{i} created" for i in items]
    listed = cl.kubectl("get", "jobs", "-l", "jobgroup=jobexample", "-o", "name", check=True).stdout
    assert sorted(listed.split()) == [f"job.batch/process-item-{i}" for i in items]
    for item in items:
        cl.wait_complete(f"process-item-{item}", timeout=30)
    pods = cl.pods("jobgroup=jobexample")
    assert len(pods) == len(items) and all(phase(p) == "Succeeded" for p in pods)
    logs = sorted(cl.log(p["metadata"]["name"]).strip() for p in pods)
    assert logs == [f"Processing item {i}" for i in items]


def test_queue_with_pod_per_item(cluster, tmp_path):
    cl = cluster()
    queue = tmp_path / "queue"
    items = [f"item-{c}" for c in "abcdefgh"]
    _fill_queue(queue, items)
    job = _queue_job("queue-per-item/job.yaml", queue)
    assert job["spec"]["completions"] == len(items)
    cl.apply(job)
    done = cl.wait_complete("job-wq-1", timeout=60)
    assert done["status"]["succeeded"] == len(items)
    assert not list((queue / "todo").iterdir())
    assert len(list((queue / "done").iterdir())) == len(items)

    pods = [p for p in cl.job_pods("job-wq-1") if phase(p) == "Succeeded"]
    assert len(pods) == len(items)
    processed = []
    for pod in pods:
        name = pod["metadata"]["name"]
        match = re.fullmatch(rf"{re.escape(name)} processed (item-[a-h])", cl.log(name).strip())
        assert match, cl.log(name)
        processed.append(match.group(1))
    assert sorted(processed) == items, "each item is processed exactly once"


def test_queue_with_variable_pod_count(cluster, tmp_path):
    cl = cluster()
    queue = tmp_path / "queue"
    items = [f"w{i:02d}" for i in range(12)]
    _fill_queue(queue, items)
    job = _queue_job("queue-variable-pods/job.yaml", queue)
    assert "completions" not in job["spec"]
    cl.apply(job)
    done = cl.wait_complete("job-wq-2", timeout=60)
    parallelism = job["spec"]["parallelism"]
    assert done["status"]["succeeded"] == parallelism and not done["status"].get("failed")
    assert not list((queue / "todo").iterdir())

    processed, taken = [], 0
    for pod in cl.job_pods("job-wq-2"):
        name = pod["metadata"]["name"]
        lines = cl.log(name).strip().splitlines()
        tail = re.fullmatch(rf"{re.escape(name)}: queue empty after (\d+) items", lines[-1])
        assert tail, lines
        taken += int(tail.group(1))
        for line in lines[:-1]:
            match = re.fullmatch(rf"{re.escape(name)} processed (w\d\d)", line)
            assert match, line
            processed.append(match.group(1))
    assert sorted(processed) == items and taken == len(items)


def test_indexed_job_with_static_assignment(cluster):
    cl = cluster()
    job = load_example("indexed-static/job.yaml")
    cl.apply(job)
    done = cl.wait_complete("indexed-job", timeout=30)
    assert done["status"]["completedIndexes"] == "0-4"
    items = ["foo", "bar", "baz", "qux", "xyz"]
    pods = wait_for(lambda: [p for p in cl.job_pods("indexed-job") if phase(p) == "Succeeded"], 5)
    assert len(pods) == 5
    for pod in pods:
        index = int(pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"])
        assert cl.log(pod["metadata"]["name"]).strip() == f"index {index}: {items[index]}"[::-1]
