"""Probes and lifecycle hooks on a real server, driven with kubectl: readiness drives the
pod's Ready condition, the Job's ``status.ready`` and the EndpointSlice; a failing liveness
probe restarts the container with kubelet's events; the startup probe holds the other
probes back; postStart and preStop hooks run, preStop before the container's SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from jobs_helpers import kill_pod_processes, wait_for


@pytest.fixture(scope="module")
def srv(module_server_factory):
    server = module_server_factory()
    yield server
    server.stop()
    kill_pod_processes(server.data_dir)


def apply(srv, ns: str, *docs: dict) -> None:
    srv.kubectl("create", "namespace", ns, check=True)
    srv.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs), check=True)


def get(srv, ns: str, what: str) -> dict:
    return json.loads(srv.kubectl("get", "-n", ns, what, "-o", "json", check=True).stdout)


def condition(obj: dict, ctype: str) -> str | None:
    return next((c["status"] for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == ctype), None)


def container(pod: dict, name: str | None = None) -> dict:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return next((s for s in statuses if name is None or s.get("name") == name), {})


def events(srv, ns: str, pod: str) -> str:
    return srv.kubectl("events", "-n", ns, "--for", f"pod/{pod}", check=True).stdout


def host_dir(tmp_path: Path) -> dict:
    tmp_path.chmod(0o777)
    return {"name": "shared", "hostPath": {"path": str(tmp_path), "type": "Directory"}}


MOUNT = [{"name": "shared", "mountPath": "/shared"}]


def test_readiness_drives_ready_job_status_and_endpoints(srv, tmp_path):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "ready"},
           "spec": {"template": {"metadata": {"labels": {"app": "ready"}}, "spec": {
               "restartPolicy": "Never", "volumes": [host_dir(tmp_path)],
               "containers": [{"name": "app", "image": "busybox", "volumeMounts": MOUNT,
                               "command": ["sh", "-c", "until [ -f /shared/done ]; do sleep 0.1; done"],
                               "readinessProbe": {"exec": {"command": ["test", "-f", "/shared/ready"]},
                                                  "periodSeconds": 1, "failureThreshold": 1}}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ready"},
           "spec": {"clusterIP": "None", "selector": {"app": "ready"}, "ports": [{"port": 80}]}}
    apply(srv, "rd", job, svc)
    pod = wait_for(lambda: next((p for p in get(srv, "rd", "pods")["items"]
                                 if "running" in container(p).get("state", {})), None), what="a running pod")
    name = pod["metadata"]["name"]
    wait_for(lambda: "Readiness probe failed" in events(srv, "rd", name), what="a failed readiness probe")
    pod = get(srv, "rd", f"pod/{name}")
    assert container(pod)["ready"] is False and condition(pod, "Ready") == "False"
    assert (get(srv, "rd", "job/ready")["status"].get("ready") or 0) == 0

    def endpoint_ready():
        slices = get(srv, "rd", "endpointslices")["items"]
        return [e["conditions"]["ready"] for s in slices for e in s.get("endpoints") or ()]

    wait_for(lambda: endpoint_ready() == [False], what="a not-ready endpoint")
    (tmp_path / "ready").touch()
    wait_for(lambda: get(srv, "rd", "job/ready")["status"].get("ready") == 1, what="job status.ready 1")
    pod = get(srv, "rd", f"pod/{name}")
    assert container(pod)["ready"] is True and condition(pod, "Ready") == "True"
    assert condition(pod, "ContainersReady") == "True"
    wait_for(lambda: endpoint_ready() == [True], what="a ready endpoint")
    (tmp_path / "done").touch()
    srv.kubectl("wait", "-n", "rd", "--for=condition=complete", "job/ready", "--timeout=30s", check=True)


def test_liveness_failure_restarts_the_container(srv, tmp_path):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "live"},
           "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"],
                                    "livenessProbe": {"exec": {"command": ["sh", "-c", "echo sick; exit 1"]},
                                                      "periodSeconds": 1, "failureThreshold": 2}}]}}
    apply(srv, "lv", pod)
    wait_for(lambda: container(get(srv, "lv", "pod/live")).get("restartCount", 0) >= 1, timeout=40,
             what="a restart")
    text = events(srv, "lv", "live")
    assert "Unhealthy" in text and "Liveness probe failed: sick" in text, text
    assert "Killing" in text and "Container app failed liveness probe, will be restarted" in text, text
    status = container(get(srv, "lv", "pod/live"))
    assert status["lastState"]["terminated"]["exitCode"] in (137, 143)
    srv.kubectl("delete", "-n", "lv", "pod/live", "--grace-period=0", "--force", "--wait=false")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_startup_probe_holds_the_other_probes(srv, tmp_path):
    # The container serves /shared over HTTP: the startup probe GETs /started (404 until the
    # test creates it), readiness is a TCP check, liveness an exec that leaves a mark.
    port = _free_port()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "slow"},
           "spec": {"restartPolicy": "Never", "volumes": [host_dir(tmp_path)], "containers": [{
               "name": "app", "image": "python", "volumeMounts": MOUNT,
               "command": [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                           "--directory", "/shared"],
               "ports": [{"name": "web", "containerPort": port}],
               "startupProbe": {"httpGet": {"path": "/started", "port": "web"}, "periodSeconds": 1,
                                "failureThreshold": 60},
               "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
               "livenessProbe": {"exec": {"command": ["sh", "-c", "echo x >> /shared/liveness"]},
                                 "periodSeconds": 1}}]}}
    apply(srv, "st", pod)
    wait_for(lambda: "Startup probe failed: HTTP probe failed with statuscode: 404" in events(srv, "st", "slow"),
             what="a failed startup probe")
    status = container(get(srv, "st", "pod/slow"))
    assert "running" in status["state"] and status["started"] is False and status["ready"] is False
    assert not (tmp_path / "liveness").exists()
    (tmp_path / "started").write_text("yes")
    wait_for(lambda: container(get(srv, "st", "pod/slow")).get("ready") is True, what="ready after startup")
    assert container(get(srv, "st", "pod/slow"))["started"] is True
    wait_for(lambda: (tmp_path / "liveness").exists(), what="a liveness check after startup")
    srv.kubectl("delete", "-n", "st", "pod/slow", "--grace-period=1", "--wait=false")


def test_post_start_and_pre_stop_hooks(srv, tmp_path):
    order = "/shared/order"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hooks"},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 20, "volumes": [host_dir(tmp_path)],
                    "containers": [{
                        "name": "app", "image": "busybox", "volumeMounts": MOUNT,
                        "command": ["sh", "-c", f'trap "echo term >> {order}; exit 0" TERM; '
                                                f"while :; do sleep 0.1; done"],
                        "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", f"echo poststart >> {order}"]}},
                                      "preStop": {"exec": {"command": ["sh", "-c", f"echo prestop >> {order}"]}}}}]}}
    apply(srv, "hk", pod)
    out = tmp_path / "order"
    wait_for(lambda: out.exists() and out.read_text().split() == ["poststart"], what="the postStart hook")
    srv.kubectl("delete", "-n", "hk", "pod/hooks", "--timeout=30s", check=True)
    assert out.read_text().split() == ["poststart", "prestop", "term"]


def test_probes_and_hooks_in_an_image_container(server_factory, tmp_path):
    # With --runtime podman the exec checks and hooks go through the engine's exec (the same
    # Runtime.exec seam): the postStart hook writes /started in the container's own file
    # system, and the readiness probe finds it there (the host has no /started).
    podman, busybox = shutil.which("podman"), "/bin/busybox"
    if podman is None or not os.path.exists(busybox):
        pytest.skip("needs podman and busybox-static")
    fs = tmp_path / "fs"
    (fs / "bin").mkdir(parents=True)
    shutil.copy(busybox, fs / "bin" / "busybox")
    for tool in ("sh", "test", "touch", "sleep"):
        (fs / "bin" / tool).symlink_to("busybox")
    subprocess.run(["tar", "-C", str(fs), "-cf", str(tmp_path / "fs.tar"), "."], check=True)
    image = f"localhost/jpprobe-{uuid.uuid4().hex[:8]}:1"
    subprocess.run([podman, "import", str(tmp_path / "fs.tar"), image], check=True, capture_output=True)
    srv = server_factory("--runtime", "podman")
    try:
        assert not os.path.exists("/started")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "img"},
               "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 2, "containers": [{
                   "name": "app", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"],
                   "lifecycle": {"postStart": {"exec": {"command": ["touch", "/started"]}}},
                   "readinessProbe": {"exec": {"command": ["test", "-f", "/started"]}, "periodSeconds": 1}}]}}
        apply(srv, "img", pod)
        wait_for(lambda: container(get(srv, "img", "pod/img")).get("ready") is True, timeout=60,
                 what="ready through the engine's exec")
        assert condition(get(srv, "img", "pod/img"), "Ready") == "True"
        srv.kubectl("delete", "-n", "img", "pod/img", "--timeout=30s", check=True)
    finally:
        srv.stop()
        kill_pod_processes(srv.data_dir)
        names = subprocess.run([podman, "ps", "--all", "--quiet", "--filter", f"ancestor={image}"],
                               capture_output=True, text=True).stdout.split()
        if names:
            subprocess.run([podman, "rm", "--force", *names], capture_output=True)
        subprocess.run([podman, "rmi", "--force", image], capture_output=True)


def test_describe_prints_probes_as_kubectl(srv):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "desc"},
           "spec": {"restartPolicy": "Never", "containers": [{
               "name": "app", "image": "busybox", "command": ["sleep", "3600"],
               "ports": [{"name": "web", "containerPort": 8080}],
               "livenessProbe": {"exec": {"command": ["sh", "-c", "true"]}, "initialDelaySeconds": 3},
               "readinessProbe": {"httpGet": {"path": "/healthz", "port": "web"}, "periodSeconds": 2},
               "startupProbe": {"tcpSocket": {"port": 8080}, "failureThreshold": 30}}, {
               "name": "side", "image": "busybox", "command": ["sleep", "3600"],
               "readinessProbe": {"grpc": {"port": 9090}}}]}}
    apply(srv, "desc", pod)
    # both running first: the State lines widen the block's columns
    wait_for(lambda: all("running" in (s.get("state") or {})
                         for s in (get(srv, "desc", "pod/desc").get("status") or {}).get("containerStatuses") or [{}]),
             what="both containers running")

    def probe_lines(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.strip().startswith(("Liveness:", "Readiness:", "Startup:"))]

    theirs = probe_lines(srv.kubectl("describe", "-n", "desc", "pod/desc", check=True).stdout)
    ours = subprocess.run([sys.executable, "-m", "jobplane", "describe", "-n", "desc", "pod/desc"], env=srv.env,
                          capture_output=True, text=True, timeout=60)
    assert ours.returncode == 0, ours.stderr
    assert len(theirs) == 4 and probe_lines(ours.stdout) == theirs, (theirs, probe_lines(ours.stdout))
    srv.kubectl("delete", "-n", "desc", "pod/desc", "--grace-period=0", "--force", "--wait=false")


GRPC_HEALTH_SERVER = """
import asyncio, os, sys
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

async def main(port):
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
    while True:  # /shared/db-up turns "db" SERVING
        if os.path.exists("/shared/db-up"):
            await servicer.set("db", health_pb2.HealthCheckResponse.SERVING)
        await asyncio.sleep(0.2)

asyncio.run(main(int(sys.argv[1])))
"""


def test_grpc_probes_call_the_containers_health_service(srv, tmp_path):
    """A container serving grpc.health.v1 (grpcio): the readiness probe of the overall service
    passes, the one of a NOT_SERVING service fails with kubelet's message until it serves."""
    port = _free_port()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "grpc"},
           "spec": {"restartPolicy": "Never", "volumes": [host_dir(tmp_path)], "containers": [{
               "name": "app", "image": "python", "volumeMounts": MOUNT,
               "command": [sys.executable, "-c", GRPC_HEALTH_SERVER, str(port)],
               "readinessProbe": {"grpc": {"port": port}, "periodSeconds": 1}}, {
               "name": "db", "image": "busybox", "command": ["sleep", "3600"],
               "readinessProbe": {"grpc": {"port": port, "service": "db"}, "periodSeconds": 1,
                                  "failureThreshold": 1}}]}}
    apply(srv, "gp", pod)
    wait_for(lambda: container(get(srv, "gp", "pod/grpc"), "app").get("ready") is True, timeout=40,
             what="app ready through its gRPC health check")
    wait_for(lambda: 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")'
             in events(srv, "gp", "grpc"), what="db's readiness failing")
    pod = get(srv, "gp", "pod/grpc")
    assert container(pod, "db")["ready"] is False and condition(pod, "Ready") == "False"
    (tmp_path / "db-up").write_text("")
    wait_for(lambda: condition(get(srv, "gp", "pod/grpc"), "Ready") == "True", timeout=40, what="the pod Ready")
    srv.kubectl("delete", "-n", "gp", "pod/grpc", "--grace-period=0", "--force", "--wait=false")
