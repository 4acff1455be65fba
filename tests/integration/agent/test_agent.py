"""The Agent against the real ApiService + MemoryStore through InProcessClient."""

import asyncio

import pytest
from asynctools import eventually

from jobplane.agent.agent import Agent
from jobplane.agent.node import MachineInfo
from jobplane.clock import Clock

INFO = MachineInfo(cpus=4, memory_bytes=2**33, gpus=0, hostname="n1", kernel="k", os_image="os", arch="amd64")


@pytest.fixture
def client(inproc):
    return inproc


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


async def test_agent_runs_pods_and_finishes_deletion(client, tmp_path):
    agent = Agent(client, "n1", tmp_path, Clock(), machine=INFO)
    task = asyncio.create_task(agent.run())
    try:
        await client.create("pods", pod("ok", ["true"]), "default")
        await client.create("pods", pod("bad", ["sh", "-c", "exit 3"]), "default")
        await client.create("pods", pod("long", ["sleep", "30"]), "default")
        await wait_for(lambda: _is(client, "ok", "Succeeded"))
        await wait_for(lambda: _is(client, "bad", "Failed"))
        await wait_for(lambda: _is(client, "long", "Running"))
        node = await client.get("nodes", "n1")
        assert node["status"]["capacity"]["cpu"] == "4"
        assert (await client.get("leases", "n1", "kube-node-lease"))["spec"]["holderIdentity"] == "n1"
        uid = (await client.get("pods", "long", "default"))["metadata"]["uid"]
        await client.delete("pods", "long", "default")
        await wait_for(lambda: _is(client, "long", "Gone"))
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
