"""Logs of pods on other machines: the agent's /containerLogs endpoint, and the API
server's proxy to it (node endpoint choice, URL, error mapping)."""

from __future__ import annotations

import socket

import pytest

from jobplane import podlogs
from jobplane.agent.logserver import LogEndpoint, LogServer, route_address
from jobplane.api import errors
from jobplane.apiserver import logs
from jobplane.clock import Clock

TOKEN = "s3cret"
LINES = b"2024-01-02T03:04:05.000000001Z stdout F one\n2024-01-02T03:04:06.000000000Z stderr F two\n"


def pod(name="p", ns="default", uid="u1", phase_state=None):
    return {"metadata": {"name": name, "namespace": ns, "uid": uid},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
            "status": {"containerStatuses": [{"name": "c", "restartCount": 0,
                                              "state": phase_state or {"terminated": {"exitCode": 0}}}]}}


def node(port, addresses=(("InternalIP", "10.0.0.7"), ("Hostname", "box"))):
    return {"status": {"addresses": [{"type": t, "address": a} for t, a in addresses],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


def test_node_endpoint():
    assert logs.node_endpoint(node(0)) is None  # embedded agent: the server reads the files itself
    assert logs.node_endpoint({}) is None
    assert logs.node_endpoint(node(10250)) == "10.0.0.7:10250"
    assert logs.node_endpoint(node(10250, [("Hostname", "box")])) == "box:10250"
    assert logs.node_endpoint(node(1, [("InternalIP", "fd00::1")])) == "[fd00::1]:1"


def test_container_logs_url_forwards_only_log_options():
    url = logs.container_logs_url("h:1", pod(name="a b"), "c", {"follow": "true", "tailLines": "3",
                                                                "container": "c", "pretty": "1", "sinceTime": ""})
    assert url == "https://h:1/containerLogs/default/a%20b/c?follow=true&tailLines=3"


def test_is_local(tmp_path):
    assert not logs.is_local(tmp_path, pod())
    (tmp_path / "u1").mkdir()
    assert logs.is_local(tmp_path, pod())
    assert not logs.is_local(None, pod())


def test_log_endpoint_cert_names_and_route():
    assert LogEndpoint("t", address="10.1.2.3").cert_names("Box") == (["box", "localhost"], ["127.0.0.1", "10.1.2.3"])
    assert LogEndpoint("t", address="node.example").cert_names("box")[0][-1] == "node.example"
    assert route_address("https://127.0.0.1:6443") == "127.0.0.1"


@pytest.fixture
async def agent_logs(tmp_path):
    pods_dir = tmp_path / "pods"
    path = podlogs.log_path(pods_dir, "u1", "c", 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(LINES)
    podlogs.done_marker(pods_dir, "u1", "c", 0).touch()
    known = {("default", "p"): pod()}

    async def get_pod(ns, name):
        return known.get((ns, name))

    server = LogServer(pods_dir, TOKEN, get_pod, Clock(), host="127.0.0.1", port=0)
    port = await server.start()
    yield f"127.0.0.1:{port}", tmp_path
    await server.stop()


async def read(endpoint, p, query=None, token=TOKEN):
    target = logs.resolve_target(p, logs.LogOptions())
    chunks = await logs.open_remote_log(endpoint, p, target, query or {}, token)
    return b"".join([c async for c in chunks])


async def test_proxy_reads_the_agents_files(agent_logs):
    endpoint, tmp_path = agent_logs
    assert await read(endpoint, pod()) == b"one\ntwo\n"
    assert await read(endpoint, pod(), {"tailLines": "1"}) == b"two\n"
    assert await read(endpoint, pod(), {"timestamps": "true", "limitBytes": "34"}) == \
        b"2024-01-02T03:04:05.000000001Z one"
    assert (tmp_path / "pki" / "agent.crt").exists()  # self-signed serving certificate


async def test_agent_checks_the_token_and_the_pod(agent_logs):
    endpoint, _ = agent_logs
    with pytest.raises(errors.StatusError) as exc:
        await read(endpoint, pod(), token="wrong")
    assert exc.value.code == 401
    with pytest.raises(errors.StatusError) as exc:
        await read(endpoint, pod(name="gone"))
    assert (exc.value.code, exc.value.message) == (404, 'pods "gone" not found')
    with pytest.raises(errors.StatusError) as exc:
        await read(endpoint, pod(), {"tailLines": "x"})
    assert exc.value.code == 400


async def test_unreachable_node_is_an_internal_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(errors.StatusError) as exc:
        await read(f"127.0.0.1:{port}", pod())
    assert exc.value.code == 500
    assert exc.value.message.startswith(f'Internal error occurred: Get "https://127.0.0.1:{port}/containerLogs/')
