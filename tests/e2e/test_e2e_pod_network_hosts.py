"""The documentation's pod-to-pod example across two hosts: the test makes two "machines" as
network namespaces joined by a bridge (veth pairs, ``ip netns``), each with its own address
and a standalone ``jobplane agent``; the server listens on the bridge. The Indexed Job's pods
land on both hosts and reach each other as ``example-job-N.headless-svc`` (each pod's
/etc/hosts names the other pods by their node's address)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from jobs_helpers import AgentProcess, pinged_in_order, wait_for
from netns_hosts import netns_hosts

from jobplane.agent.sandbox import detect

MANIFESTS = Path(__file__).parent / "manifests"
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("ping") or not detect().available,
    reason="needs root, ip (iproute2), ping and the pod sandbox")


@pytest.fixture
def hosts():
    """A bridge in this namespace (the server's side) and two namespaces on it."""
    with netns_hosts(2, prefix="jp", octet=213) as made:
        yield made


def _netns_agent(ns: str, name: str, srv, data_dir: Path) -> AgentProcess:
    pki = srv.data_dir / "pki"
    return AgentProcess(["--server", srv.url, "--token-file", str(pki / "token"), "--ca-file", str(pki / "ca.crt"),
                         "--name", name, "--port", "0"], data_dir, srv.env, prefix=["ip", "netns", "exec", ns])


def test_pod_to_pod_example_across_two_hosts(hosts, server_factory, tmp_path):
    bridge_ip, machines = hosts
    srv = server_factory("--no-agent", "--host", bridge_ip)
    agents = [_netns_agent(ns, f"host-{i}", srv, tmp_path / f"agent{i}") for i, (ns, _) in enumerate(machines)]
    try:
        def ready_nodes():
            nodes = json.loads(srv.kubectl("get", "nodes", "-o", "json", check=True).stdout)["items"]
            return {n["metadata"]["name"]: n["status"]["addresses"][0]["address"] for n in nodes
                    if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}

        nodes = wait_for(lambda: len(ready_nodes()) == 2 and ready_nodes(), what="two Ready nodes")
        assert sorted(nodes.values()) == sorted(addr for _, addr in machines)
        srv.kubectl("create", "namespace", "p2p", check=True)
        srv.kubectl("apply", "-n", "p2p", "-f", str(MANIFESTS / "job-pod-to-pod.yaml"), check=True)
        srv.kubectl("wait", "-n", "p2p", "--for=condition=complete", "job/example-job", "--timeout=90s",
                    check=True, timeout=100)
        pods = json.loads(srv.kubectl("get", "pods", "-n", "p2p", "-o", "json", check=True).stdout)["items"]
        placed = {p["spec"]["nodeName"] for p in pods}
        assert placed == set(nodes), placed  # the pods ran on both hosts
        for p in pods:
            assert p["status"]["podIP"] == nodes[p["spec"]["nodeName"]]
            out = srv.kubectl("logs", "-n", "p2p", p["metadata"]["name"], check=True).stdout
            assert pinged_in_order(out), out
    finally:
        for agent in agents:
            agent.stop()
            print(f"--- agent output ({agent.data_dir}) ---\n" + "".join(agent.output[-60:]))
