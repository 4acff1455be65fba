"""Pods from their images (``jobplane server --runtime podman``), driven with kubectl and the
``kubernetes`` client: the images are built here from Debian's busybox-static, so their file
system differs from the host's, and no registry is needed (none is reachable from CI)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from image_helpers import BUSYBOX, LIMITS, busybox_rootfs, import_image, why_no_podman
from image_helpers import podman as _podman
from jobs_helpers import Cluster, condition, kill_pod_processes, wait_for

from conftest import JobplaneServer

MARKER = "only-in-image"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Two images made here: ``plain`` (busybox, /etc/marker, CMD cat /etc/marker) and ``ep``
    (ENTRYPOINT ["/bin/echo", "ep"], CMD ["cmd1"]). Skips when podman cannot run a container."""
    why = why_no_podman()
    if why:
        pytest.skip(why)
    tag = f"jpe2e-{uuid.uuid4().hex[:8]}"
    tools = ("sh", "cat", "echo", "sleep", "head", "tr", "true", "hostname", "ls", "env", "id")
    tar = busybox_rootfs(tools).add_text("/etc/marker", MARKER + "\n").write(tmp_path_factory.mktemp("rootfs") / "fs.tar")
    plain, ep = f"localhost/{tag}:1", f"localhost/{tag}-ep:1"
    import_image(tar, plain, ['CMD ["/bin/sh","-c","cat /etc/marker"]'])
    import_image(tar, ep, ['ENTRYPOINT ["/bin/echo","ep"]', 'CMD ["cmd1"]'])
    try:
        probe = _podman("run", "--rm", "--network", "host", *LIMITS, plain, check=False)
        if probe.returncode != 0 or MARKER not in probe.stdout:
            pytest.skip(f"podman cannot run a container here: {(probe.stderr or probe.stdout).strip()[-300:]}")
        yield {"plain": plain, "ep": ep}
    finally:
        _podman("rmi", "--force", plain, ep, check=False)


def _agent_id(srv: JobplaneServer) -> str:
    return hashlib.sha256(str(srv.data_dir.resolve()).encode()).hexdigest()[:16]


def _containers(srv: JobplaneServer, *filters: str) -> list[str]:
    args = ["ps", "--all", "--format", "{{.Names}}", "--filter", f"label=jobplane.dev/agent={_agent_id(srv)}"]
    for f in filters:
        args += ["--filter", f]
    return _podman(*args).stdout.split()


def _remove_all(srv: JobplaneServer) -> None:
    """What a test run leaves in podman (a failed test): its containers and pods."""
    names = _containers(srv)
    if names:
        _podman("rm", "--force", *names, check=False)
    pods = _podman("pod", "ps", "--quiet", "--filter", f"label=jobplane.dev/agent={_agent_id(srv)}",
                   check=False).stdout.split()
    if pods:
        _podman("pod", "rm", "--force", *pods, check=False)


@pytest.fixture(scope="module")
def cl(images, module_server_factory):
    srv = module_server_factory("--runtime", "podman")
    yield Cluster(srv)
    srv.stop()
    kill_pod_processes(srv.data_dir)
    _remove_all(srv)


def _pod(cl: Cluster, name: str) -> dict:
    return json.loads(cl.kubectl("get", "pod", name, "-o", "json", check=True).stdout)


def _state(pod: dict, index: int = 0) -> dict:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return statuses[index].get("state") or {}


def _events(cl: Cluster, pod: str) -> list[tuple[str, str, str]]:
    out = cl.kubectl("get", "events", "--field-selector", f"involvedObject.name={pod}", "-o", "json", check=True)
    return [(e.get("type"), e.get("reason"), e.get("message")) for e in json.loads(out.stdout)["items"]]


def _terminated(cl: Cluster, name: str, timeout: float = 30.0) -> dict:
    return wait_for(lambda: _state(_pod(cl, name)).get("terminated"), timeout, 0.2, f"pod {name} to end")


def test_node_reports_the_engine(cl):
    node = json.loads(cl.kubectl("get", "nodes", "-o", "json", check=True).stdout)["items"][0]
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("podman://")
    images = wait_for(lambda: json.loads(cl.kubectl("get", "nodes", "-o", "json", check=True).stdout)
                      ["items"][0]["status"].get("images"), 30, 0.5, "status.images")
    assert any(n.startswith("localhost/jpe2e-") for img in images for n in img["names"])


def test_job_reads_a_file_only_the_image_has(cl, images):
    assert not Path("/etc/marker").exists() or Path("/etc/marker").read_text().strip() != MARKER
    cl.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "marker"}, "spec": {
        "completions": 2, "parallelism": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": images["plain"], "workingDir": "/work",
            "command": ["sh", "-c", "cat /etc/marker; echo $(GREETING) $NAME; pwd; echo data > /out/f; cat /ro/f; echo; "
                                    "hostname"],
            "env": [{"name": "GREETING", "value": "hello"}, {"name": "NAME", "value": "$(GREETING)-there"}],
            "volumeMounts": [{"name": "out", "mountPath": "/out"},
                             {"name": "cfg", "mountPath": "/ro/f", "subPath": "f", "readOnly": True}]}],
            "volumes": [{"name": "out", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "marker-cfg"}}]}}}})
    cl.kubectl("create", "configmap", "marker-cfg", "--from-literal=f=from-configmap", check=True)
    job = cl.wait_complete("marker", 60)
    assert job["status"]["succeeded"] == 2 and not job["status"].get("failed")
    for pod in cl.job_pods("marker"):
        name = pod["metadata"]["name"]
        assert cl.log(name).split("\n")[:5] == [MARKER, "hello hello-there", "/work", "from-configmap", name]
        status = pod["status"]["containerStatuses"][0]
        assert status["containerID"].startswith("podman://k8s_main_" + name)
        assert status["state"]["terminated"]["exitCode"] == 0
    # finished pods leave nothing in the engine
    wait_for(lambda: not _containers(cl.srv, "label=batch.kubernetes.io/job-name=marker"), 20, 0.2, "containers gone")


def test_image_entrypoint_and_cmd_follow_kubernetes_rules(cl, images):
    ep = images["ep"]
    for name, container in (("ep-none", {}), ("ep-args", {"args": ["a1", "a2"]}),
                            ("ep-command", {"command": ["/bin/echo", "own"]}),
                            ("ep-both", {"command": ["/bin/echo", "own"], "args": ["x"]})):
        cl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": ep, **container}]}})
    want = {"ep-none": "ep cmd1", "ep-args": "ep a1 a2", "ep-command": "own", "ep-both": "own x"}
    for name, text in want.items():
        assert _terminated(cl, name)["exitCode"] == 0
        assert cl.log(name).strip() == text, name


def test_exit_codes_start_errors_and_oom(cl, images):
    img = images["plain"]
    cl.apply({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "code7"}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": img, "command": ["sh", "-c", "exit 7"]}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "noexec"}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": img, "command": ["not-in-image"]}]}},
        # 200 MB into a shell variable under a 50 MiB limit: the kernel kills the shell
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "oom"}, "spec": {
            "restartPolicy": "Never", "containers": [{
                "name": "main", "image": img, "resources": {"limits": {"memory": "50Mi"}},
                "command": ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"]}]}},
    ]})
    code = _terminated(cl, "code7")
    assert (code["exitCode"], code["reason"]) == (7, "Error")
    start = _terminated(cl, "noexec")
    assert start["reason"] == "StartError" and start["exitCode"] == 128
    assert "not-in-image" in start["message"]
    assert ("Warning", "Failed", f"Error: {start['message']}") in _events(cl, "noexec")
    oom = _terminated(cl, "oom")
    assert (oom["reason"], oom["exitCode"]) == ("OOMKilled", 137)
    assert "survived" not in cl.log("oom")
    assert _pod(cl, "oom")["status"]["phase"] == "Failed"


def test_missing_image_err_image_pull_then_back_off(cl):
    image = "registry.invalid/jpe2e-not-there:1"  # a name that never resolves: the pull fails at once
    cl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "missing"}, "spec": {
        "restartPolicy": "Never", "containers": [{"name": "main", "image": image}]}})
    seen: set[str] = set()

    def both() -> bool:
        pod = _pod(cl, "missing")
        assert pod["status"]["phase"] == "Pending"
        seen.add((_state(pod).get("waiting") or {}).get("reason", ""))
        return {"ErrImagePull", "ImagePullBackOff"} <= seen

    wait_for(both, 30, 0.1, "ErrImagePull then ImagePullBackOff")
    pod = _pod(cl, "missing")
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    events = _events(cl, "missing")
    assert ("Normal", "Pulling", f'Pulling image "{image}"') in events
    assert any(t == "Warning" and r == "Failed" and m.startswith(f'Failed to pull image "{image}": ')
               for t, r, m in events)
    assert ("Warning", "Failed", "Error: ErrImagePull") in events
    assert ("Normal", "BackOff", f'Back-off pulling image "{image}"') in events
    assert ("Warning", "Failed", "Error: ImagePullBackOff") in events
    table = cl.kubectl("get", "pod", "missing", check=True).stdout
    assert "ImagePullBackOff" in table or "ErrImagePull" in table
    cl.kubectl("delete", "pod", "missing", "--wait=true", check=True)


def test_pull_policy_never_without_the_image(cl):
    cl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "never"}, "spec": {
        "restartPolicy": "Never", "containers": [{"name": "main", "image": "localhost/jpe2e-never:1",
                                                  "imagePullPolicy": "Never"}]}})
    waiting = wait_for(lambda: _state(_pod(cl, "never")).get("waiting", {}).get("reason") == "ErrImageNeverPull"
                       and _state(_pod(cl, "never"))["waiting"], 30, 0.1, "ErrImageNeverPull")
    assert waiting["message"] == 'Container image "localhost/jpe2e-never:1" is not present with pull policy of Never'
    assert _pod(cl, "never")["status"]["phase"] == "Pending"
    assert ("Warning", "ErrImageNeverPull", waiting["message"]) in _events(cl, "never")
    cl.kubectl("delete", "pod", "never", "--wait=true", check=True)


def test_pod_failure_policy_config_issue_example(cl):
    """kubernetes/website's job-pod-failure-policy-config-issue.yaml, as the pod failure policy
    task runs it: the pod waits for an image that does not exist; a custom controller (here
    the test, with the doc's kubectl patch) marks it ConfigIssue and deletes it; the Job fails."""
    manifest = (Path(__file__).parent / "manifests" / "job-pod-failure-policy-config-issue.yaml").read_text()
    cl.apply(manifest)
    pod = wait_for(lambda: [p for p in cl.job_pods("job-pod-failure-policy-config-issue")
                            if (_state(p).get("waiting") or {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")],
                   30, 0.2, "a pod waiting for its image")[0]
    name = pod["metadata"]["name"]
    assert pod["status"]["phase"] == "Pending"
    patch = {"status": {"conditions": [{"type": "ConfigIssue", "status": "True", "reason": "NonExistingImage",
                                        "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}}
    cl.kubectl("patch", "pod", name, "--subresource=status", "-p", json.dumps(patch), check=True)
    cl.kubectl("delete", f"pods/{name}", check=True)
    job = cl.wait_finished("job-pod-failure-policy-config-issue", 30)
    failed = condition(job, "Failed")
    assert failed and failed["reason"] == "PodFailurePolicy"
    assert "ConfigIssue" in failed["message"]
    cl.kubectl("delete", "job", "job-pod-failure-policy-config-issue", "--wait=true", check=True)


def test_sidecar_and_init_containers(cl, images):
    img = images["plain"]
    cl.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "side"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
        "initContainers": [
            {"name": "init", "image": img, "command": ["sh", "-c", "echo from-init > /w/f"],
             "volumeMounts": [{"name": "w", "mountPath": "/w"}]},
            {"name": "logger", "image": img, "restartPolicy": "Always",
             "command": ["sh", "-c", "trap 'echo stopped; exit 0' TERM; echo up > /w/up; "
                                     "while true; do sleep 0.1; done"],
             "volumeMounts": [{"name": "w", "mountPath": "/w"}]}],
        "containers": [{"name": "main", "image": img,
                        "command": ["sh", "-c", "while [ ! -f /w/up ]; do sleep 0.1; done; cat /w/f /w/up; "
                                                "[ $(hostname) = $HOSTNAME ] || echo wrong-hostname"],
                        "volumeMounts": [{"name": "w", "mountPath": "/w"}]}],
        "volumes": [{"name": "w", "emptyDir": {}}]}}}})
    job = cl.wait_complete("side", 60)
    assert job["status"]["succeeded"] == 1
    pod = cl.job_pods("side")[0]["metadata"]["name"]
    assert cl.kubectl("logs", pod, "-c", "main", check=True).stdout.split() == ["from-init", "up"]
    assert cl.job_pods("side")[0]["status"]["containerStatuses"][0]["imageID"].startswith("sha256:")
    assert cl.kubectl("logs", pod, "-c", "logger", check=True).stdout.strip() == "stopped"


def test_exec_and_delete_remove_the_containers(cl, images):
    cl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": images["plain"], "command": ["sleep", "600"]}]}})
    wait_for(lambda: "running" in _state(_pod(cl, "sleeper")), 30, 0.1, "sleeper to run")
    uid = _pod(cl, "sleeper")["metadata"]["uid"]
    assert cl.kubectl("exec", "sleeper", "--", "cat", "/etc/marker", check=True).stdout.strip() == MARKER
    assert _containers(cl.srv, f"label=io.kubernetes.pod.uid={uid}")
    cl.kubectl("delete", "pod", "sleeper", "--wait=true", check=True)
    wait_for(lambda: not _containers(cl.srv, f"label=io.kubernetes.pod.uid={uid}"), 20, 0.2, "containers gone")


def _podman_path() -> str:
    from image_helpers import PODMAN

    assert PODMAN is not None
    return PODMAN


def _engine_started_at(name: str) -> datetime:
    """The engine's ``.State.StartedAt`` of a container (RFC 3339 with nanoseconds)."""
    raw = json.loads(_podman("container", "inspect", name).stdout)[0]["State"]["StartedAt"]
    head, _, frac = raw.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=UTC) + timedelta(microseconds=int((frac + "000000")[:6]))


def test_running_only_once_the_engine_runs_the_container(images, tmp_path):
    """kubelet reports a container running once the runtime started it, not while the engine's
    client is still creating it. The engine here is slow to create (its ``run`` waits 2 s
    before podman's): every watch event that says running (and the Ready that ``kubectl wait``
    sees) finds the container running in podman, and startedAt is the engine's start (RFC
    3339 keeps whole seconds)."""
    from kubernetes import watch as k8s_watch

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    slow = bin_dir / "podman"
    slow.write_text(f'#!/bin/sh\n[ "$1" = run ] && sleep 2\nexec {_podman_path()} "$@"\n')
    slow.chmod(0o755)
    srv = JobplaneServer(tmp_path / "srv", ("--runtime", "podman"))
    srv.env["PATH"] = f"{bin_dir}:{srv.env.get('PATH', '')}"
    srv.start()
    cl = Cluster(srv)
    try:
        def apply(name: str) -> None:
            cl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": images["plain"], "command": ["sleep", "600"]}]}})

        # early-a: every event from its creation on, until the first that says running
        since = cl.core.list_namespaced_pod("default").metadata.resource_version
        apply("early-a")
        w = k8s_watch.Watch()
        seen = None
        for event in w.stream(cl.core.list_namespaced_pod, "default", field_selector="metadata.name=early-a",
                              resource_version=since, timeout_seconds=60):
            statuses = event["object"].status.container_statuses or []
            if statuses and statuses[0].state.running is not None:
                uid = event["object"].metadata.uid
                seen = (statuses[0], _containers(srv, f"label=io.kubernetes.pod.uid={uid}", "status=running"))
                w.stop()
            elif statuses:
                assert statuses[0].state.waiting.reason == "ContainerCreating" and not statuses[0].ready
        assert seen is not None, "early-a never ran"
        status, listed = seen
        assert listed, "reported running before podman runs the container"
        assert status.state.running.started_at >= _engine_started_at(listed[0]).replace(microsecond=0)
        # early-b: kubectl wait for Ready, then podman at once
        apply("early-b")
        cl.kubectl("wait", "--for=condition=Ready", "pod/early-b", "--timeout=60s", check=True)
        pod = _pod(cl, "early-b")
        listed = _containers(srv, f"label=io.kubernetes.pod.uid={pod['metadata']['uid']}", "status=running")
        assert listed, "Ready before podman runs the container"
        started = datetime.fromisoformat(_state(pod)["running"]["startedAt"].replace("Z", "+00:00"))
        assert started >= _engine_started_at(listed[0]).replace(microsecond=0)
        cl.kubectl("delete", "pod", "early-a", "early-b", "--wait=true", check=True)
    finally:
        srv.stop()
        kill_pod_processes(srv.data_dir)
        _remove_all(srv)


def test_hooks_and_probes_run_in_the_running_container(cl, images):
    """postStart, startup and readiness probes begin once the engine runs the container: the
    hook's exec lands in it, the startup probe sees the hook's file, the pod turns Ready."""
    cl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hooked"}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": images["plain"], "command": ["sleep", "600"],
                        "volumeMounts": [{"name": "w", "mountPath": "/w"}],
                        "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo hooked > /w/hook"]}}},
                        # a `podman exec` can take over the default 1 s on a loaded CI machine
                        # (one timed out there): what is tested is where the probe runs
                        "startupProbe": {"exec": {"command": ["cat", "/w/hook"]}, "periodSeconds": 1,
                                         "timeoutSeconds": 10},
                        "readinessProbe": {"exec": {"command": ["cat", "/etc/marker"]}, "periodSeconds": 1,
                                           "timeoutSeconds": 10}}],
        "volumes": [{"name": "w", "emptyDir": {}}]}})
    cl.kubectl("wait", "--for=condition=Ready", "pod/hooked", "--timeout=60s", check=True)
    status = _pod(cl, "hooked")["status"]["containerStatuses"][0]
    assert status["started"] and status["ready"] and status["restartCount"] == 0
    assert cl.kubectl("exec", "hooked", "--", "cat", "/w/hook", check=True).stdout.strip() == "hooked"
    assert not [e for e in _events(cl, "hooked") if e[0] == "Warning"]
    cl.kubectl("delete", "pod", "hooked", "--wait=true", check=True)


def test_on_failure_restarts_in_place_with_a_cpu_limit(cl, images):
    cl.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "retry"}, "spec": {"template": {"spec": {
        "restartPolicy": "OnFailure", "containers": [{
            "name": "main", "image": images["plain"], "resources": {"limits": {"cpu": "500m"}},
            "command": ["sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max 2>/dev/null; "
                                    "[ -f /w/once ] && exit 0; touch /w/once; exit 1"],
            "volumeMounts": [{"name": "w", "mountPath": "/w"}]}],
        "volumes": [{"name": "w", "emptyDir": {}}]}}}})
    job = cl.wait_complete("retry", 60)
    assert job["status"]["succeeded"] == 1 and not job["status"].get("failed")
    pod = cl.job_pods("retry")[0]
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["state"]["terminated"]["exitCode"] == 0
    name = pod["metadata"]["name"]
    assert status["containerID"].endswith(f"k8s_main_{name}_default_{pod['metadata']['uid']}_1")
    assert cl.log(name).split()[0] in ("50000", "50000 100000")  # cpu.cfs_quota_us (v1) or cpu.max (v2)


def test_security_context_on_images(cl, images):
    img = images["plain"]
    cl.apply({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sc-user"}, "spec": {
            "restartPolicy": "Never", "securityContext": {"runAsUser": 1000, "runAsGroup": 3000,
                                                          "supplementalGroups": [4000]},
            "containers": [{"name": "main", "image": img, "command": ["sh", "-c", "id -u; id -g; id -G"]}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sc-ro"}, "spec": {
            "restartPolicy": "Never", "containers": [{
                "name": "main", "image": img, "securityContext": {"readOnlyRootFilesystem": True,
                                                                  "capabilities": {"drop": ["ALL"]}},
                "command": ["sh", "-c", "touch /x 2>/dev/null && echo wrote || echo read-only; "
                                        "grep CapEff /proc/self/status"]}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sc-priv"}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": img, "command": ["true"],
                                                      "securityContext": {"privileged": True}}]}},
    ]})
    assert _terminated(cl, "sc-user")["exitCode"] == 0
    lines = cl.log("sc-user").split("\n")
    assert lines[0] == "1000" and lines[1] == "3000" and "4000" in lines[2].split()
    assert _terminated(cl, "sc-ro")["exitCode"] == 0
    assert cl.log("sc-ro").split("\n")[:2] == ["read-only", "CapEff:\t0000000000000000"]
    refused = _terminated(cl, "sc-priv")
    assert refused["reason"] == "CreateContainerConfigError"
    assert "--allow-privileged" in refused["message"]


def test_kubectl_run_attaches_stdin(cl, images):
    out = cl.kubectl("run", "-i", "--rm", "att", f"--image={images['plain']}", "--restart=Never", "--command",
                     "--", "sh", "-c", "read x; echo got:$x; cat /etc/marker", input="from-stdin\n", timeout=90)
    assert out.returncode == 0, out.stderr
    assert "got:from-stdin" in out.stdout and MARKER in out.stdout


def test_runtime_class_host_runs_a_pod_as_host_processes(cl, images):
    cl.apply({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "host-processes"},
              "handler": "host"})
    table = cl.kubectl("get", "runtimeclass", check=True).stdout.split("\n")
    assert table[0].split()[:2] == ["NAME", "HANDLER"] and table[1].split()[:2] == ["host-processes", "host"]
    for name, rc in (("on-host", "host-processes"), ("in-image", None)):
        cl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
            "restartPolicy": "Never", **({"runtimeClassName": rc} if rc else {}),
            "containers": [{"name": "main", "image": images["plain"],
                            "command": ["sh", "-c", "cat /etc/marker 2>/dev/null || echo not-in-image"]}]}})
    assert _terminated(cl, "on-host")["exitCode"] == 0 and _terminated(cl, "in-image")["exitCode"] == 0
    assert cl.log("on-host").strip() == "not-in-image"
    assert cl.log("in-image").strip() == MARKER
    assert _pod(cl, "on-host")["status"]["containerStatuses"][0]["containerID"].startswith("jobplane://")
    refused = cl.kubectl("run", "no-class", "--image", images["plain"], "--restart=Never",
                         "--overrides", json.dumps({"spec": {"runtimeClassName": "nope"}}))
    assert refused.returncode != 0
    assert 'pods "no-class" is forbidden: pod rejected: RuntimeClass "nope" not found' in refused.stderr


def test_images_load_for_machines_without_a_registry(cl, images, tmp_path):
    loaded = images["plain"].replace(":1", "-loaded:1")
    archive = tmp_path / "image.tar"
    _podman("tag", images["plain"], loaded)
    try:
        _podman("save", "--output", str(archive), loaded)
        _podman("rmi", loaded)
        import sys

        out = subprocess.run([sys.executable, "-m", "jobplane", "images", "load", str(archive)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert loaded in out.stdout
        cl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "loaded"}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": loaded, "imagePullPolicy": "Never"}]}})
        assert _terminated(cl, "loaded")["exitCode"] == 0
        assert cl.log("loaded").strip() == MARKER
    finally:
        _podman("rmi", "--force", loaded, check=False)


def test_agent_restart_readopts_running_containers(images, server_factory):
    """The server (and its agent) killed mid-Job: the containers keep running, the restarted
    agent re-adopts them and the Job's counts are exact; a container of a pod that no longer
    exists is removed at start."""
    srv = server_factory("--runtime", "podman")
    cl = Cluster(srv)
    try:
        cl.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "readopt"}, "spec": {
            "completions": 3, "parallelism": 3, "backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{
                    "name": "main", "image": images["plain"],
                    "command": ["sh", "-c", "echo start; sleep 4; echo done"]}]}}}})
        wait_for(lambda: len([p for p in cl.job_pods("readopt") if "running" in _state(p)]) == 3, 40, 0.1,
                 "three running pods")
        cl.kill_server()
        orphan = f"k8s_main_gone_default_{uuid.uuid4()}_0"
        _podman("create", "--name", orphan, "--label", f"jobplane.dev/agent={_agent_id(srv)}", images["plain"])
        cl.restart()
        job = cl.wait_complete("readopt", 60)
        assert job["status"]["succeeded"] == 3 and not job["status"].get("failed")
        pods = cl.job_pods("readopt")
        assert len(pods) == 3
        for pod in pods:
            assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
            assert cl.log(pod["metadata"]["name"]).split() == ["start", "done"]
        wait_for(lambda: not _containers(srv), 30, 0.2, "the orphan and the finished containers to be removed")
    finally:
        srv.stop()
        kill_pod_processes(srv.data_dir)
        _remove_all(srv)


def test_standalone_agent_with_the_image_runtime(images, server_factory, tmp_path):
    """``jobplane agent --runtime podman`` on its own: the Node reports podman, a Job runs from
    its image and ``kubectl logs`` comes through the agent's log endpoint."""
    import sys
    import threading

    srv = server_factory("--no-agent")
    data_dir = tmp_path / "agent"
    pki = srv.data_dir / "pki"
    cmd = [sys.executable, "-m", "jobplane", "agent", "--server", srv.url, "--token-file", str(pki / "token"),
           "--ca-file", str(pki / "ca.crt"), "--name", "image-node", "--data-dir", str(data_dir),
           "--address", "127.0.0.1", "--port", "0", "--node-ip", "127.0.0.1", "--runtime", "podman"]
    output: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**srv.env, "PYTHONUNBUFFERED": "1"})
    threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
    cl = Cluster(srv)
    try:
        node = wait_for(lambda: json.loads(cl.kubectl("get", "nodes", "-o", "json", check=True).stdout)["items"],
                        30, 0.2, "the agent's node")[0]
        assert node["metadata"]["name"] == "image-node"
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("podman://")
        cl.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "remote"}, "spec": {"template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": images["plain"]}]}}}})
        cl.wait_complete("remote", 60)
        pod = cl.job_pods("remote")[0]["metadata"]["name"]
        assert cl.kubectl("logs", pod, check=True).stdout.strip() == MARKER
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        print("--- agent output ---\n" + "".join(output[-100:]))
        kill_pod_processes(data_dir)
        ids = _podman("ps", "--all", "--quiet", "--filter",
                      f"label=jobplane.dev/agent={hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]}",
                      check=False).stdout.split()
        if ids:
            _podman("rm", "--force", *ids, check=False)


def test_docker_runs_a_pod_from_its_image(server_factory, tmp_path):
    """The same runtime through the docker CLI, where a Docker daemon answers."""
    from jobplane.agent.engine import probe

    version, why = probe("docker")
    if version is None:
        pytest.skip(f"no Docker daemon answers here ({why})")
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    tar = busybox_rootfs(("sh", "cat")).add_text("/etc/marker", MARKER + "\n").write(tmp_path / "fs.tar")
    image = f"localhost/jpe2e-docker-{uuid.uuid4().hex[:8]}:1"
    subprocess.run(["docker", "import", str(tar), image], check=True, capture_output=True)
    srv = server_factory("--runtime", "docker")
    cl = Cluster(srv)
    try:
        node = json.loads(cl.kubectl("get", "nodes", "-o", "json", check=True).stdout)["items"][0]
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == f"docker://{version}"
        cl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "d"}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": image,
                                                      "command": ["sh", "-c", "cat /etc/marker; exit 3"]}]}})
        assert _terminated(cl, "d")["exitCode"] == 3
        assert cl.log("d").strip() == MARKER
    finally:
        srv.stop()
        kill_pod_processes(srv.data_dir)
        subprocess.run(["docker", "rmi", "--force", image], capture_output=True)
