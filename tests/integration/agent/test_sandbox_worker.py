"""PodWorker with the bubblewrap sandbox, running real short processes."""

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from agent_fakes import FakeClient, make_pod

from jobplane.agent.runtime import HostProcessRuntime
from jobplane.agent.sandbox import detect
from jobplane.agent.worker import PodWorker, WorkerConfig
from jobplane.clock import Clock
from jobplane.podlogs import log_path

SUPPORT = detect()
pytestmark = pytest.mark.skipif(not SUPPORT.available, reason=f"no sandbox here: {SUPPORT.reason}")


@pytest.fixture
def env(tmp_path):
    hidden = Path(tempfile.mkdtemp(prefix="jobplane-test-", dir="/var/tmp"))
    (hidden / "token").write_text("s3cret")
    client = FakeClient()
    clock = Clock()
    runtime = HostProcessRuntime(clock, data_dir=tmp_path / "data", poll_interval=0.05, cgroup_root=None,
                                 sandbox=SUPPORT)
    config = WorkerConfig(pods_dir=tmp_path / "pods", node_name="n1", host_env={"PATH": "/usr/bin:/bin"},
                          hidden=(str(hidden),), volume_refresh=0.1)
    yield client, runtime, clock, config, hidden
    shutil.rmtree(hidden, ignore_errors=True)


def worker(env, pod):
    client, runtime, clock, config, _ = env
    client.add("pods", pod)
    return PodWorker(client, pod, runtime, clock, config)


def output(env, pod, container="main"):
    return log_path(env[3].pods_dir, pod["metadata"]["uid"], container, 0).read_text()


def lines(text, stream=None):
    """The log's messages, of one stream when given: stdout and stderr are separate pipes,
    so their lines interleave in the log in whatever order the supervisor read them."""
    parts = [line.split(" ", 3) for line in text.splitlines()]
    return [p[3] for p in parts if stream is None or p[1] == stream]


async def test_same_mount_path_different_empty_dirs(env):
    pods = [make_pod(name, volumes=[{"name": "input", "emptyDir": {}}],
                     containers=[{"name": "main", "image": "x", "command": [
                         "sh", "-c", f"echo {name} > /input/data.txt; sleep 0.3; cat /input/data.txt; ls /input"],
                         "volumeMounts": [{"name": "input", "mountPath": "/input"}]}])
            for name in ("one", "two")]
    await asyncio.gather(*(worker(env, p).run() for p in pods))
    for p in pods:
        name = p["metadata"]["name"]
        assert lines(output(env, p)) == [name, "data.txt"]
        assert (await env[0].get("pods", name, "default"))["status"]["phase"] == "Succeeded"


async def test_read_only_mount_hidden_data_hostname_hosts_and_tmp(env):
    hidden = env[4]
    pod = make_pod(hostname="job-0", subdomain="svc", volumes=[{"name": "v", "emptyDir": {}}], containers=[{
        "name": "main", "image": "x",
        "command": ["sh", "-c", f"touch /ro/x || echo refused; cat {hidden}/token || echo hidden; hostname; "
                                "grep job-0 /etc/hosts; touch /tmp/mine; echo $HOSTNAME"],
        "volumeMounts": [{"name": "v", "mountPath": "/ro", "readOnly": True}]}])
    await worker(env, pod).run()
    assert "s3cret" not in output(env, pod)
    assert lines(output(env, pod), "stdout") == [
        "refused", "hidden", "job-0", "127.0.0.1\tjob-0.svc.default.svc.cluster.local\tjob-0", "job-0"]
    assert not Path("/tmp/mine").exists()
    assert (env[3].pods_dir / "uid-p" / "tmp" / "mine").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs a root agent")
async def test_run_as_user(env):
    pod = make_pod(securityContext={"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000},
                   volumes=[{"name": "v", "emptyDir": {}}],
                   containers=[{"name": "main", "image": "x", "command": ["sh", "-c", "id -u; id -g; id -G; touch /v/f"],
                                "volumeMounts": [{"name": "v", "mountPath": "/v"}]}])
    await worker(env, pod).run()
    assert lines(output(env, pod)) == ["1000", "3000", "3000 2000"]


async def test_args_without_command_and_config_map_update(env):
    client = env[0]
    client.add("configmaps", {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"key": "v1"}})
    script = "cat /cfg/key; echo; for i in $(seq 100); do [ \"$(cat /cfg/key)\" = v2 ] && exit 0; sleep 0.1; done; exit 1"
    pod = make_pod(volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}],
                   containers=[{"name": "main", "image": "x", "args": ["sh", "-c", script],
                                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}])
    w = worker(env, pod)
    task = asyncio.ensure_future(w.run())
    for _ in range(100):
        if output_exists(env, pod):
            break
        await asyncio.sleep(0.05)
    client.add("configmaps", {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"key": "v2"}})
    await asyncio.wait_for(task, 20)
    assert lines(output(env, pod))[0] == "v1"
    assert (await client.get("pods", "p", "default"))["status"]["phase"] == "Succeeded"


def output_exists(env, pod):
    try:
        return bool(output(env, pod))
    except OSError:
        return False


async def test_missing_config_map_waits_with_failed_mount(env):
    client = env[0]
    events = []

    class Recorder:
        def event(self, obj, type_, reason, message):
            events.append((reason, message))

    env[3].recorder = Recorder()
    pod = make_pod(volumes=[{"name": "cfg", "configMap": {"name": "later"}}],
                   containers=[{"name": "main", "image": "x", "command": ["cat", "/cfg/k"],
                                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}])
    task = asyncio.ensure_future(worker(env, pod).run())
    await asyncio.sleep(0.3)
    assert ("FailedMount", 'MountVolume.SetUp failed for volume "cfg" : configmap "later" not found') in events
    client.add("configmaps", {"metadata": {"name": "later", "namespace": "default"}, "data": {"k": "here"}})
    await asyncio.wait_for(task, 20)
    assert lines(output(env, pod)) == ["here"]
    reasons = [r for r, _ in events]
    assert reasons.index("Pulled") < reasons.index("Created") < reasons.index("Started")
