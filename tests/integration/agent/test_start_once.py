"""A container run starts at most once, whatever dies around its start.

The fault harness found an index run twice: the supervisor was killed after forking a
container's waiter but before that waiter had spawned the container and written
``pid.json``; the agent's retried start, through a new supervisor, spawned it again. The
waiter now claims the run (``claim_run``) before it spawns, and a retried start waits on
a live claim instead of spawning."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import subprocess
import time

import pytest

from jobplane.agent import supervisor
from jobplane.agent.runtime import HostProcessRuntime, ProcessSpec
from jobplane.clock import Clock


def _spec(tmp_path, marks) -> dict:
    return {"argv": ["sh", "-c", f"echo ran >> {marks}"], "executable": "/bin/sh", "env": {"PATH": "/usr/bin:/bin"},
            "cwd": str(tmp_path), "sandbox": False, "state_dir": str(tmp_path / "run"),
            "log": str(tmp_path / "logs" / "0.log"), "done": str(tmp_path / "logs" / "0.done")}


def _gone(pid: int) -> bool:
    """Exited (a zombie of a parent that does not reap counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


def _wait(cond, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_start_retried_while_the_first_waiter_is_spawning_runs_once(tmp_path):
    """Supervisor 1 forks the waiter, which is held just before it spawns; supervisor 1 is
    killed (-9); the agent's retried start reaches supervisor 2. Only one run happens."""
    marks = tmp_path / "marks"
    spec = _spec(tmp_path, marks)
    gate_r, gate_w = os.pipe()
    reached_r, reached_w = os.pipe()
    sup1 = os.fork()
    if sup1 == 0:  # pragma: no cover - "supervisor 1", killed below
        try:
            real_spawn, real_close = supervisor._spawn, supervisor._close_fds_except

            def held_spawn(*args):
                os.write(reached_w, b"x")
                os.read(gate_r, 1)
                return real_spawn(*args)

            supervisor._spawn = held_spawn
            supervisor._close_fds_except = lambda keep: real_close({*keep, gate_r, reached_w})
            lifeline_r, _lifeline_w = os.pipe()
            supervisor.start_container(dict(spec), lifeline_r)
        finally:
            os._exit(0)
    assert os.read(reached_r, 1) == b"x"  # the first waiter is about to spawn
    waiter1 = supervisor.children(sup1)[0]
    os.kill(sup1, signal.SIGKILL)
    os.waitpid(sup1, 0)

    lifeline_r, lifeline_w = os.pipe()  # "supervisor 2": this process
    second = None
    try:
        second = supervisor.start_container(dict(spec), lifeline_r)
    except supervisor.RunClaimed:
        pass
    os.write(gate_w, b"go")
    _wait(lambda: _gone(waiter1), "the first waiter ends")
    if second is not None:
        _wait(lambda: _gone(second.waiter), "the second waiter ends")
        os.waitpid(second.waiter, 0)
    os.close(lifeline_w)
    assert marks.read_text().splitlines() == ["ran"]
    started = json.loads((tmp_path / "run" / supervisor.PID_FILE).read_text())
    assert json.loads((tmp_path / "run" / supervisor.EXIT_FILE).read_text())["exitCode"] == 0
    assert second is None, f"the retried start spawned a second run (first {started['pid']}, second {second.pid})"


@pytest.fixture
async def rt(tmp_path):
    runtime = HostProcessRuntime(Clock(), data_dir=tmp_path / "data", poll_interval=0.05, cgroup_root=None)
    yield runtime
    await runtime.close()


def _process_spec(tmp_path, marks) -> ProcessSpec:
    return ProcessSpec(argv=["sh", "-c", f"echo ran >> {marks}"], executable="/bin/sh",
                       env={"PATH": "/usr/bin:/bin"}, cwd=str(tmp_path), state_dir=tmp_path / "run",
                       log_path=tmp_path / "logs" / "0.log", done_path=tmp_path / "logs" / "0.done")


def _hold_claim(state_dir, kind: str) -> int:
    """What a live waiter of an earlier request holds: its run directory, flock-ed; or, a
    waiter of an older supervisor, the run's ``claim`` file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    if kind == "directory":
        fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY)
    else:
        fd = os.open(state_dir / supervisor.CLAIM_FILE, os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


CLAIM_KINDS = pytest.mark.parametrize("kind", ["directory", "legacy file"])


@CLAIM_KINDS
def test_a_held_claim_is_seen_and_refuses_a_second_claim(tmp_path, kind):
    state = tmp_path / "run"
    claim = _hold_claim(state, kind)
    try:
        assert supervisor.claim_held(str(state))
        with pytest.raises(supervisor.RunClaimed):
            supervisor.claim_run(str(state))
    finally:
        os.close(claim)
    assert not supervisor.claim_held(str(state))
    mine = supervisor.claim_run(str(state))
    try:
        assert supervisor.claim_held(str(state))
    finally:
        os.close(mine)


@CLAIM_KINDS
async def test_a_start_meeting_a_live_claim_adopts_what_that_waiter_started(tmp_path, rt, kind):
    marks = tmp_path / "marks"
    claim = _hold_claim(tmp_path / "run", kind)
    start = asyncio.ensure_future(rt.start(_process_spec(tmp_path, marks)))
    first = subprocess.Popen(["sh", "-c", f"echo ran >> {marks}; exit 4"])  # the earlier waiter's container
    supervisor.write_record(str(tmp_path / "run" / supervisor.PID_FILE),
                            {"pid": first.pid, "start": supervisor.proc_start_time(first.pid),
                             "startedAt": time.time()})
    handle = await asyncio.wait_for(start, 30)
    assert handle.pid == first.pid
    await asyncio.to_thread(first.wait)
    supervisor.write_exit_record(str(tmp_path / "run"), {"exitCode": 4, "finishedAt": time.time()})
    os.close(claim)  # that waiter ends
    assert (await asyncio.wait_for(handle.wait(), 30)).exit_code == 4
    assert marks.read_text().splitlines() == ["ran"]


@CLAIM_KINDS
async def test_a_claim_whose_waiter_died_before_spawning_is_taken_over(tmp_path, rt, kind):
    marks = tmp_path / "marks"
    claim = _hold_claim(tmp_path / "run", kind)
    start = asyncio.ensure_future(rt.start(_process_spec(tmp_path, marks)))
    await asyncio.sleep(0)
    os.close(claim)  # the earlier waiter was killed before it spawned anything
    handle = await asyncio.wait_for(start, 30)
    assert (await asyncio.wait_for(handle.wait(), 30)).exit_code == 0
    assert marks.read_text().splitlines() == ["ran"]
    # and a start retried after this one finished does not run it again
    again = await rt.start(_process_spec(tmp_path, marks))
    assert (await again.wait()).exit_code == 0
    assert marks.read_text().splitlines() == ["ran"]
