"""The Agent against the real ApiService + MemoryStore through InProcessClient."""

import asyncio
import os
import shutil

import pytest
from asynctools import eventually

from jobplane.agent import rundir
from jobplane.agent.agent import Agent
from jobplane.agent.node import MachineInfo
from jobplane.agent.spares import is_spare
from jobplane.clock import Clock

INFO = MachineInfo(cpus=4, memory_bytes=2**33, gpus=0, hostname="n1", kernel="k", os_image="os", arch="amd64")


@pytest.fixture
def client(inproc):
    return inproc


@pytest.fixture(autouse=True)
def no_runtime_dir_left(tmp_path):
    """Pods outlive their agent by design, and so does what they hold in memory: the runtime
    directory (agent/rundir.py; in /dev/shm here) goes with the test."""
    yield
    for base in (tmp_path, tmp_path / "data"):
        for path in rundir.candidates(base.resolve(), os.geteuid(), os.environ):
            shutil.rmtree(path, ignore_errors=True)


def pod(name, command, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "n1", "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "x", "command": command}], **spec}}


async def wait_for(fn, timeout=4.0):
    """Real processes on the real clock: poll every 20 ms."""
    return await eventually(fn, rounds=int(timeout / 0.02), interval=0.02)


async def phase(client, name):
    try:
        return (await client.get("pods", name, "default")).get("status", {}).get("phase")
    except Exception:
        return "Gone"


async def test_agent_runs_pods_and_finishes_deletion(client, tmp_path, monkeypatch):
    from jobplane.agent import agent as agent_mod

    monkeypatch.setattr(agent_mod, "DELETED_LOGS_KEEP", 0.5)
    agent = Agent(client, "n1", tmp_path, Clock(), machine=INFO)
    task = asyncio.create_task(agent.run())
    try:
        await client.create("pods", pod("ok", ["true"]), "default")
        await client.create("pods", pod("bad", ["sh", "-c", "exit 3"]), "default")
        await client.create("pods", pod("long", ["sleep", "30"]), "default")
        await wait_for(lambda: _is(client, "ok", "Succeeded"))
        await wait_for(lambda: _is(client, "bad", "Failed"))
        await wait_for(lambda: _is(client, "long", "Running"))
        # The pods' runtime files in memory (agent/rundir.py), hidden from pods like the data dir.
        assert agent.run_root is None or str(agent.run_root.resolve()) in agent.config.hidden
        ok_uid = (await client.get("pods", "ok", "default"))["metadata"]["uid"]
        await wait_for(lambda: _gone(agent.run_pods_dir / ok_uid / "containers"))  # done: its runtime files went
        assert (tmp_path / "pods" / ok_uid / "logs" / "c" / "0.log").exists()
        node = await client.get("nodes", "n1")
        assert node["status"]["capacity"]["cpu"] == "4"
        assert (await client.get("leases", "n1", "kube-node-lease"))["spec"]["holderIdentity"] == "n1"
        uid = (await client.get("pods", "long", "default"))["metadata"]["uid"]
        assert (agent.run_pods_dir / uid / "containers" / "c" / "0" / "pid.json").exists()
        await client.delete("pods", "long", "default")
        await wait_for(lambda: _is(client, "long", "Gone"))
        await wait_for(lambda: _gone(agent.run_pods_dir / uid))  # its volumes, with the object
        await wait_for(lambda: _gone(tmp_path / "pods" / uid / "tmp"))  # its /tmp too
        if agent.run_pods_dir != tmp_path / "pods":  # its log a while longer (kubelet's container GC)
            assert (tmp_path / "pods" / uid / "logs" / "c" / "0.log").exists()
        await wait_for(lambda: _gone(tmp_path / "pods" / uid))
        assert (tmp_path / "pods").exists()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _is(client, name, want):
    return await phase(client, name) == want


async def _gone(path):
    return not path.exists()


async def test_scheduler_binds_and_agent_runs(client, tmp_path):
    from jobplane.client.events import EventRecorder
    from jobplane.client.informer import SharedInformerFactory
    from jobplane.controllers.scheduler import Scheduler

    clock = Clock()
    agent = Agent(client, "n1", tmp_path, clock, machine=INFO)
    informers = SharedInformerFactory(client, clock)
    sched = Scheduler(client, clock, informers, EventRecorder(client, "default-scheduler", clock))
    tasks = [asyncio.create_task(agent.run()), asyncio.create_task(sched.run())]
    try:
        p = pod("unbound", ["sh", "-c", "echo $(POD)"])
        del p["spec"]["nodeName"]
        p["spec"]["containers"][0]["env"] = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
        await client.create("pods", p, "default")
        await wait_for(lambda: _is(client, "unbound", "Succeeded"))
        done = await client.get("pods", "unbound", "default")
        assert done["spec"]["nodeName"] == "n1"
        types = {c["type"]: c["status"] for c in done["status"]["conditions"]}
        assert types["PodScheduled"] == "True" and types["Ready"] == "False"
        log = (tmp_path / "pods" / done["metadata"]["uid"] / "logs" / "c" / "0.log").read_text()
        assert log.endswith(" stdout F unbound\n")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await informers.stop_all()


async def test_agent_collects_orphaned_runtime_dirs_at_start(client, tmp_path):
    """Pods deleted while no agent ran: their directories go, the runtime ones too; a runtime
    directory whose pod directory is gone goes (the agent died between the two removals), and
    so does a finished pod's; what another node's agent on the same data dir holds stays."""
    data, rt = tmp_path / "data", tmp_path / "rt"
    for uid, node in (("gone-1", "n1"), ("other", "n2")):
        (data / "pods" / uid).mkdir(parents=True)
        (data / "pods" / uid / "state.json").write_text(f'{{"node": "{node}"}}')
    done = pod("done", ["true"])
    done["status"] = {"phase": "Succeeded"}
    done_uid = (await client.create("pods", done, "default"))["metadata"]["uid"]
    await client.patch("pods", "done", {"status": {"phase": "Succeeded"}}, "default", subresource="status")
    (data / "pods" / done_uid / "logs").mkdir(parents=True)
    (data / "pods" / done_uid / "state.json").write_text('{"node": "n1"}')
    for uid in ("gone-1", "gone-2", "other", done_uid):
        (rt / "pods" / uid / "volumes" / "v").mkdir(parents=True)
    agent = Agent(client, "n1", data, Clock(), machine=INFO, runtime_dir=str(rt))
    assert agent.run_pods_dir == rt / "pods" and str(rt.resolve()) in agent.config.hidden
    task = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: _gone(rt / "pods" / "gone-2"))
        assert not (rt / "pods" / "gone-1").exists() and not (data / "pods" / "gone-1").exists()
        # a finished pod: its runtime files go, its logs stay until it is deleted
        assert not (rt / "pods" / done_uid).exists() and (data / "pods" / done_uid / "logs").exists()
        assert (rt / "pods" / "other").exists() and (data / "pods" / "other").exists()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert (rt / "pods" / "other").exists()  # not empty: kept when the agent stops
    (rt / "pods" / "other" / "volumes" / "v").rmdir()
    (rt / "pods" / "other" / "volumes").rmdir()
    (rt / "pods" / "other").rmdir()
    agent = Agent(client, "n1", data, Clock(), machine=INFO, runtime_dir=str(rt))
    task = asyncio.create_task(agent.run())
    await wait_for(lambda: agent.informer is not None and agent.informer.has_synced)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not rt.exists()  # nothing left in memory once an agent with no pods stops


async def test_only_pods_without_a_directory_at_start_skip_reading_records(client, tmp_path):
    """A pod whose directory was there when the agent started (an earlier agent ran it) has its
    records read; one first seen by this agent has none to read (worker.records_possible)."""
    old = await client.create("pods", pod("old", ["sleep", "30"]), "default")
    (tmp_path / "pods" / old["metadata"]["uid"]).mkdir(parents=True)
    agent = Agent(client, "n1", tmp_path, Clock(), machine=INFO)
    started = []
    real_start = agent._start_worker

    def spy(p, fresh=False):
        started.append((p["metadata"]["name"], fresh))
        return real_start(p, fresh)

    agent._start_worker = spy
    task = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: _is(client, "old", "Running"))
        await client.create("pods", pod("new", ["true"]), "default")
        await wait_for(lambda: _is(client, "new", "Succeeded"))
        assert started == [("old", False), ("new", True)]
        await client.delete("pods", "old", "default")
        await wait_for(lambda: _is(client, "old", "Gone"))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_finished_pods_runtime_dirs_go_in_one_batch(client, tmp_path, monkeypatch):
    """Removed together REMOVAL_BATCH after the first finished, except a directory a worker
    started again for the same pod uses; what is pending when the agent stops goes then.
    A deleted pod's directories go in a batch too, its runtime directory first."""
    import types

    import jobplane.agent.agent as agent_mod

    monkeypatch.setattr(agent_mod, "REMOVAL_BATCH", 0.05)
    calls = []
    real = agent_mod.remove_pod_trees
    monkeypatch.setattr(agent_mod, "remove_pod_trees", lambda trees: (calls.append(list(trees)), real(trees)))
    agent = Agent(client, "n1", tmp_path, Clock(), machine=INFO, runtime_dir="off")
    dirs = {uid: agent.run_pods_dir / uid for uid in ("a", "b", "busy")}
    for path in dirs.values():
        (path / "volumes").mkdir(parents=True)
    agent.workers["busy"] = types.SimpleNamespace(finished=asyncio.Event())  # a new worker runs for it
    for uid in ("a", "b", "busy"):
        agent._remove_later(dirs[uid], False)
    await wait_for(lambda: _gone(dirs["b"]))
    assert calls == [[(dirs["a"], False), (dirs["b"], False)]] and dirs["busy"].exists()
    del agent.workers["busy"]
    monkeypatch.setattr(agent_mod, "REMOVAL_BATCH", 60.0)
    agent._remove_later(dirs["busy"], False)  # still pending when the agent stops
    task = asyncio.create_task(agent.run())
    await wait_for(lambda: agent.informer is not None and agent.informer.has_synced)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not dirs["busy"].exists()


async def test_a_deleted_pods_volumes_are_gone_before_its_object(client, tmp_path, monkeypatch):
    """kubelet deletes a pod's object only once its volumes are unmounted: a pod stopped for its
    deletion removes its runtime directory itself, not in the next batch."""
    import jobplane.agent.agent as agent_mod

    monkeypatch.setattr(agent_mod, "REMOVAL_BATCH", 60.0)
    agent = Agent(client, "n1", tmp_path, Clock(), machine=INFO)
    task = asyncio.create_task(agent.run())
    try:
        uid = (await client.create("pods", pod("held", ["sleep", "30"]), "default"))["metadata"]["uid"]
        await wait_for(lambda: _is(client, "held", "Running"))
        assert (agent.run_pods_dir / uid).exists()
        await client.delete("pods", "held", "default")
        await wait_for(lambda: _is(client, "held", "Gone"))
        assert not (agent.run_pods_dir / uid).exists()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# ---------------------------------------------- spare pod directories (agent/spares.py)

def _spares(pods):
    return sorted(p.name for p in pods.iterdir() if is_spare(p.name))


async def _stop_agent(task):
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_pod_from_a_spare_runs_logs_and_goes(client, tmp_path, monkeypatch):
    """A pod started from a spare runs, logs and is removed as any; the spares outlive the
    agent and the next one reuses or removes them."""
    from jobplane.agent import agent as agent_mod

    monkeypatch.setattr(agent_mod, "DELETED_LOGS_KEEP", 0.2)
    pods = tmp_path / "pods"
    agent = Agent(client, "n1", tmp_path, Clock(), machine=INFO)
    task = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: _ready(agent, 3))
        made = {name: (pods / name).stat().st_ino for name in _spares(pods)}
        assert len(made) == 3
        first_logs = {(pods / name / "logs" / ".first" / "0.log").stat().st_ino for name in made}
        await client.create("pods", pod("ok", ["sh", "-c", "echo from a spare; ls -d /tmp"]), "default")
        await wait_for(lambda: _is(client, "ok", "Succeeded"))
        uid = (await client.get("pods", "ok", "default"))["metadata"]["uid"]
        assert agent.config.spares.taken == 1
        assert (pods / uid).stat().st_ino in made.values()  # the spare's directory, renamed
        log = (pods / uid / "logs" / "c" / "0.log").read_text()
        assert " stdout F from a spare\n" in log
        # the first container's log is the spare's, renamed: no inode made on the start path
        assert (pods / uid / "logs" / "c" / "0.log").stat().st_ino in first_logs
        assert os.listdir(pods / uid / "logs") == ["c"]
        assert agent.collect_orphan_dirs() is None and len(_spares(pods)) >= 2  # spares are no orphans
        await wait_for(lambda: _ready(agent, 3))  # refilled once no pod is starting
        await client.delete("pods", "ok", "default")
        await wait_for(lambda: _is(client, "ok", "Gone"))
        await wait_for(lambda: _gone(pods / uid))
        assert len(_spares(pods)) == 3
    finally:
        await _stop_agent(task)
    left = {name: (pods / name).stat().st_ino for name in _spares(pods)}
    assert len(left) == 3  # kept for the next agent

    # The next agent: reuses those laid out as it makes them, removes one that was touched.
    used = sorted(left)[0]
    (pods / used / "state.json").write_text("{}")
    agent = Agent(client, "n1", tmp_path, Clock(), machine=INFO)
    task = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: _ready(agent, 3))
        now = {name: (pods / name).stat().st_ino for name in _spares(pods)}
        assert used not in now and all(now[name] == ino for name, ino in left.items() if name != used)
        await client.create("pods", pod("again", ["true"]), "default")
        await wait_for(lambda: _is(client, "again", "Succeeded"))
        assert agent.config.spares.taken == 1
    finally:
        await _stop_agent(task)


async def test_no_spares_for_a_pod_an_agent_ran_before(client, tmp_path):
    """A pod whose directory the agent found at its start (records possible) never takes a spare."""
    created = await client.create("pods", pod("old", ["true"]), "default")
    uid = created["metadata"]["uid"]
    (tmp_path / "pods" / uid).mkdir(parents=True)  # an earlier agent made it, and died at once
    agent = Agent(client, "n1", tmp_path, Clock(), machine=INFO)
    task = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: _is(client, "old", "Succeeded"))
        assert agent.config.spares.taken == 0
        assert os.path.exists(tmp_path / "pods" / uid / "logs" / "c" / "0.log")
    finally:
        await _stop_agent(task)


async def _ready(agent, n):
    return agent.config.spares is not None and agent.config.spares.ready == n
