"""``jobplane server --processes 2``: the node agent in a child process. A crash of the child
is noticed and it is restarted; its running pods keep running and stay reachable (exec,
logs) through the new child; stopping or killing the server ends the child."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from jobs_helpers import kill_pod_processes, runtime_pods_dir, wait_for


def agent_children(server_pid: int) -> list[int]:
    """The server's agent processes (children running ``jobplane.agent.child``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == server_pid and fields[0] != "Z" and b"jobplane.agent.child" in cmdline:
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


POD = """\
apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
  - {name: c, image: local, command: [sh, -c, 'echo started; exec sleep 600']}
"""


def running(cl, name: str) -> dict | None:
    pod = cl.core.read_namespaced_pod(name, "default", _preload_content=False)
    import json

    obj = json.loads(pod.data)
    return obj if (obj.get("status") or {}).get("phase") == "Running" else None


@pytest.mark.skipif("JOBPLANE_PROCESSES" in os.environ, reason="runs in the default-mode pass (its flags are explicit)")
def test_agent_child_crash_restart_keeps_pods_and_stop_ends_it(cluster):
    cl = cluster("--processes", "2")
    server_pid = cl.srv.proc.pid
    first = wait_for(lambda: agent_children(server_pid), 10, what="the agent child")
    assert len(first) == 1
    cl.kubectl("apply", "-f", "-", input=POD, check=True)
    before = wait_for(lambda: running(cl, "steady"), 30, what="pod steady running")
    assert cl.kubectl("exec", "steady", "--", "echo", "in-pod", check=True).stdout.strip() == "in-pod"
    run = runtime_pods_dir(cl.srv.data_dir) / before["metadata"]["uid"]  # the child's runtime files
    assert (run / "containers" / "c" / "0" / "pid.json").exists() and list((run / "volumes").glob("kube-api-*"))

    os.kill(first[0], signal.SIGKILL)
    second = wait_for(lambda: [p for p in agent_children(server_pid) if p != first[0]], 20,
                      what="a restarted agent child")
    # the pod was not restarted: same container, still running, reachable through the new child
    time.sleep(0.5)
    after = running(cl, "steady")
    assert after is not None
    cs_before, cs_after = before["status"]["containerStatuses"][0], after["status"]["containerStatuses"][0]
    assert cs_after["restartCount"] == cs_before["restartCount"] == 0
    assert cs_after["state"]["running"]["startedAt"] == cs_before["state"]["running"]["startedAt"]
    out = wait_for(lambda: cl.kubectl("exec", "steady", "--", "echo", "again").stdout.strip() == "again", 20,
                   what="exec through the restarted agent")
    assert out
    assert "started" in cl.kubectl("logs", "steady", check=True).stdout
    assert any(f"agent process (pid {first[0]}) exited with signal SIGKILL" in line for line in cl.srv.output)

    # the new child handles a deletion: the pod terminates and goes, its runtime files too
    cl.kubectl("delete", "pod", "steady", "--wait=true", "--timeout=30s", check=True)
    wait_for(lambda: not run.exists(), 10, what="the pod's runtime files to go")

    assert cl.srv.stop() == 0
    assert gone(second[0])


@pytest.mark.skipif("JOBPLANE_PROCESSES" in os.environ, reason="runs in the default-mode pass (its flags are explicit)")
def test_agent_child_ends_when_the_server_is_killed(cluster):
    cl = cluster("--processes", "2")
    child = wait_for(lambda: agent_children(cl.srv.proc.pid), 10, what="the agent child")[0]
    cl.kill_server()
    wait_for(lambda: gone(child), 15, what="the agent child to end after its server")
    cl.restart()  # a new server on the same directory gets a new agent, and a Ready node
    wait_for(lambda: agent_children(cl.srv.proc.pid), 10, what="the new agent child")
    wait_for(lambda: "Ready" in cl.kubectl("get", "nodes").stdout, 20, what="node Ready")


def test_one_process_mode_has_no_agent_child(cluster):
    cl = cluster("--processes", "1")
    time.sleep(0.5)
    assert agent_children(cl.srv.proc.pid) == []
    wait_for(lambda: " Ready " in cl.kubectl("get", "nodes").stdout, 20, what="node Ready")


def test_after_a_reboot_running_pods_end_as_container_status_unknown(cluster):
    """A reboot ends every process and empties tmpfs (the pods' runtime files, the supervisor's
    run records) but keeps the data dir: the restarted server's agent cannot locate the running
    containers and takes each as kubelet does, ended with ContainerStatusUnknown, exit code 137:
    under Never it stays terminated (the pod fails), under OnFailure it is started again."""
    cl = cluster()  # the mode JOBPLANE_PROCESSES names
    cl.kubectl("apply", "-f", "-", input=POD, check=True)
    cl.kubectl("apply", "-f", "-", input=POD.replace("steady", "resilient").replace("Never", "OnFailure"), check=True)
    wait_for(lambda: running(cl, "resilient"), 30, what="pod resilient running")
    pod = wait_for(lambda: running(cl, "steady"), 30, what="pod steady running")
    run = runtime_pods_dir(cl.srv.data_dir)
    assert (run / pod["metadata"]["uid"] / "containers").is_dir()
    cl.kill_server()
    kill_pod_processes(cl.srv.data_dir)  # the machine goes down, and its memory with it
    assert not (run / pod["metadata"]["uid"]).exists() or run == cl.srv.data_dir / "pods"
    cl.restart()

    def unknown() -> dict | None:
        got = cl.core.read_namespaced_pod("steady", "default").to_dict()
        return got if got["status"]["phase"] == "Failed" else None

    failed = wait_for(unknown, 30, what="the pod to fail")
    term = failed["status"]["container_statuses"][0]["state"]["terminated"]
    assert (term["reason"], term["exit_code"]) == ("ContainerStatusUnknown", 137)
    assert term["message"] == "The container could not be located when the pod was terminated"

    def restarted() -> dict | None:
        got = running(cl, "resilient")
        return got if got and got["status"]["containerStatuses"][0]["restartCount"] == 1 else None

    again = wait_for(restarted, 30, what="the OnFailure pod's container to start again")["status"]
    last = again["containerStatuses"][0]["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("ContainerStatusUnknown", 137)
    assert last["message"].startswith("The container could not be located when the pod was deleted.  ")
    assert "running" in again["containerStatuses"][0]["state"]
