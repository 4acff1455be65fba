"""PodWorker against a fake client, running real short processes."""

import asyncio
import json

import pytest
from agent_fakes import FakeClient, make_pod

from jobplane.agent.runtime import HostProcessRuntime
from jobplane.agent.worker import PodWorker, WorkerConfig
from jobplane.clock import Clock
from jobplane.podlogs import log_path


def worker_for(tmp_path, client, pod, **cfg):
    client.add("pods", pod)
    clock = Clock()
    config = WorkerConfig(pods_dir=tmp_path, node_name="n1", host_env={"PATH": "/usr/bin:/bin"}, **cfg)
    runtime = HostProcessRuntime(clock, data_dir=tmp_path / "data", poll_interval=0.05, cgroup_root=None)
    return PodWorker(client, pod, runtime, clock, config)


async def final_pod(client, name="p"):
    return await client.get("pods", name, "default")


async def test_success(tmp_path):
    c = FakeClient()
    pod = make_pod(containers=[{"name": "main", "image": "busybox", "command": ["sh", "-c", "echo $(MSG)"],
                                "env": [{"name": "MSG", "value": "hi"}]}])
    await worker_for(tmp_path, c, pod).run()
    p = await final_pod(c)
    assert p["status"]["phase"] == "Succeeded"
    cs = p["status"]["containerStatuses"][0]
    assert cs["state"]["terminated"]["reason"] == "Completed" and cs["state"]["terminated"]["exitCode"] == 0
    assert cs["containerID"].startswith("jobplane://")
    phases = [s["phase"] for s in c.status_patches("p")]
    # A container that exits before its Running status is written is reported once, as done.
    assert phases in (["Running", "Succeeded"], ["Succeeded"])
    assert log_path(tmp_path, "uid-p", "main", 0).read_text().endswith("stdout F hi\n")


async def test_one_status_write_per_transition(tmp_path):
    c = FakeClient()
    pod = make_pod(containers=[{"name": "main", "image": "x", "command": ["sleep", "0.3"]}])
    w = worker_for(tmp_path, c, pod)
    await w.run()
    assert [s["phase"] for s in c.status_patches("p")] == ["Running", "Succeeded"]
    state = (tmp_path / "uid-p" / "state.json").read_bytes()
    assert json.loads(state)["containers"][0]["state"]["terminated"]["exitCode"] == 0
    await w.runtime.close()


async def test_never_failure(tmp_path):
    c = FakeClient()
    pod = make_pod(containers=[{"name": "main", "image": "x", "command": ["sh", "-c", "exit 3"]}])
    await worker_for(tmp_path, c, pod).run()
    p = await final_pod(c)
    assert p["status"]["phase"] == "Failed"
    t = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert t["exitCode"] == 3 and t["reason"] == "Error"


async def test_missing_command_fails_clearly(tmp_path):
    c = FakeClient()
    pod = make_pod(containers=[{"name": "main", "image": "perl"}])
    await worker_for(tmp_path, c, pod).run()
    p = await final_pod(c)
    t = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert p["status"]["phase"] == "Failed" and t["reason"] == "StartError" and "command" in t["message"]


async def test_on_failure_restarts_with_backoff(tmp_path):
    c = FakeClient()
    marker = tmp_path / "count"
    script = f'n=$(cat {marker} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {marker}; [ $n -ge 3 ]'
    pod = make_pod(restartPolicy="OnFailure",
                   containers=[{"name": "main", "image": "x", "command": ["sh", "-c", script]}])
    await worker_for(tmp_path, c, pod, backoff_base=0.05, backoff_max=0.1).run()
    p = await final_pod(c)
    cs = p["status"]["containerStatuses"][0]
    assert p["status"]["phase"] == "Succeeded"
    assert cs["restartCount"] == 2
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    waits = [s["containerStatuses"][0]["state"].get("waiting", {}) for s in c.status_patches("p")]
    backoffs = [w["message"] for w in waits if w.get("reason") == "CrashLoopBackOff"]
    assert backoffs and backoffs[0].startswith("back-off 0s restarting failed container=main pod=p_default(uid-p)")
    # As kubelet counts: while waiting in back-off, restartCount is the restarts made (one so
    # far: the first restart is immediate), not the one being waited for.
    counts = {s["containerStatuses"][0]["restartCount"] for s in c.status_patches("p")
              if s["containerStatuses"][0]["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"}
    assert counts == {1}
    assert log_path(tmp_path, "uid-p", "main", 2).exists()


async def test_init_containers_run_first_in_order(tmp_path):
    c = FakeClient()
    out = tmp_path / "order"
    pod = make_pod(
        initContainers=[{"name": "i1", "image": "x", "command": ["sh", "-c", f"echo i1 >> {out}"]},
                        {"name": "i2", "image": "x", "command": ["sh", "-c", f"echo i2 >> {out}"]}],
        containers=[{"name": "a", "image": "x", "command": ["sh", "-c", f"echo a >> {out}"]}])
    await worker_for(tmp_path, c, pod).run()
    p = await final_pod(c)
    assert out.read_text().split() == ["i1", "i2", "a"]
    assert p["status"]["phase"] == "Succeeded"
    assert [s["state"]["terminated"]["reason"] for s in p["status"]["initContainerStatuses"]] == ["Completed"] * 2


async def test_init_failure_never_fails_pod(tmp_path):
    c = FakeClient()
    pod = make_pod(initContainers=[{"name": "i1", "image": "x", "command": ["false"]}],
                   containers=[{"name": "a", "image": "x", "command": ["true"]}])
    await worker_for(tmp_path, c, pod).run()
    p = await final_pod(c)
    assert p["status"]["phase"] == "Failed"
    assert p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"


async def test_active_deadline(tmp_path):
    c = FakeClient()
    # The deadline leaves the shim time to start the process even on a loaded machine: a
    # SIGTERM that lands before the container process exists can only end in SIGKILL (137).
    pod = make_pod(activeDeadlineSeconds=3, terminationGracePeriodSeconds=2,
                   containers=[{"name": "a", "image": "x", "command": ["sleep", "30"]}])
    w = worker_for(tmp_path, c, pod)
    await asyncio.wait_for(w.run(), 10)
    st = (await final_pod(c))["status"]
    assert st["phase"] == "Failed" and st["reason"] == "DeadlineExceeded"
    assert st["message"] == "Pod was active on the node longer than the specified deadline"
    assert st["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143


async def test_stop_terminates_and_reports_failed(tmp_path):
    c = FakeClient()
    pod = make_pod(containers=[{"name": "a", "image": "x", "command": ["sleep", "30"]}])
    w = worker_for(tmp_path, c, pod)
    task = asyncio.ensure_future(w.run())
    for _ in range(100):
        await asyncio.sleep(0.02)
        if w.handles:
            break
    w.stop(2)
    await asyncio.wait_for(task, 3)
    st = (await final_pod(c))["status"]
    assert st["phase"] == "Failed"


async def test_recovery_adopts_running_process(tmp_path):
    c = FakeClient()
    pod = make_pod(containers=[{"name": "a", "image": "x", "command": ["sh", "-c", "sleep 0.5; exit 4"]}])
    w = worker_for(tmp_path, c, pod)
    task = asyncio.ensure_future(w.run())
    for _ in range(100):
        await asyncio.sleep(0.02)
        if w.handles:
            break
    task.cancel()  # the agent goes away; the process keeps running
    with pytest.raises(asyncio.CancelledError):
        await task
    state = json.loads((tmp_path / "uid-p" / "state.json").read_text())
    assert state["containers"][0]["pid"]
    w2 = PodWorker(c, await final_pod(c), w.runtime, w.clock, w.config)
    await asyncio.wait_for(w2.run(), 3)
    st = (await final_pod(c))["status"]
    assert st["phase"] == "Failed"
    assert st["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 4


async def test_recovery_without_state_fails_pod(tmp_path):
    c = FakeClient()
    pod = make_pod()
    pod["status"] = {"phase": "Running", "containerStatuses": [{"name": "main", "state": {"running": {}}}]}
    await worker_for(tmp_path, c, pod).run()
    st = (await final_pod(c))["status"]
    assert st["phase"] == "Failed"
    assert st["containerStatuses"][0]["state"]["terminated"]["reason"] == "ContainerStatusUnknown"


async def test_emptydir_volume_env(tmp_path):
    c = FakeClient()
    pod = make_pod(volumes=[{"name": "work-dir", "emptyDir": {}}],
                   containers=[{"name": "a", "image": "x",
                                "command": ["sh", "-c", f"echo data > $(JOBPLANE_VOLUME_WORK_DIR)/f; echo via > {tmp_path}/mnt/g"],
                                "volumeMounts": [{"name": "work-dir", "mountPath": str(tmp_path / "mnt")}]}])
    await worker_for(tmp_path, c, pod).run()
    assert (tmp_path / "uid-p" / "volumes" / "work-dir" / "f").read_text() == "data\n"
    assert (tmp_path / "uid-p" / "volumes" / "work-dir" / "g").read_text() == "via\n"
    assert not (tmp_path / "mnt").exists()  # the mountPath symlink is removed when the pod ends


async def test_restarted_agent_readopts_through_the_supervisor(tmp_path):
    """A new runtime on the same data dir (a restarted agent) gets the exit from the
    supervisor that kept the container running while no agent was there."""
    c = FakeClient()
    pod = make_pod(containers=[{"name": "a", "image": "x", "command": ["sh", "-c", "sleep 0.6; echo bye; exit 4"]}])
    w = worker_for(tmp_path, c, pod)
    task = asyncio.ensure_future(w.run())
    for _ in range(100):
        await asyncio.sleep(0.02)
        if w.handles:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await w.runtime.close()
    runtime = HostProcessRuntime(w.clock, data_dir=tmp_path / "data", poll_interval=30, cgroup_root=None)
    w2 = PodWorker(c, await final_pod(c), runtime, w.clock, w.config)
    await asyncio.wait_for(w2.run(), 5)  # a poll would take 30 s: the exit came as a notification
    st = (await final_pod(c))["status"]
    assert st["phase"] == "Failed"
    assert st["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 4
    assert log_path(tmp_path, "uid-p", "a", 0).read_text().endswith("stdout F bye\n")
    await runtime.close()


async def test_native_sidecar_runs_beside_the_main_container_and_is_stopped_after_it(tmp_path):
    c = FakeClient()
    out = tmp_path / "order"
    side = f"echo side >> {out}; trap 'echo side-stopped >> {out}; exit 0' TERM; while :; do sleep 0.05; done"
    pod = make_pod(
        terminationGracePeriodSeconds=5,
        initContainers=[{"name": "side", "image": "x", "restartPolicy": "Always", "command": ["sh", "-c", side]},
                        {"name": "init", "image": "x", "command": ["sh", "-c", f"echo init >> {out}"]}],
        containers=[{"name": "main", "image": "x", "command": ["sh", "-c", f"sleep 0.3; echo main >> {out}"]}])
    await asyncio.wait_for(worker_for(tmp_path, c, pod).run(), 20)
    assert out.read_text().split() == ["side", "init", "main", "side-stopped"]
    st = (await final_pod(c))["status"]
    assert st["phase"] == "Succeeded"
    side_status = st["initContainerStatuses"][0]
    assert side_status["name"] == "side" and "terminated" in side_status["state"]
    running = [s for s in c.status_patches("p") if s["phase"] == "Running"]
    assert running and all(cond["status"] == "True" for cond in running[-1]["conditions"]
                           if cond["type"] == "Initialized")


async def test_pod_is_not_reported_finished_while_its_sidecar_is_being_stopped(tmp_path):
    """kubelet's status manager holds a terminal phase until no container can run any more: a
    Job whose pod says Succeeded is complete, and the sidecar's last words (written on SIGTERM,
    after the main container ended) must be in its log by then."""
    c = FakeClient()
    side = "trap 'sleep 0.3; echo stopped; exit 0' TERM; while :; do sleep 0.05; done"
    pod = make_pod(
        terminationGracePeriodSeconds=5,
        initContainers=[{"name": "side", "image": "x", "restartPolicy": "Always", "command": ["sh", "-c", side]}],
        containers=[{"name": "main", "image": "x", "command": ["sleep", "0.2"]}])
    await asyncio.wait_for(worker_for(tmp_path, c, pod).run(), 20)
    patches = c.status_patches("p")
    terminal = [s for s in patches if s["phase"] in ("Succeeded", "Failed")]
    assert terminal and terminal[0]["phase"] == "Succeeded"
    assert all("terminated" in cs["state"] for cs in terminal[0]["initContainerStatuses"] + terminal[0]["containerStatuses"])
    # the write that saw the main container end kept the pod Running, its conditions those of
    # a completed pod (as kubelet's: only phase, reason and message are held)
    main_done = next(s for s in patches if "terminated" in s["containerStatuses"][0]["state"])
    assert main_done["phase"] == "Running" and "running" in main_done["initContainerStatuses"][0]["state"]
    ready = next(cond for cond in main_done["conditions"] if cond["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted"
    assert log_path(tmp_path, "uid-p", "side", 0).read_text().endswith("stdout F stopped\n")
