"""The kubectl verbs of issue 13 against one real server (with its node agent): unknown
kinds, server-side apply, exec/cp/attach/port-forward, debug, top."""

from __future__ import annotations

import re

import pytest

from conftest import KUBECTL

CRONJOB_V1BETA1 = """\
apiVersion: batch/v1beta1
kind: CronJob
metadata: {name: old}
spec:
  schedule: "* * * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}
"""


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory()


def test_unserved_version_says_no_matches_for_kind(srv, tmp_path):
    path = tmp_path / "cj.yaml"
    path.write_text(CRONJOB_V1BETA1)
    for extra in ((), ("--validate=false",), ("--validate=strict",)):
        out = srv.kubectl("apply", "-f", str(path), *extra)
        assert out.returncode != 0
        assert 'no matches for kind "CronJob" in version "batch/v1beta1"' in out.stderr, out.stderr
        assert "error validating" not in out.stderr


SSA_JOB = """\
apiVersion: batch/v1
kind: Job
metadata: {name: %(name)s, labels: {team: a}}
spec:
  parallelism: %(parallelism)d
  suspend: true
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["true"]}]
"""


def _managers(srv, name: str) -> dict:
    import json

    out = srv.kubectl("get", "job", name, "-o", "json", "--show-managed-fields", check=True).stdout
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in json.loads(out)["metadata"]["managedFields"]}


def test_server_side_apply_conflict_and_force(srv, tmp_path):
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(SSA_JOB % {"name": "ssa", "parallelism": 1})
    two.write_text(SSA_JOB % {"name": "ssa", "parallelism": 2})
    out = srv.kubectl("apply", "--server-side", "-f", str(one), check=True)
    assert out.stdout.strip() == "job.batch/ssa serverside-applied"
    assert _managers(srv, "ssa")[("kubectl", "Apply")]["f:spec"]["f:parallelism"] == {}
    out = srv.kubectl("apply", "--server-side", "--field-manager=ci", "-f", str(two))
    assert out.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.parallelism' in out.stderr
    assert "--force-conflicts" in out.stderr
    srv.kubectl("apply", "--server-side", "--field-manager=ci", "--force-conflicts", "-f", str(two), check=True)
    got = srv.kubectl("get", "job", "ssa", "-o", "jsonpath={.spec.parallelism}", check=True).stdout
    assert got == "2"
    managers = _managers(srv, "ssa")
    assert "f:parallelism" in managers[("ci", "Apply")]["f:spec"]
    assert "f:parallelism" not in managers[("kubectl", "Apply")]["f:spec"]
    # a manager that stops applying a field it alone owns removes it
    three = tmp_path / "three.yaml"
    three.write_text((SSA_JOB % {"name": "ssa", "parallelism": 2}).replace("labels: {team: a}", "labels: {}"))
    srv.kubectl("apply", "--server-side", "--field-manager=ci", "-f", str(three), check=True)
    labels = srv.kubectl("get", "job", "ssa", "-o", "jsonpath={.metadata.labels.team}", check=True).stdout
    assert labels == "a"  # still applied by "kubectl": co-owned fields stay
    srv.kubectl("apply", "--server-side", "-f", str(three), check=True)
    labels = srv.kubectl("get", "job", "ssa", "-o", "jsonpath={.metadata.labels}", check=True).stdout
    assert "team" not in labels


def test_client_side_apply_then_server_side_migrates(srv, tmp_path):
    path = tmp_path / "csa.yaml"
    path.write_text(SSA_JOB % {"name": "csa", "parallelism": 1})
    srv.kubectl("apply", "-f", str(path), check=True)
    assert ("kubectl-client-side-apply", "Update") in _managers(srv, "csa")
    out = srv.kubectl("apply", "--server-side", "-f", str(path), check=True)
    assert "Warning" not in out.stderr, out.stderr
    managers = _managers(srv, "csa")
    assert ("kubectl-client-side-apply", "Update") not in managers
    assert "f:parallelism" in managers[("kubectl", "Apply")]["f:spec"]
    # the fields are now the applier's: changing them by apply needs no force
    path.write_text(SSA_JOB % {"name": "csa", "parallelism": 3})
    srv.kubectl("apply", "--server-side", "-f", str(path), check=True)
    assert srv.kubectl("get", "job", "csa", "-o", "jsonpath={.spec.parallelism}", check=True).stdout == "3"


def test_field_manager_on_every_write_verb(srv, tmp_path):
    srv.kubectl("create", "job", "fm", "--image=busybox", "--", "true", check=True)
    srv.kubectl("label", "job", "fm", "x=y", check=True)
    srv.kubectl("patch", "job", "fm", "-p", '{"spec":{"activeDeadlineSeconds":60}}', check=True)
    managers = _managers(srv, "fm")
    assert ("kubectl-create", "Update") in managers
    assert managers[("kubectl-label", "Update")] == {"f:metadata": {"f:labels": {"f:x": {}}}}
    assert managers[("kubectl-patch", "Update")] == {"f:spec": {"f:activeDeadlineSeconds": {}}}
    # the controller's status writes are its own, on the status subresource
    assert any(m == "kube-controller-manager" for m, _ in managers)


@pytest.fixture(scope="module")
def running_pod(srv):
    srv.kubectl("run", "box", "--image=busybox", "--restart=Never", "--env=GREETING=hello",
                "--command", "--", "sleep", "600", check=True)
    srv.kubectl("wait", "--for=condition=Ready", "pod/box", "--timeout=60s", check=True)
    return "box"


def test_exec_env_stdin_exit_code(srv, running_pod):
    out = srv.kubectl("exec", running_pod, "--", "sh", "-c", "echo $GREETING; echo oops >&2", check=True)
    assert (out.stdout, out.stderr) == ("hello\n", "oops\n")
    out = srv.kubectl("exec", "-i", running_pod, "--", "tr", "a-z", "A-Z", input="piped in\n", check=True)
    assert out.stdout == "PIPED IN\n"
    out = srv.kubectl("exec", running_pod, "--", "sh", "-c", "exit 3")
    assert out.returncode == 3
    assert out.stderr.strip() == "command terminated with exit code 3"


def test_exec_tty_gets_terminal_and_size(srv, running_pod):
    import shlex
    import subprocess

    # The command starts at the client's size when the first resize arrives within
    # rc.FIRST_RESIZE_WAIT; on a loaded machine kubectl can send it later, and the resize then
    # reaches the running terminal (as upstream, where the runtime applies resizes as they
    # come): wait up to 5 s for it rather than read the size once.
    wait = 'n=0; while [ "$(stty size)" = "0 0" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done'
    cmd = f"stty cols 101 rows 33; {KUBECTL} exec -it {running_pod} -- sh -c '{wait}; tty; stty size; exit 5'"
    out = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=srv.env, capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    # (the local terminal may echo a control character around the output)
    assert re.search(r"/dev/pts/\d+\r?\n", out.stdout), out.stdout
    assert re.search(r"(^|\n|@)33 101\r?\n", out.stdout), out.stdout
    assert "command terminated with exit code 5" in out.stdout, shlex.quote(out.stdout)


def test_cp_in_and_out(srv, running_pod, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("payload\n")
    dest_dir = tmp_path / "in-pod"
    dest_dir.mkdir()
    srv.kubectl("cp", str(src), f"{running_pod}:{dest_dir}/copied.txt", check=True)
    assert (dest_dir / "copied.txt").read_text() == "payload\n"  # host runtime: the pod sees the host's files
    srv.kubectl("cp", f"{running_pod}:{dest_dir}/copied.txt", str(tmp_path / "back.txt"), check=True)
    assert (tmp_path / "back.txt").read_text() == "payload\n"


def test_python_client_stream_exec(srv, running_pod):
    from kubernetes import client
    from kubernetes.stream import stream

    api = client.CoreV1Api(srv.kube_client())
    out = stream(api.connect_get_namespaced_pod_exec, running_pod, "default", command=["sh", "-c", "echo $GREETING"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "hello\n"
    resp = stream(api.connect_get_namespaced_pod_exec, running_pod, "default", command=["sh", "-c", "exit 7"],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=30)
    assert resp.returncode == 7


def _millicores(text: str) -> int:
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def test_top_pods_and_nodes(srv, running_pod):
    srv.kubectl("run", "burn", "--image=busybox", "--restart=Never", "--labels=app=burn",
                "--command", "--", "sh", "-c", "while :; do :; done", check=True)
    srv.kubectl("wait", "--for=condition=Ready", "pod/burn", "--timeout=60s", check=True)
    try:
        rows = {}
        out = srv.kubectl("top", "pods", check=True).stdout
        for line in out.splitlines()[1:]:
            name, cpu, memory = line.split()
            rows[name] = (_millicores(cpu), memory)
        assert out.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
        # a busy loop gets what a loaded 2-core CI machine leaves it, but always more than sleep
        assert rows["burn"][0] >= 5, out
        assert rows[running_pod][0] < rows["burn"][0], out
        assert rows["burn"][1].endswith("Mi")
        out = srv.kubectl("top", "pods", "--containers", "-l", "app=burn", check=True).stdout
        assert out.splitlines()[0].split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
        assert out.splitlines()[1].split()[:2] == ["burn", "burn"]
        out = srv.kubectl("top", "nodes", check=True).stdout
        header, node = out.splitlines()[0].split(), out.splitlines()[1].split()
        assert header == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
        assert _millicores(node[1]) > 0 and node[3].endswith("Mi"), out
    finally:
        srv.kubectl("delete", "pod", "burn", "--grace-period=0", "--force", "--wait=false")


def test_run_interactive_attaches_and_cleans_up(srv):
    out = srv.kubectl("run", "-i", "--rm", "upper", "--image=busybox", "--restart=Never", "--command", "--",
                      "tr", "a-z", "A-Z", input="via stdin\n", timeout=90)
    assert out.returncode == 0, out.stderr
    assert "VIA STDIN" in out.stdout
    assert 'pod "upper" deleted' in out.stdout
    assert srv.kubectl("get", "pod", "upper").returncode != 0


def test_run_it_rm_with_tty(srv):
    import subprocess

    cmd = (f"stty cols 90 rows 20; {KUBECTL} run -it --rm term --image=busybox --restart=Never --command -- "
           "sh -c 'read x; echo got $x; stty size'")
    feeder = subprocess.Popen(["sh", "-c", "sleep 3; echo hello; sleep 30"], stdout=subprocess.PIPE)
    try:
        out = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=srv.env, capture_output=True, text=True,
                             timeout=90, stdin=feeder.stdout)
    finally:
        feeder.kill()
        feeder.wait()
    assert "got hello" in out.stdout, out.stdout
    assert "20 90" in out.stdout
    assert 'pod "term" deleted' in out.stdout


def test_debug_it_starts_an_ephemeral_container(srv, running_pod):
    import json
    import subprocess

    cmd = f"{KUBECTL} debug -it {running_pod} --image=busybox --profile=general --target={running_pod}"
    feeder = subprocess.Popen(["sh", "-c", "sleep 4; echo 'echo in-debug-$((6*7)); exit'; sleep 30"],
                              stdout=subprocess.PIPE)
    try:
        out = subprocess.run(["script", "-qec", cmd, "/dev/null"], env={**srv.env, "SHELL": "/bin/sh"},
                             capture_output=True, text=True, timeout=90, stdin=feeder.stdout)
    finally:
        feeder.kill()
        feeder.wait()
    assert "in-debug-42" in out.stdout, out.stdout + out.stderr
    pod = json.loads(srv.kubectl("get", "pod", running_pod, "-o", "json", check=True).stdout)
    [spec] = pod["spec"]["ephemeralContainers"]
    assert spec["name"].startswith("debugger-") and spec["targetContainerName"] == running_pod
    [status] = pod["status"]["ephemeralContainerStatuses"]
    assert status["name"] == spec["name"] and "terminated" in status["state"]
    # ephemeral containers are only added: changing one is forbidden
    spec["image"] = "alpine"
    patch = json.dumps({"spec": {"ephemeralContainers": [spec]}})
    out = srv.kubectl("patch", "pod", running_pod, "--subresource=ephemeralcontainers", "-p", patch)
    assert out.returncode != 0 and "may not be removed or changed" in out.stderr, out.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_port_forward_to_a_pod_serving_http(srv, tmp_path):
    import sys
    import urllib.request

    (tmp_path / "index.html").write_text("hello from the pod\n")
    pod_port, local_port = _free_port(), _free_port()
    srv.kubectl("run", "web", "--image=python", "--restart=Never", "--command", "--", sys.executable, "-m",
                "http.server", str(pod_port), "--bind", "127.0.0.1", "--directory", str(tmp_path), check=True)
    srv.kubectl("wait", "--for=condition=Ready", "pod/web", "--timeout=60s", check=True)
    proc = srv.kubectl_popen("port-forward", "pod/web", f"{local_port}:{pod_port}")
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"Forwarding from 127.0.0.1:{local_port} -> {pod_port}"), line
        body = ""
        for _ in range(50):  # the pod's server may still be binding its port
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{local_port}/index.html", timeout=10) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                srv.kubectl("get", "pod", "web")  # a moment, without sleeping in the test
        assert body == "hello from the pod\n"
    finally:
        proc.kill()
        proc.wait()
        srv.kubectl("delete", "pod", "web", "--grace-period=0", "--force", "--wait=false")
