"""A container recorded as running that a restarted agent can no longer locate, nor its exit
(a reboot emptied the runtime directory and ended every process): kubelet takes it as ended
with exit code 137, ``ContainerStatusUnknown`` (``kubelet_pods.go``
convertToAPIContainerStatuses), restarts it as its restart policy says, and, where nothing
restarts it, leaves it terminated as its status manager's ``TerminatePod`` does. On a fake
clock and a runtime that finds nothing of an earlier agent."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from agent_fakes import FakeClient, make_pod
from asynctools import eventually

from jobplane.agent import status as st
from jobplane.agent.runtime import ContainerHandle, ExitInfo, ProcessSpec, Runtime
from jobplane.agent.worker import PodWorker, WorkerConfig
from jobplane.api.meta import rfc3339
from jobplane.clock import FakeClock
from jobplane.controllers.job import pod_failure_policy as pfp

RESTARTED = "The container could not be located when the pod was deleted.  The container used to be Running"
TERMINATED = "The container could not be located when the pod was terminated"


class Handle(ContainerHandle):
    """A container started after the reboot: runs until the test ends it, or a signal does."""

    def __init__(self, pid: int) -> None:
        self.pid, self.pid_start = pid, None
        self.ended: asyncio.Future[ExitInfo] = asyncio.get_running_loop().create_future()

    async def wait(self) -> ExitInfo:
        return await asyncio.shield(self.ended)

    def signal_group(self, sig: int) -> None:
        if not self.ended.done() and sig in (signal.SIGTERM, signal.SIGKILL):
            self.ended.set_result(ExitInfo(128 + sig, None, None, None, sig))


class RebootedRuntime(Runtime):
    """Locates nothing an earlier agent started (no supervisor, no run records); records
    what it starts."""

    def __init__(self) -> None:
        self.started: dict[str, list[Handle]] = {}

    async def start(self, spec: ProcessSpec) -> ContainerHandle:
        name = spec.state_dir.parent.name
        handles = self.started.setdefault(name, [])
        handles.append(Handle(5000 + len(handles)))
        return handles[-1]

    def adopt(self, pid: int, pid_start: str | None, state_dir: Path, done_path: Path) -> ContainerHandle | None:
        return None


def rebooted(tmp_path: Path, clock: FakeClock, pod: dict[str, Any], running: set[str], done: tuple[str, ...] = ()
             ) -> tuple[PodWorker, RebootedRuntime, FakeClient]:
    """A worker of a restarted agent for ``pod``, whose state.json (from before the reboot)
    records the containers in ``running`` as running and those in ``done`` as succeeded."""
    client = FakeClient()
    pod = client.add("pods", pod)
    config = WorkerConfig(pods_dir=tmp_path, node_name="n1", host_env={"PATH": "/usr/bin:/bin"},
                          run_pods_dir=tmp_path / "run")
    before = PodWorker(client, pod, RebootedRuntime(), clock, config)
    for i, rec in enumerate(before.init + before.app):
        if rec.name in running:
            rec.state = {"running": {"startedAt": rfc3339(clock.now() - 60)}}
            rec.pid, rec.container_id = 100 + i, f"jobplane://{100 + i}"
        elif rec.name in done:
            rec.state = {"terminated": st.terminated_state(0, rfc3339(clock.now() - 90), rfc3339(clock.now() - 80))}
    before._save_state()
    assert before._state_fd is not None
    runtime = RebootedRuntime()
    return PodWorker(client, pod, runtime, clock, config), runtime, client


async def until(cond: Any) -> None:
    """The worker's file work runs in threads: real short sleeps between tries."""
    await eventually(cond, rounds=500, interval=0.002)


def no_times(terminated: dict[str, Any]) -> bool:
    """kubelet writes a container it could not locate with exit code, reason and message only
    (no startedAt, finishedAt or containerID: convertToAPIContainerStatuses, TerminatePod)."""
    return not {"startedAt", "finishedAt", "containerID"} & set(terminated)


def statuses(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    s = pod["status"]
    return {c["name"]: c for c in (s.get("initContainerStatuses") or []) + s["containerStatuses"]}


async def test_a_lost_container_is_restarted_under_on_failure(tmp_path: Path) -> None:
    clock = FakeClock()
    pod = make_pod(restartPolicy="OnFailure", containers=[{"name": "a", "image": "x", "command": ["sleep", "9"]}])
    worker, runtime, client = rebooted(tmp_path, clock, pod, running={"a"})
    task = asyncio.ensure_future(worker.run())
    await until(lambda: len(runtime.started.get("a", ())) == 1)  # started again at once (no back-off yet)
    rec = worker.app[0]
    assert rec.restart_count == 1 and rec.running
    lost = rec.last_state["terminated"]
    assert (lost["exitCode"], lost["reason"], lost["message"]) == (137, "ContainerStatusUnknown", RESTARTED)
    assert no_times(lost), lost
    await until(lambda: client.status_patches("p") and client.status_patches("p")[-1]["phase"] == "Running")
    runtime.started["a"][0].ended.set_result(ExitInfo(0, clock.now()))
    await asyncio.wait_for(task, 5)
    final = await client.get("pods", "p", "default")
    a = statuses(final)["a"]
    assert final["status"]["phase"] == "Succeeded" and not final["status"].get("message")
    assert a["restartCount"] == 1 and a["state"]["terminated"]["exitCode"] == 0
    assert a["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert no_times(a["lastState"]["terminated"])


async def test_lost_sidecar_and_init_container_of_an_always_pod_are_restarted(tmp_path: Path) -> None:
    """A sidecar restarts always; a regular init container of an Always pod as OnFailure."""
    clock = FakeClock()
    pod = make_pod(restartPolicy="Always",
                   initContainers=[{"name": "side", "image": "x", "command": ["sleep", "9"], "restartPolicy": "Always"},
                                   {"name": "init", "image": "x", "command": ["sleep", "9"]}],
                   containers=[{"name": "app", "image": "x", "command": ["sleep", "9"]}])
    worker, runtime, client = rebooted(tmp_path, clock, pod, running={"side", "init"})
    task = asyncio.ensure_future(worker.run())
    await until(lambda: len(runtime.started.get("side", ())) == 1 and len(runtime.started.get("init", ())) == 1)
    side, init = worker.init
    for rec in (side, init):
        assert rec.restart_count == 1 and rec.last_state["terminated"]["message"] == RESTARTED, rec
    assert worker.app[0].state == {"waiting": {"reason": "PodInitializing"}}
    runtime.started["init"][0].ended.set_result(ExitInfo(0, clock.now()))
    await until(lambda: len(runtime.started.get("app", ())) == 1)
    worker.stop(0)
    await asyncio.wait_for(task, 5)


async def test_a_lost_container_under_never_fails_its_pod_as_kubelet_terminates_it(tmp_path: Path) -> None:
    """Not started again (kubelet means RestartPolicyNever pods not to be restarted after a
    reboot); the others of the pod are judged on their own, and a Job's podFailurePolicy sees
    exit code 137, no DisruptionTarget."""
    clock = FakeClock()
    pod = make_pod(containers=[{"name": "a", "image": "x", "command": ["sleep", "9"]},
                               {"name": "b", "image": "x", "command": ["true"]}])
    worker, runtime, client = rebooted(tmp_path, clock, pod, running={"a"}, done=("b",))
    await asyncio.wait_for(worker.run(), 5)
    assert runtime.started == {}
    final = await client.get("pods", "p", "default")
    assert final["status"]["phase"] == "Failed" and not final["status"].get("message")
    a, b = statuses(final)["a"], statuses(final)["b"]
    assert a["restartCount"] == 0 and not a["lastState"]
    t = a["state"]["terminated"]
    assert (t["exitCode"], t["reason"], t["message"]) == (137, "ContainerStatusUnknown", TERMINATED)
    assert no_times(t), t
    assert b["state"]["terminated"]["exitCode"] == 0
    fail_job = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [137]}}]}
    assert pfp.match(fail_job, final).action == "FailJob"
    assert pfp.match(fail_job, final).message == \
        "Container a for pod default/p failed with exit code 137 matching FailJob rule at index 0"
    ignore = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    assert pfp.match(ignore, final) == pfp.NO_MATCH


async def test_a_lost_container_of_a_pod_being_deleted_is_not_restarted(tmp_path: Path) -> None:
    clock = FakeClock()
    pod = make_pod(restartPolicy="OnFailure", containers=[{"name": "a", "image": "x", "command": ["sleep", "9"]}])
    worker, runtime, client = rebooted(tmp_path, clock, pod, running={"a"})
    worker.stop(30)  # what the agent does first for a pod with a deletionTimestamp
    await asyncio.wait_for(worker.run(), 5)
    assert runtime.started == {}
    a = statuses(await client.get("pods", "p", "default"))["a"]
    assert a["restartCount"] == 0 and a["state"]["terminated"]["message"] == TERMINATED
    assert no_times(a["state"]["terminated"])
