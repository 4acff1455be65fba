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
    """A worker on ``tmp_path`` as the agent's pods dir, with its runtime files in ``tmp_path/run``
    (the agent's in-memory directory: agent/rundir.py)."""
    client.add("pods", pod)
    clock = Clock()
    cfg.setdefault("run_pods_dir", tmp_path / "run")
    if cfg["run_pods_dir"] is not None:
        cfg["run_pods_dir"].mkdir(exist_ok=True)
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


async def test_running_written_at_once_on_a_quiet_node(tmp_path):
    """A lone pod's Running status does not wait the coalescing delay (30 s here): it is
    written while the container still runs, then the exit."""
    c = FakeClient()
    pod = make_pod(containers=[{"name": "main", "image": "x", "command": ["sleep", "0.5"]}])
    w = worker_for(tmp_path, c, pod, running_report_delay=30)
    await asyncio.wait_for(w.run(), 20)
    assert [s["phase"] for s in c.status_patches("p")] == ["Running", "Succeeded"]
    await w.runtime.close()


async def test_running_joins_the_exit_while_another_pod_starts(tmp_path):
    """While another pod of the node is starting, a container that ends within the delay is
    reported once, as ended: one status write instead of two."""
    c = FakeClient()
    pod = make_pod(containers=[{"name": "main", "image": "x", "command": ["sleep", "0.5"]}])
    w = worker_for(tmp_path, c, pod, running_report_delay=30)
    w.config.reports.starting(object())
    await asyncio.wait_for(w.run(), 20)
    assert [s["phase"] for s in c.status_patches("p")] == ["Succeeded"]
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


async def _running(w):
    for _ in range(150):
        await asyncio.sleep(0.02)
        if w.handles:
            return
    raise AssertionError("the container did not start")


async def test_runtime_files_live_in_the_run_dir_and_leave_with_the_pod(tmp_path):
    """Volume contents, Memory emptyDirs and the run state are in the runtime directory (tmpfs
    for the agent); the pod's records, logs and disk emptyDirs on disk. Once the pod is done
    its runtime files go (kubelet unmounts a finished pod's volumes); its log stays."""
    c = FakeClient()
    info = {"name": "info", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}
    pod = make_pod(volumes=[info, {"name": "scratch", "emptyDir": {}}, {"name": "mem", "emptyDir": {"medium": "Memory"}}],
                   containers=[{"name": "main", "image": "x", "command": [
                       "sh", "-c", "cat $(JOBPLANE_VOLUME_INFO)/name > $(JOBPLANE_VOLUME_SCRATCH)/copy; echo m > "
                                   "$(JOBPLANE_VOLUME_MEM)/f; sleep 0.4; echo done"],
                       "volumeMounts": [{"name": n, "mountPath": f"/nonexistent/{n}"} for n in ("info", "scratch", "mem")]}])
    w = worker_for(tmp_path, c, pod)
    task = asyncio.ensure_future(w.run())
    await _running(w)
    run, disk = tmp_path / "run" / "uid-p", tmp_path / "uid-p"
    assert (run / "volumes" / "info" / "name").read_text() == "p"
    assert (run / "containers" / "main" / "0" / "pid.json").exists()
    assert (disk / "state.json").exists() and (disk / "volumes" / "scratch").is_dir()
    assert not (disk / "volumes" / "info").exists() and not (disk / "containers").exists()
    for _ in range(50):
        if (run / "volumes" / "mem" / "f").exists():
            break
        await asyncio.sleep(0.02)
    assert (run / "volumes" / "mem" / "f").read_text() == "m\n"
    await asyncio.wait_for(task, 5)
    assert (await final_pod(c))["status"]["phase"] == "Succeeded"
    assert not run.exists()
    assert (disk / "volumes" / "scratch" / "copy").read_text() == "p"
    assert log_path(tmp_path, "uid-p", "main", 0).read_text().endswith("stdout F done\n")


def _kill_machine(data_dir, pid):
    """What a reboot does to a container: its waiter, its process group and the node
    supervisor gone, none of them recording anything."""
    import os
    import signal

    waiter = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    supervisor = int(open(f"/proc/{waiter}/stat").read().rsplit(")", 1)[1].split()[1])
    for target in (waiter, supervisor):
        os.kill(target, signal.SIGKILL)
    os.killpg(pid, signal.SIGKILL)


async def test_after_a_reboot_a_container_whose_runtime_state_is_gone_is_status_unknown(tmp_path):
    """The runtime directory is on tmpfs: a reboot empties it (and ends every process) while
    state.json on disk still says the container runs. kubelet reports a container it can no
    longer locate as terminated, ContainerStatusUnknown, exit code 137; so does the worker."""
    import shutil

    c = FakeClient()
    pod = make_pod(containers=[{"name": "a", "image": "x", "command": ["sleep", "30"]}])
    w = worker_for(tmp_path, c, pod)
    task = asyncio.ensure_future(w.run())
    await _running(w)
    pid = w.handles["a"].pid
    task.cancel()  # the agent goes away, the container keeps running ...
    with pytest.raises(asyncio.CancelledError):
        await task
    await w.runtime.close()
    _kill_machine(tmp_path / "data", pid)  # ... until the machine goes down
    shutil.rmtree(tmp_path / "run")
    (tmp_path / "run").mkdir()  # the agent makes it again at its start
    runtime = HostProcessRuntime(w.clock, data_dir=tmp_path / "data", poll_interval=0.05, cgroup_root=None)
    w2 = PodWorker(c, await final_pod(c), runtime, w.clock, w.config)
    await asyncio.wait_for(w2.run(), 5)
    st = (await final_pod(c))["status"]
    assert st["phase"] == "Failed"
    term = st["containerStatuses"][0]["state"]["terminated"]
    assert (term["reason"], term["exitCode"]) == ("ContainerStatusUnknown", 137)
    await runtime.close()


async def test_a_pod_started_before_runtime_directories_keeps_its_files_in_the_pod_dir(tmp_path):
    """An agent upgraded under running pods: their run state and volumes stay where the earlier
    agent put them (the container's exit record is read there)."""
    c = FakeClient()
    pod = make_pod(containers=[{"name": "a", "image": "x", "command": ["sh", "-c", "sleep 0.5; exit 4"]}])
    w = worker_for(tmp_path, c, pod, run_pods_dir=None)
    task = asyncio.ensure_future(w.run())
    await _running(w)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await w.runtime.close()
    assert (tmp_path / "uid-p" / "containers" / "a" / "0" / "pid.json").exists()
    runtime = HostProcessRuntime(w.clock, data_dir=tmp_path / "data", poll_interval=0.05, cgroup_root=None)
    (tmp_path / "run").mkdir()
    w2 = PodWorker(c, await final_pod(c), runtime, w.clock, WorkerConfig(
        pods_dir=tmp_path, run_pods_dir=tmp_path / "run", node_name="n1", host_env={"PATH": "/usr/bin:/bin"}))
    await asyncio.wait_for(w2.run(), 5)
    assert w2.run_pod_dir == tmp_path / "uid-p"
    assert (await final_pod(c))["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 4
    assert not (tmp_path / "run" / "uid-p").exists()
    await runtime.close()


async def test_volume_refresh_stops_before_the_runtime_files_are_removed(tmp_path, monkeypatch):
    """Once the pod is done no refresh may run: it would ask the API for objects of a pod that
    may be deleted already (the Node authorizer refuses), or write into the directory being
    removed."""
    import jobplane.agent.worker as worker_mod

    seen, loops = [], []

    def remove(path, mounts=True):
        seen.append([t.done() or t.cancelling() > 0 for t in loops])

    monkeypatch.setattr(worker_mod, "remove_pod_tree", remove)
    start_refresh = PodWorker._start_volume_refresh

    def start_and_keep(self):
        start_refresh(self)
        loops.extend(self._background)

    monkeypatch.setattr(PodWorker, "_start_volume_refresh", start_and_keep)
    c = FakeClient()
    info = {"name": "info", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}
    pod = make_pod(volumes=[info], containers=[{"name": "main", "image": "x", "command": ["true"],
                                                "volumeMounts": [{"name": "info", "mountPath": "/nonexistent/i"}]}])
    w = worker_for(tmp_path, c, pod)
    await asyncio.wait_for(w.run(), 5)
    assert seen and seen[0] and all(seen[0]), seen  # the refresh loop was there, and already cancelled
