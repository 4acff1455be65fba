"""The pods/log subresource: container choice, CRI parsing and the log options."""

from __future__ import annotations

import asyncio

import pytest

from jobplane import podlogs
from jobplane.api import errors
from jobplane.apiserver.logs import LogOptions, resolve_target, select_lines, stream_log

LINES = [
    b"2024-01-02T03:04:05.000000001Z stdout F one\n",
    b"2024-01-02T03:04:06.000000000Z stderr F two\n",
    b"2024-01-02T03:04:07.000000000Z stdout P thr\n",
    b"2024-01-02T03:04:07.500000000Z stdout F ee\n",
]
T7 = 1704164647.0  # 2024-01-02T03:04:07Z


def pod(containers=("c",), statuses=None, name="p"):
    return {"metadata": {"name": name, "uid": "u1"},
            "spec": {"containers": [{"name": c} for c in containers]},
            "status": {"containerStatuses": statuses if statuses is not None else [
                {"name": c, "restartCount": 0, "state": {"running": {}}} for c in containers]}}


def test_container_choice():
    assert resolve_target(pod(), LogOptions()).container == "c"
    with pytest.raises(errors.StatusError) as exc:
        resolve_target(pod(("a", "b")), LogOptions())
    assert exc.value.message == "a container name must be specified for pod p, choose one of: [a b]"
    assert resolve_target(pod(("a", "b")), LogOptions(container="b")).container == "b"


def test_waiting_and_previous():
    p = pod(statuses=[{"name": "c", "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}])
    with pytest.raises(errors.StatusError) as exc:
        resolve_target(p, LogOptions())
    assert (exc.value.code, exc.value.message) == (400, 'container "c" in pod "p" is waiting to start: ContainerCreating')
    p = pod(statuses=[])
    with pytest.raises(errors.StatusError):
        resolve_target(p, LogOptions())
    p = pod(statuses=[{"name": "c", "restartCount": 2, "state": {"running": {}},
                       "lastState": {"terminated": {"exitCode": 1}}}])
    assert resolve_target(p, LogOptions(previous=True)).restart_count == 1
    with pytest.raises(errors.StatusError):
        resolve_target(pod(), LogOptions(previous=True))


def test_select_lines_options():
    assert b"".join(select_lines(LINES, LogOptions(), 0)) == b"one\ntwo\nthree\n"
    assert select_lines(LINES, LogOptions(tail_lines=1), 0) == [b"ee\n"]
    stamped = select_lines(LINES[:1], LogOptions(timestamps=True), 0)
    assert stamped == [b"2024-01-02T03:04:05.000000001Z one\n"]
    assert b"".join(select_lines(LINES, LogOptions(since_seconds=1), T7 + 0.1)) == b"three\n"


async def test_stream_log_follow_until_done(tmp_path):
    path = podlogs.log_path(tmp_path, "u1", "c", 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(LINES[0])

    async def exists() -> bool:
        return True

    async def writer():
        await asyncio.sleep(0.2)
        with open(path, "ab") as fh:
            fh.write(LINES[1])
        podlogs.done_marker(tmp_path, "u1", "c", 0).touch()

    task = asyncio.create_task(writer())
    chunks = [c async for c in stream_log(tmp_path, pod(), LogOptions(follow=True), 0, exists)]
    await task
    assert b"".join(chunks) == b"one\ntwo\n"
    limited = [c async for c in stream_log(tmp_path, pod(), LogOptions(limit_bytes=5), 0, exists)]
    assert b"".join(limited) == b"one\nt"


async def test_stream_log_follow_stops_when_pod_gone(tmp_path):
    path = podlogs.log_path(tmp_path, "u1", "c", 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(LINES[0])

    async def gone() -> bool:
        return False

    chunks = [c async for c in stream_log(tmp_path, pod(), LogOptions(follow=True), 0, gone)]
    assert chunks == [b"one\n"]
