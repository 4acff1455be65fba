"""Pods that name ConfigMaps and Secrets, with the node agent running: a missing object
keeps the pod waiting as kubelet does (env: CreateContainerConfigError; volume:
ContainerCreating with FailedMount events), the Job's backoffLimit untouched, and the pod
starts once the object exists and sees its values."""

from __future__ import annotations

import json
import time

import yaml


def wait_for(predicate, timeout=60.0, interval=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached")


def job(name: str, script: str, *, env=None, env_from=None, volumes=None, mounts=None) -> dict:
    container = {"name": "c", "image": "busybox", "command": ["sh", "-c", script]}
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    if mounts:
        container["volumeMounts"] = mounts
    spec = {"containers": [container], "restartPolicy": "Never"}
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"spec": spec}}}


def pod_of(srv, job_name):
    out = srv.kubectl("get", "pods", "-l", f"job-name={job_name}", "-o", "json", check=True).stdout
    items = json.loads(out)["items"]
    return items[0] if items else None


def test_env_reference_waits_then_starts(server_factory, tmp_path):
    srv = server_factory()
    manifest = job("envjob", 'echo "$GREETING $USER_NAME $MODE"',
                   env=[{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "greeting"}}},
                        {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}}],
                   env_from=[{"configMapRef": {"name": "later"}}])
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest))
    srv.kubectl("apply", "-f", str(path), check=True)

    def waiting():
        pod = pod_of(srv, "envjob")
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or []
        state = statuses[0].get("state", {}).get("waiting", {}) if statuses else {}
        return (pod, state) if state.get("reason") == "CreateContainerConfigError" else None

    pod, state = wait_for(waiting)
    assert state["message"] == 'configmap "later" not found'
    assert pod["status"]["phase"] == "Pending"
    row = srv.kubectl("get", "pods", "-l", "job-name=envjob", check=True).stdout.splitlines()[1].split()
    assert row[2] == "CreateContainerConfigError"
    srv.kubectl("create", "configmap", "later", "--from-literal=greeting=hello", "--from-literal=MODE=fast",
                check=True)
    wait_for(lambda: waiting() and waiting()[1]["message"] == 'secret "creds" not found')
    srv.kubectl("create", "secret", "generic", "creds", "--from-literal=user=ada", check=True)
    srv.kubectl("wait", "--for=condition=Complete", "job/envjob", "--timeout=60s", check=True, timeout=70)
    assert srv.kubectl("logs", "job/envjob", check=True).stdout == "hello ada fast\n"
    status = json.loads(srv.kubectl("get", "job", "envjob", "-o", "json", check=True).stdout)["status"]
    assert status.get("failed", 0) == 0 and status["succeeded"] == 1
    events = srv.kubectl("get", "events", "--field-selector=reason=Failed", check=True).stdout
    assert 'Error: configmap "later" not found' in events


def test_volume_source_waits_with_failed_mount_then_files_appear(server_factory, tmp_path):
    srv = server_factory()
    manifest = job("voljob", 'cat "$JOBPLANE_VOLUME_CFG/app.conf" "$JOBPLANE_VOLUME_KEYS/token"',
                   volumes=[{"name": "cfg", "configMap": {"name": "appcfg"}},
                            {"name": "keys", "secret": {"secretName": "tok", "items": [{"key": "t", "path": "token"}]}}],
                   mounts=[{"name": "cfg", "mountPath": "/etc/app"}, {"name": "keys", "mountPath": "/etc/keys"}])
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest))
    srv.kubectl("apply", "-f", str(path), check=True)

    def failed_mount():
        out = srv.kubectl("get", "events", "--field-selector=reason=FailedMount", "-o", "json", check=True).stdout
        return [e["message"] for e in json.loads(out)["items"]]

    messages = wait_for(failed_mount)
    assert 'MountVolume.SetUp failed for volume "cfg" : configmap "appcfg" not found' in messages
    pod = pod_of(srv, "voljob")
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    (tmp_path / "app.conf").write_text("level=3\n")
    srv.kubectl("create", "configmap", "appcfg", f"--from-file={tmp_path / 'app.conf'}", check=True)
    srv.kubectl("create", "secret", "generic", "tok", "--from-literal=t=s3cret", check=True)
    srv.kubectl("wait", "--for=condition=Complete", "job/voljob", "--timeout=60s", check=True, timeout=70)
    assert srv.kubectl("logs", "job/voljob", check=True).stdout == "level=3\ns3cret\n"
