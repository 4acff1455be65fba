"""kubectl 1.32 against a real server: the commands of kubectl-wire.md §2."""

from __future__ import annotations

import importlib.util
import json
import re
import time

import pytest
import yaml

PI_JOB = {
    "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
    "spec": {"backoffLimit": 4, "template": {"spec": {
        "containers": [{"name": "pi", "image": "perl:5.34.0",
                        "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}],
        "restartPolicy": "Never"}}},
}
needs_gc = pytest.mark.skipif(importlib.util.find_spec("jobplane.controllers.garbage_collector") is None,
                              reason="garbage collector controller not available")


def write_manifest(tmp_path, obj, name="job.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(obj))
    return str(path)


def variant(**spec_changes):
    obj = json.loads(json.dumps(PI_JOB))
    obj["spec"].update(spec_changes)
    return obj


def test_apply_unchanged_configured_immutable(jp, tmp_path):
    path = write_manifest(tmp_path, PI_JOB)
    assert jp.kubectl("apply", "-f", path, check=True).stdout.strip() == "job.batch/pi created"
    assert jp.kubectl("apply", "-f", path, check=True).stdout.strip() == "job.batch/pi unchanged"
    path = write_manifest(tmp_path, variant(backoffLimit=5))
    assert jp.kubectl("apply", "-f", path, check=True).stdout.strip() == "job.batch/pi configured"
    live = json.loads(jp.kubectl("get", "job", "pi", "-o", "json", check=True).stdout)
    assert live["spec"]["backoffLimit"] == 5
    changed = variant(backoffLimit=5)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.36.0"
    result = jp.kubectl("apply", "-f", write_manifest(tmp_path, changed))
    assert result.returncode == 1
    assert 'The Job "pi" is invalid' in result.stderr and "field is immutable" in result.stderr


def test_get_outputs(jp, tmp_path):
    jp.kubectl("apply", "-f", write_manifest(tmp_path, PI_JOB), check=True)
    out = jp.kubectl("get", "jobs", check=True).stdout
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert out.splitlines()[1].split()[0] == "pi"
    wide = jp.kubectl("get", "jobs", "-o", "wide", check=True).stdout
    assert "CONTAINERS" in wide.splitlines()[0] and "perl:5.34.0" in wide
    assert yaml.safe_load(jp.kubectl("get", "job", "pi", "-o", "yaml", check=True).stdout)["kind"] == "Job"
    listed = json.loads(jp.kubectl("get", "jobs", "-o", "json", check=True).stdout)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["pi"]
    assert jp.kubectl("get", "jobs", "-o", "name", check=True).stdout.strip() == "job.batch/pi"
    names = jp.kubectl("get", "jobs", "--selector=job-name=pi",
                       "--output=jsonpath={.items[*].metadata.name}", check=True).stdout
    assert names == "pi"
    assert jp.kubectl("get", "jobs", "--selector=job-name=nope", check=True).stderr.startswith(
        "No resources found in default namespace.")
    described = jp.kubectl("describe", "job", "pi", check=True).stdout
    assert re.search(r"^Name:\s+pi$", described, re.M) and "perl:5.34.0" in described
    assert re.search(r"^Backoff Limit:\s+4$", described, re.M)


def test_create_job_protobuf_and_namespace(jp):
    assert jp.kubectl("create", "job", "hello", "--image=busybox", "--", "echo", "hi",
                      check=True).stdout.strip() == "job.batch/hello created"
    job = json.loads(jp.kubectl("get", "job", "hello", "-o", "json", check=True).stdout)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    assert jp.kubectl("create", "namespace", "x", check=True).stdout.strip() == "namespace/x created"
    assert jp.kubectl("get", "ns", "x", "-o", "name", check=True).stdout.strip() == "namespace/x"


def test_errors(jp, tmp_path):
    bogus = variant()
    bogus["spec"]["bogusField"] = 1
    result = jp.kubectl("create", "-f", write_manifest(tmp_path, bogus))
    assert result.returncode == 1
    assert ('Job in version "v1" cannot be handled as a Job: strict decoding error: '
            'unknown field "spec.bogusField"') in result.stderr
    result = jp.kubectl("create", "-f", write_manifest(tmp_path, bogus), "--validate=warn")
    assert result.returncode == 0 and 'Warning: unknown field "spec.bogusField"' in result.stderr
    result = jp.kubectl("create", "-f", "/work/shared/kubectl-wire/bad.yaml")
    assert result.returncode == 1 and 'The Job "bad" is invalid:' in result.stderr
    result = jp.kubectl("delete", "job", "nope")
    assert result.returncode == 1
    assert 'Error from server (NotFound): jobs.batch "nope" not found' in result.stderr


def test_explain(jp):
    out = jp.kubectl("explain", "job.spec", check=True).stdout
    assert "KIND:       Job" in out and "FIELD: spec <JobSpec>" in out


def test_watch_receives_change(jp, tmp_path):
    jp.kubectl("apply", "-f", write_manifest(tmp_path, PI_JOB), check=True)
    watcher = jp.kubectl_popen("get", "jobs", "-w", "--output-watch-events")
    try:
        time.sleep(2.0)
        jp.kubectl("label", "job", "pi", "team=a", check=True)
        time.sleep(2.0)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    rows = [line.split() for line in out.splitlines()[1:]]
    assert ["ADDED", "pi"] == rows[0][:2]
    assert any(r[:2] == ["MODIFIED", "pi"] for r in rows[1:]), out


@pytest.mark.parametrize("cascade", ["background", "false"])
def test_delete_background_and_deprecated_false(jp, tmp_path, cascade):
    jp.kubectl("apply", "-f", write_manifest(tmp_path, PI_JOB), check=True)
    result = jp.kubectl("delete", "job", "pi", f"--cascade={cascade}", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'job.batch "pi" deleted'
    if cascade == "false":
        assert ("warning: --cascade=false is deprecated (boolean value) and can be replaced with "
                "--cascade=orphan.") in result.stderr
    assert jp.kubectl("get", "job", "pi").returncode == 1


@needs_gc
@pytest.mark.parametrize("cascade", ["foreground", "orphan"])
def test_delete_foreground_orphan(jp, tmp_path, cascade):
    jp.kubectl("apply", "-f", write_manifest(tmp_path, PI_JOB), check=True)
    result = jp.kubectl("delete", "job", "pi", f"--cascade={cascade}", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'job.batch "pi" deleted'
    assert jp.kubectl("get", "job", "pi").returncode == 1
