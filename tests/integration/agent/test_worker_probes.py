"""PodWorker probes and lifecycle hooks with real processes (in the sandbox where bwrap runs,
so exec checks enter the container as ``kubectl exec`` does), and the HTTP and TCP checks
against real sockets."""

from __future__ import annotations

import asyncio

import pytest
from agent_fakes import FakeClient, make_pod
from asynctools import eventually

from jobplane.agent import probes as pr
from jobplane.agent.prober import run_check, run_hook
from jobplane.agent.runtime import HostProcessRuntime
from jobplane.agent.sandbox import detect
from jobplane.agent.worker import PodWorker, WorkerConfig
from jobplane.clock import Clock

SUPPORT = detect()


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj, type_, reason, message):
        self.events.append((type_, reason, message))

    def reasons(self) -> list[str]:
        return [r for _, r, _ in self.events]


@pytest.fixture(params=["sandbox", "plain"] if SUPPORT.available else ["plain"])
async def env(request, tmp_path):
    client = FakeClient()
    clock = Clock()
    runtime = HostProcessRuntime(clock, data_dir=tmp_path / "data", poll_interval=0.05, cgroup_root=None,
                                 sandbox=SUPPORT if request.param == "sandbox" else None)
    recorder = Recorder()
    config = WorkerConfig(pods_dir=tmp_path / "pods", node_name="n1", host_env={"PATH": "/usr/bin:/bin"},
                          recorder=recorder, backoff_base=0.05, backoff_max=0.1)
    yield client, runtime, clock, config, recorder
    await runtime.close()


def start(env, pod):
    client, runtime, clock, config, _ = env
    client.add("pods", pod)
    w = PodWorker(client, pod, runtime, clock, config)
    return w, asyncio.ensure_future(w.run())


def status(env, name="p"):
    return env[0].objects[("pods", "default", name)].get("status") or {}


def condition(st, ctype):
    return next((c["status"] for c in st.get("conditions") or () if c["type"] == ctype), None)


LOOP = ["sh", "-c", "while :; do sleep 0.05; done"]


async def test_readiness_drives_ready_flag_and_conditions(env, tmp_path):
    flag = tmp_path / "ready"
    pod = make_pod(containers=[{"name": "main", "image": "x", "command": LOOP, "readinessProbe": {
        "exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 0.1}}])
    w, task = start(env, pod)
    await eventually(lambda: "running" in (status(env).get("containerStatuses") or [{}])[0].get("state", {}),
                     interval=0.05)
    await eventually(lambda: ("Warning", "Unhealthy") in [(t, r) for t, r, _ in env[4].events], interval=0.05)
    cs = status(env)["containerStatuses"][0]
    assert cs["ready"] is False and cs["started"] is True
    assert condition(status(env), "Ready") == "False" and condition(status(env), "ContainersReady") == "False"
    assert [m for _, r, m in env[4].events if r == "Unhealthy"][0].startswith("Readiness probe failed: "), env[4].events
    flag.touch()
    await eventually(lambda: condition(status(env), "Ready") == "True", interval=0.05)
    assert status(env)["containerStatuses"][0]["ready"] is True
    flag.unlink()
    await eventually(lambda: condition(status(env), "Ready") == "False", interval=0.05)
    w.stop(0)
    await asyncio.wait_for(task, 20)


async def test_liveness_failure_kills_and_restarts(env, tmp_path):
    pod = make_pod(restartPolicy="Always", terminationGracePeriodSeconds=5, containers=[{
        "name": "main", "image": "x", "command": LOOP,
        "livenessProbe": {"exec": {"command": ["sh", "-c", "echo not alive; exit 1"]}, "periodSeconds": 0.1,
                          "failureThreshold": 2, "terminationGracePeriodSeconds": 1}}])
    w, task = start(env, pod)
    await eventually(lambda: (status(env).get("containerStatuses") or [{}])[0].get("restartCount", 0) >= 1,
                     interval=0.05)
    events = env[4].events
    assert ("Warning", "Unhealthy", "Liveness probe failed: not alive\n") in events
    assert ("Normal", "Killing", "Container main failed liveness probe, will be restarted") in events
    w.stop(0)
    await asyncio.wait_for(task, 20)
    last = status(env)["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] in (137, 143)


async def test_liveness_failure_with_restart_never_fails_the_pod(env):
    pod = make_pod(containers=[{
        "name": "main", "image": "x", "command": LOOP,
        "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 0.1, "failureThreshold": 1}}])
    _w, task = start(env, pod)
    await asyncio.wait_for(task, 20)
    assert status(env)["phase"] == "Failed"
    assert ("Normal", "Killing", "Container main failed liveness probe") in env[4].events


async def test_startup_probe_gates_liveness(env, tmp_path):
    flag = tmp_path / "started"
    pod = make_pod(containers=[{
        "name": "main", "image": "x", "command": LOOP,
        "startupProbe": {"exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 0.1,
                         "failureThreshold": 1000},
        "livenessProbe": {"exec": {"command": ["sh", "-c", f"echo live >> {tmp_path}/liveness"]},
                          "periodSeconds": 0.1}}])
    w, task = start(env, pod)
    await eventually(lambda: any(m.startswith("Startup probe failed") for _, _, m in env[4].events), interval=0.05)
    cs = status(env)["containerStatuses"][0]
    assert cs["started"] is False and cs["ready"] is False
    assert not (tmp_path / "liveness").exists()
    flag.touch()
    await eventually(lambda: status(env)["containerStatuses"][0]["started"] is True, interval=0.05)
    await eventually(lambda: (tmp_path / "liveness").exists(), interval=0.05)
    assert status(env)["containerStatuses"][0]["ready"] is True
    w.stop(0)
    await asyncio.wait_for(task, 20)


async def test_pre_stop_runs_before_sigterm(env, tmp_path):
    out = tmp_path / "order"
    trap = f'trap "echo term >> {out}; exit 0" TERM; while :; do sleep 0.05; done'
    pod = make_pod(containers=[{
        "name": "main", "image": "x", "command": ["sh", "-c", trap],
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", f"echo prestop >> {out}"]}},
                      "postStart": {"exec": {"command": ["sh", "-c", f"echo poststart >> {out}"]}}}}])
    w, task = start(env, pod)
    await eventually(lambda: out.exists() and "poststart" in out.read_text(), interval=0.05)
    w.stop(10)
    await asyncio.wait_for(task, 20)
    assert out.read_text().split() == ["poststart", "prestop", "term"]
    assert "FailedPreStopHook" not in env[4].reasons()


async def test_failed_hooks(env, tmp_path):
    pod = make_pod(containers=[{
        "name": "main", "image": "x", "command": LOOP,
        "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 2"]}},
                      "preStop": {"exec": {"command": ["sh", "-c", "exit 3"]}}}}])
    _w, task = start(env, pod)
    await asyncio.wait_for(task, 20)
    events = env[4].events
    assert ("Warning", "FailedPostStartHook", "PostStartHook failed") in events
    assert ("Normal", "Killing", "FailedPostStartHook") in events
    assert ("Warning", "FailedPreStopHook", "PreStopHook failed") in events
    assert status(env)["phase"] == "Failed"


async def test_http_and_tcp_checks(tmp_path):
    clock = Clock()
    answers = {"/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
               "/bad": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 6\r\n\r\nsecret",
               "/moved": b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n",
               "/away": b"HTTP/1.1 301 Moved\r\nLocation: http://example.invalid/\r\nContent-Length: 0\r\n\r\n",
               "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"}
    seen = []

    async def serve(reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        seen.append(head)
        path = head.split()[1]
        if path == "/slow":
            await asyncio.sleep(5)
        writer.write(answers.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cspec = {"name": "c", "ports": [{"name": "web", "containerPort": port}]}

    async def check(handler, action):
        spec = pr.ProbeSpec.parse(pr.READINESS, {handler: action, "timeoutSeconds": 1})
        return await run_check(spec, cspec, "127.0.0.1", None, clock)

    assert await check("httpGet", {"port": "web", "path": "/ok"}) == (pr.Outcome.SUCCESS, "ok", None)
    assert "User-Agent: kube-probe/1.32" in seen[-1] and "Accept: */*" in seen[-1]
    assert await check("httpGet", {"port": port, "path": "/bad"}) == (
        pr.Outcome.FAILURE, "HTTP probe failed with statuscode: 503", None)
    assert await check("httpGet", {"port": port, "path": "/moved"}) == (pr.Outcome.SUCCESS, "ok", None)
    assert (await check("httpGet", {"port": port, "path": "/away"}))[0] == pr.Outcome.WARNING
    assert await check("httpGet", {"port": port, "path": "/chunked"}) == (pr.Outcome.SUCCESS, "abc", None)
    outcome, output, _ = await check("httpGet", {"port": port, "path": "/slow"})
    assert outcome == pr.Outcome.FAILURE and output == (
        f'Get "http://127.0.0.1:{port}/slow": context deadline exceeded '
        "(Client.Timeout exceeded while awaiting headers)")
    assert await check("tcpSocket", {"port": port}) == (pr.Outcome.SUCCESS, "", None)
    server.close()
    await server.wait_closed()
    outcome, output, _ = await check("httpGet", {"port": port, "path": "/ok"})
    assert outcome == pr.Outcome.FAILURE
    assert output == f'Get "http://127.0.0.1:{port}/ok": dial tcp 127.0.0.1:{port}: connect: connection refused'
    assert await check("tcpSocket", {"port": port}) == (
        pr.Outcome.FAILURE, f"dial tcp 127.0.0.1:{port}: connect: connection refused", None)
    # an HTTP hook fails only without a response
    error = await run_hook({"httpGet": {"port": port}}, cspec, "127.0.0.1", None, clock)
    assert error is not None and "connection refused" in error


async def test_sidecar_startup_probe_holds_the_next_container(env, tmp_path):
    flag, out = tmp_path / "sidecar-up", tmp_path / "main-ran"
    pod = make_pod(initContainers=[{
        "name": "side", "image": "x", "restartPolicy": "Always", "command": LOOP,
        "startupProbe": {"exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 0.1,
                         "failureThreshold": 1000}}],
        containers=[{"name": "main", "image": "x", "command": ["touch", str(out)]}])
    _w, task = start(env, pod)
    await eventually(lambda: any(m.startswith("Startup probe failed") for _, _, m in env[4].events), interval=0.05)
    side = status(env)["initContainerStatuses"][0]
    assert "running" in side["state"] and side["started"] is False and not out.exists()
    assert condition(status(env), "Initialized") == "False"
    flag.touch()
    await asyncio.wait_for(task, 20)
    assert out.exists() and status(env)["phase"] == "Succeeded"
