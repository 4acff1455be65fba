"""The pull step of the image runtime (``PodWorker._ensure_image``) on a fake clock and a fake
engine: kubelet's waiting reasons, events and image back-off (10 s doubling, per image)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agent_fakes import FakeClient

from jobplane.agent.engine import PullError
from jobplane.agent.runtime import ContainerHandle, ProcessSpec, Runtime
from jobplane.agent.worker import PodWorker, WorkerConfig
from jobplane.clock import FakeClock


class FakeEngine(Runtime):
    runs_images = True

    def __init__(self, present: set[str], pullable: set[str]) -> None:
        self.present, self.pullable = present, pullable
        self.pulls: list[tuple[str, Any]] = []

    async def start(self, spec: ProcessSpec) -> ContainerHandle:
        raise NotImplementedError

    def adopt(self, pid, pid_start, state_dir, done_path):  # type: ignore[no-untyped-def]
        return None

    async def image_id(self, image: str) -> str | None:
        return f"id-{image}" if image in self.present else None

    async def pull(self, image: str, auth: dict[str, Any] | None = None) -> str:
        self.pulls.append((image, auth))
        if image not in self.pullable:
            raise PullError(f"initializing source docker://{image}: no such host")
        self.present.add(image)
        return f"id-{image}"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, ref: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


def _worker(tmp_path: Path, image: str, engine: FakeEngine, clock: FakeClock, **container: Any) -> tuple:
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "resourceVersion": "1"},
           "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": image, **container}]}}
    client = FakeClient()
    client.add("pods", pod)
    recorder = Recorder()
    worker = PodWorker(client, pod, engine, clock, WorkerConfig(pods_dir=tmp_path, node_name="n", recorder=recorder))
    return worker, recorder, pod["spec"]["containers"][0]


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_missing_image_err_image_pull_then_back_off_doubling(tmp_path):
    clock = FakeClock()
    engine = FakeEngine(set(), set())
    worker, rec_events, cspec = _worker(tmp_path, "registry.invalid/app:1", engine, clock)
    rec = worker.app[0]
    task = asyncio.ensure_future(worker._ensure_image(rec, cspec))
    await _settle()
    assert rec.state["waiting"]["reason"] == "ErrImagePull"
    assert engine.pulls == [("registry.invalid/app:1", None)]
    await clock.advance(1.0)  # the next sync: in back-off
    await _settle()
    assert rec.state["waiting"] == {"reason": "ImagePullBackOff",
                                    "message": 'Back-off pulling image "registry.invalid/app:1"'}
    await clock.advance(9.0)  # 10 s after the failure: pulled again, fails, back-off now 20 s
    await _settle()
    assert len(engine.pulls) == 2 and rec.state["waiting"]["reason"] == "ErrImagePull"
    await clock.advance(1.0)
    await _settle()
    assert rec.state["waiting"]["reason"] == "ImagePullBackOff"
    await clock.advance(18.0)
    await _settle()
    assert len(engine.pulls) == 2  # still backing off (20 s)
    engine.pullable.add("registry.invalid/app:1")
    await clock.advance(1.0)
    await _settle()
    assert task.done() and task.result() is True
    assert len(engine.pulls) == 3 and worker.image_refs["c"] == "id-registry.invalid/app:1"
    reasons = [r for _, r, _ in rec_events.events]
    assert reasons[:5] == ["Pulling", "Failed", "Failed", "BackOff", "Failed"]
    assert ("Warning", "Failed", "Error: ErrImagePull") in rec_events.events
    assert ("Warning", "Failed", "Error: ImagePullBackOff") in rec_events.events
    assert rec_events.events[-1][1] == "Pulled"
    assert rec_events.events[-1][2].startswith('Successfully pulled image "registry.invalid/app:1" in ')


async def test_if_not_present_uses_the_local_image_never_waits(tmp_path):
    clock = FakeClock()
    engine = FakeEngine({"localhost/app:1"}, set())
    worker, rec_events, cspec = _worker(tmp_path, "localhost/app:1", engine, clock)
    assert await worker._ensure_image(worker.app[0], cspec) is True
    assert engine.pulls == []
    assert rec_events.events == [("Normal", "Pulled", 'Container image "localhost/app:1" already present on machine')]

    worker, rec_events, cspec = _worker(tmp_path, "localhost/gone:1", engine, clock, imagePullPolicy="Never")
    task = asyncio.ensure_future(worker._ensure_image(worker.app[0], cspec))
    await _settle()
    msg = 'Container image "localhost/gone:1" is not present with pull policy of Never'
    assert worker.app[0].state["waiting"] == {"reason": "ErrImageNeverPull", "message": msg}
    assert ("Warning", "ErrImageNeverPull", msg) in rec_events.events and engine.pulls == []
    engine.present.add("localhost/gone:1")  # loaded meanwhile (jobplane images load)
    await clock.advance(10.0)
    await _settle()
    assert task.result() is True


async def test_latest_is_always_pulled_and_invalid_names_wait(tmp_path):
    clock = FakeClock()
    engine = FakeEngine({"busybox"}, {"docker.io/library/busybox:latest"})
    worker, _, cspec = _worker(tmp_path, "busybox", engine, clock)
    assert await worker._ensure_image(worker.app[0], cspec) is True
    assert engine.pulls == [("docker.io/library/busybox:latest", None)]

    worker, rec_events, cspec = _worker(tmp_path, "Bad Name", engine, clock)
    task = asyncio.ensure_future(worker._ensure_image(worker.app[0], cspec))
    await _settle()
    assert worker.app[0].state["waiting"]["reason"] == "InvalidImageName"
    assert rec_events.events[0][:2] == ("Warning", "InspectFailed")
    worker.stop(0)
    await clock.advance(10.0)
    await _settle()
    assert task.result() is False


async def test_pull_secrets_become_one_registry_auth(tmp_path):
    import base64
    import json

    clock = FakeClock()
    engine = FakeEngine(set(), {"registry.example.com/app:1"})
    worker, _, cspec = _worker(tmp_path, "registry.example.com/app:1", engine, clock)
    worker.pod["spec"]["imagePullSecrets"] = [{"name": "regcred"}, {"name": "missing"}]
    doc = {"auths": {"registry.example.com": {"auth": "dTpw"}}}
    worker.client.add("secrets", {"metadata": {"name": "regcred", "namespace": "default"},
                                  "type": "kubernetes.io/dockerconfigjson",
                                  "data": {".dockerconfigjson": base64.b64encode(json.dumps(doc).encode()).decode()}})
    assert await worker._ensure_image(worker.app[0], cspec) is True
    assert engine.pulls == [("registry.example.com/app:1", doc)]


async def test_a_pod_stopped_during_a_pull_stops_waiting_for_it(tmp_path):
    clock = FakeClock()
    cancelled = asyncio.Event()

    class SlowEngine(FakeEngine):
        async def pull(self, image: str, auth: dict[str, Any] | None = None) -> str:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return "never"

    worker, _, cspec = _worker(tmp_path, "registry.example.com/big:1", SlowEngine(set(), set()), clock)
    task = asyncio.ensure_future(worker._ensure_image(worker.app[0], cspec))
    await _settle()
    assert not task.done()
    worker.stop(0)
    await _settle()
    assert task.done() and task.result() is False and cancelled.is_set()
