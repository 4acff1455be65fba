from agent_fakes import FakeClient

from jobplane.agent.node import MachineInfo, NodeHeartbeat, build_node, node_status
from jobplane.api.meta import condition_true, parse_time
from jobplane.api.nodes import LEASE_NAMESPACE
from jobplane.clock import FakeClock

INFO = MachineInfo(cpus=8, memory_bytes=16 * 2**30, gpus=2, hostname="box", kernel="6.1", os_image="Debian",
                   arch="amd64")


def test_build_node():
    node = build_node("box", INFO, "2024-01-01T00:00:00Z")
    st = node["status"]
    assert st["capacity"] == {"cpu": "8", "memory": f"{16 * 2**20}Ki", "pods": "110", "nvidia.com/gpu": "2"}
    assert st["allocatable"] == st["capacity"]
    ready = [c for c in st["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in st["addresses"]
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "box"
    assert st["nodeInfo"]["kubeletVersion"].startswith("v1.")


def test_status_keeps_transition_times():
    first = node_status(INFO, "T1")["conditions"]
    again = node_status(INFO, "T2", first)["conditions"]
    assert all(c["lastTransitionTime"] == "T1" and c["lastHeartbeatTime"] == "T2" for c in again)


async def test_register_and_heartbeat():
    client, clock = FakeClient(), FakeClock()
    hb = NodeHeartbeat(client, "box", clock, INFO)
    await hb.register()
    await hb.beat()
    lease = await client.get("leases", "box", LEASE_NAMESPACE)
    assert lease["spec"]["holderIdentity"] == "box" and lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
    first = parse_time(lease["spec"]["renewTime"])
    await clock.advance(10)
    await hb.beat()
    lease = await client.get("leases", "box", LEASE_NAMESPACE)
    assert parse_time(lease["spec"]["renewTime"]) == first + 10
    # the lifecycle controller marked it Unknown: the next beat restores Ready
    node = await client.get("nodes", "box")
    for c in node["status"]["conditions"]:
        c["status"] = "Unknown"
    await client.update("nodes", node)
    await hb.beat()
    assert condition_true((await client.get("nodes", "box"))["status"], "Ready")
    # registering again (agent restart) keeps the existing node
    await NodeHeartbeat(client, "box", clock, INFO).register()
    assert condition_true((await client.get("nodes", "box"))["status"], "Ready")
