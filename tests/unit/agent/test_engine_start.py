"""When an image-runtime container counts as running: only once the engine says it runs
(kubelet reports ``state.running`` after the runtime started it), with the engine's start
time; the pure reading of the engine's record, and the worker on a fake engine and clock."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from agent_fakes import FakeClient

from jobplane.agent.engine import ABSENT, CREATING, NEVER, RUNNING, start_poll_delay, start_seen
from jobplane.agent.runtime import ContainerHandle, ExitInfo, ProcessSpec, Runtime
from jobplane.agent.worker import PodWorker, WorkerConfig
from jobplane.api.meta import parse_time
from jobplane.clock import FakeClock

PODMAN_START = "2026-12-04 13:50:01.250000000 +0000 UTC"
DOCKER_START = "2026-12-04T13:50:01.25Z"
ZERO = "0001-01-01T00:00:00Z"


def test_start_seen_reads_both_engines_records():
    assert start_seen(None) == (ABSENT, None)
    assert start_seen({"Status": "created", "StartedAt": ZERO}) == (CREATING, None)
    assert start_seen({"Status": "configured", "StartedAt": "0001-01-01 00:00:00 +0000 UTC"}) == (CREATING, None)
    seen, at = start_seen({"Status": "running", "StartedAt": PODMAN_START})
    assert seen == RUNNING and at == parse_time("2026-12-04T13:50:01Z") + 0.25
    assert start_seen({"Status": "running", "Running": True, "StartedAt": DOCKER_START}) == (RUNNING, at)
    # it ran and already exited: it did run, from then
    assert start_seen({"Status": "exited", "StartedAt": DOCKER_START, "ExitCode": 0}) == (RUNNING, at)
    # running with no start time given: running (the caller takes the moment it saw it)
    assert start_seen({"Status": "running"}) == (RUNNING, None)
    # ended without ever running (a start error)
    assert start_seen({"Status": "exited", "StartedAt": ZERO, "Error": "no such file"}) == (NEVER, None)
    assert start_seen({"Status": "stopped"}) == (NEVER, None)


def test_start_poll_delay_backs_off_to_a_cap():
    delays = [start_poll_delay(n) for n in range(8)]
    assert delays[0] == 0.0 and delays == sorted(delays)
    assert delays[-1] == delays[-2] <= 0.5


class FakeHandle(ContainerHandle):
    def __init__(self) -> None:
        self.pid, self.pid_start = 4242, None
        self.running = asyncio.get_running_loop().create_future()  # the engine's start time, or None
        self.ended = asyncio.get_running_loop().create_future()

    async def running_since(self) -> float | None:
        return await asyncio.shield(self.running)

    async def wait(self) -> ExitInfo:
        return await asyncio.shield(self.ended)

    def signal_group(self, sig: int) -> None:
        pass


class FakeEngine(Runtime):
    runs_images = True
    confirms_start = True

    def __init__(self) -> None:
        self.handles: list[FakeHandle] = []

    async def image_id(self, image: str) -> str | None:
        return "sha256:abc"

    async def start(self, spec: ProcessSpec) -> ContainerHandle:
        self.handles.append(FakeHandle())
        return self.handles[-1]

    def adopt(self, pid, pid_start, state_dir, done_path):  # type: ignore[no-untyped-def]
        return None


def _worker(tmp_path: Path, engine: FakeEngine, clock: FakeClock) -> tuple[PodWorker, Any]:
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "resourceVersion": "1"},
           "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "app:1"}]}}
    client = FakeClient()
    client.add("pods", pod)
    worker = PodWorker(client, pod, engine, clock, WorkerConfig(pods_dir=tmp_path, node_name="n"))
    worker.pod_dir.mkdir(parents=True, exist_ok=True)
    return worker, pod["spec"]["containers"][0]


async def _until(cond: Any) -> None:
    for _ in range(200):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_engine_container_is_waiting_until_the_engine_runs_it(tmp_path):
    clock = FakeClock(1_000.0)
    engine = FakeEngine()
    worker, cspec = _worker(tmp_path, engine, clock)
    rec = worker.app[0]
    task = asyncio.ensure_future(worker._run_once(rec, cspec))
    await _until(lambda: engine.handles)
    await _until(lambda: rec.pid == 4242)
    # the client runs, the engine does not run the container yet: not running, not ready
    assert rec.state == {"waiting": {"reason": "ContainerCreating"}}
    assert not rec.running and not rec.ready
    await clock.advance(2.0)
    engine.handles[0].running.set_result(1_001.5)  # the engine's StartedAt
    await _until(lambda: rec.running)
    assert parse_time(rec.state["running"]["startedAt"]) == 1_001.0  # RFC 3339 keeps seconds
    assert rec.ready
    engine.handles[0].ended.set_result(ExitInfo(0, 1_003.0))
    info = await task
    assert info.exit_code == 0


async def test_engine_container_that_never_runs_is_never_reported_running(tmp_path):
    clock = FakeClock(1_000.0)
    engine = FakeEngine()
    worker, cspec = _worker(tmp_path, engine, clock)
    rec = worker.app[0]
    seen: list[bool] = []
    task = asyncio.ensure_future(worker._run_once(rec, cspec))
    await _until(lambda: engine.handles)
    engine.handles[0].running.set_result(None)
    engine.handles[0].ended.set_result(ExitInfo(128, 1_000.5, "StartError", "exec: no such file"))
    seen.append(rec.running)
    info = await task
    assert info.reason == "StartError" and seen == [False] and not rec.running


class ScriptedEngine:
    """What ``EngineHandle`` asks of its runtime while watching a start: ``inspect`` answers
    from a script (its last answer repeated), on a fake clock."""

    engine = "podman"

    def __init__(self, clock: FakeClock, answers: list[dict[str, Any] | None]) -> None:
        self.clock, self.answers, self.asked = clock, answers, 0

    async def inspect(self, name: str) -> dict[str, Any] | None:
        self.asked += 1
        return self.answers[min(self.asked, len(self.answers)) - 1]


class LiveClient(ContainerHandle):
    """An engine client that is still running (this process's pid)."""

    def __init__(self) -> None:
        self.pid, self.pid_start = os.getpid(), None

    async def wait(self) -> ExitInfo:
        await asyncio.Event().wait()
        raise AssertionError


async def test_the_start_watch_waits_for_the_cid_file_then_asks_the_engine(tmp_path):
    from jobplane.agent.engine import EngineHandle

    clock = FakeClock(1_000.0)
    engine = ScriptedEngine(clock, [{"Status": "created", "StartedAt": ZERO},
                                    {"Status": "running", "StartedAt": DOCKER_START}])
    cid = tmp_path / "cid"
    handle = EngineHandle(engine, "k8s_c_p_default_u1_0", LiveClient(), None, False, cid)  # type: ignore[arg-type]
    watch = asyncio.ensure_future(handle.running_since())
    for _ in range(5):
        await clock.advance(0.025)
    assert engine.asked == 0 and not watch.done()  # not created yet: no engine process spawned
    cid.write_text("")  # podman opens it before it creates the container
    await clock.advance(0.025)
    assert engine.asked == 0
    cid.write_text("abc\n")
    await clock.advance(0.025)
    await _until(lambda: engine.asked == 1)
    assert not watch.done()  # created, not started yet
    for _ in range(10):
        await clock.advance(0.05)
        if watch.done():
            break
    assert await watch == parse_time("2026-12-04T13:50:01Z") + 0.25 and engine.asked == 2
    assert handle.seen_running and await handle.running_since() == await watch  # asked once


async def test_the_start_watch_of_an_adopted_container_asks_once(tmp_path):
    from jobplane.agent.engine import EngineHandle

    clock = FakeClock(1_000.0)
    never = ScriptedEngine(clock, [{"Status": "exited", "StartedAt": ZERO}])
    handle = EngineHandle(never, "n", None, None, False, tmp_path / "cid")  # type: ignore[arg-type]
    assert await handle.running_since() is None and never.asked == 1
    gone = ScriptedEngine(clock, [None])
    handle = EngineHandle(gone, "n", None, None, False, tmp_path / "cid")  # type: ignore[arg-type]
    assert await handle.running_since() is None and gone.asked == 1
