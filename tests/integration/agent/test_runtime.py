"""Real short processes through the node supervisor and the host-process runtime."""

import asyncio
import os
import re
import signal
import sys
import time
from dataclasses import replace

import pytest

from jobplane.agent.runtime import HostProcessRuntime, ProcessSpec, proc_start_time, terminate
from jobplane.clock import Clock

CRI = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] ")


@pytest.fixture
async def rt(tmp_path):
    runtime = HostProcessRuntime(Clock(), data_dir=tmp_path / "data", poll_interval=0.05, cgroup_root=None)
    yield runtime
    await runtime.close()


def spec(tmp_path, argv, exe, **kw):
    return ProcessSpec(argv=argv, executable=exe, env={"PATH": "/usr/bin:/bin", "X": "1"}, cwd=str(tmp_path),
                       state_dir=tmp_path / "run", log_path=tmp_path / "logs" / "0.log",
                       done_path=tmp_path / "logs" / "0.done", **kw)


async def test_exit_codes_and_logs(tmp_path, rt):
    h = await rt.start(spec(tmp_path, ["sh", "-c", "echo out; echo err >&2; printf tail; exit 3"], "/bin/sh"))
    info = await h.wait()
    assert info.exit_code == 3
    lines = (tmp_path / "logs" / "0.log").read_text().splitlines()
    assert all(CRI.match(line) for line in lines)
    texts = sorted(line.split(" ", 3)[1:] for line in lines)
    assert ["stderr", "F", "err"] in texts and ["stdout", "F", "out"] in texts and ["stdout", "F", "tail"] in texts
    assert (tmp_path / "logs" / "0.done").exists()


async def test_env_and_cwd(tmp_path, rt):
    h = await rt.start(spec(tmp_path, ["sh", "-c", 'echo "$X $(pwd)"'], "/bin/sh"))
    assert (await h.wait()).exit_code == 0
    assert (tmp_path / "logs" / "0.log").read_text().split(" ", 3)[3].strip() == f"1 {tmp_path}"


async def test_terminate_sigterm_then_sigkill(tmp_path, rt):
    h = await rt.start(spec(tmp_path, ["sleep", "30"], "/bin/sleep"))
    await asyncio.sleep(0.2)
    info = await terminate(h, 5, Clock())
    assert info.exit_code == 128 + signal.SIGTERM and info.signal == signal.SIGTERM  # the supervisor reaped it

    second = replace(spec(tmp_path, ["sh", "-c", "trap '' TERM; sleep 30 & wait; sleep 30"], "/bin/sh"),
                     state_dir=tmp_path / "run2")  # a run directory serves one run
    h = await rt.start(second)
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    info = await terminate(h, 0.3, Clock())
    assert time.monotonic() - t0 < 1.5
    assert info.exit_code == 137


async def test_memory_limit_rlimit(tmp_path):
    rt = HostProcessRuntime(Clock(), data_dir=tmp_path / "data")
    rt.cgroup_root = None  # force the RLIMIT_AS path
    code = "x = bytearray(512 * 1024 * 1024)"
    h = await rt.start(spec(tmp_path, [sys.executable, "-c", code], sys.executable, memory_limit=256 * 2**20))
    info = await h.wait()
    assert info.exit_code == 137 and info.reason == "OOMKilled"
    await rt.close()


async def test_start_error_is_an_oserror_with_done_marker(tmp_path, rt):
    not_executable = tmp_path / "not-executable"
    not_executable.touch()
    with pytest.raises(OSError, match="Permission denied"):
        await rt.start(spec(tmp_path, ["x"], str(not_executable)))
    assert (tmp_path / "logs" / "0.done").exists() and (tmp_path / "logs" / "0.log").read_text() == ""


async def test_main_exit_kills_the_rest_of_its_group(tmp_path, rt):
    h = await rt.start(spec(tmp_path, ["sh", "-c", "sleep 30 & echo $! > bg; exit 7"], "/bin/sh"))
    assert (await asyncio.wait_for(h.wait(), 5)).exit_code == 7
    bg = int((tmp_path / "bg").read_text())
    for _ in range(50):
        if proc_start_time(bg) is None:
            break
        await asyncio.sleep(0.02)
    assert proc_start_time(bg) is None  # killed, and reaped by the supervisor


async def test_exit_is_reported_when_the_killed_group_lets_go_of_the_pipes(tmp_path, rt):
    """The waiter wakes on the pipes' hang-up once the rest of the group is killed, not on a
    timer: its exit is what tells the supervisor (and the pod's status) the container ended."""
    took = []
    for i in range(8):
        run = replace(spec(tmp_path, ["sh", "-c", "sleep 30 & exit 0"], "/bin/sh"), state_dir=tmp_path / f"run{i}",
                      log_path=tmp_path / "logs" / f"{i}.log", done_path=tmp_path / "logs" / f"{i}.done")
        h = await rt.start(run)
        t0 = time.monotonic()
        assert (await asyncio.wait_for(h.wait(), 5)).exit_code == 0
        took.append(time.monotonic() - t0)
    assert sorted(took)[len(took) // 2] < 0.018  # the waiter's drain timer alone was 20 ms


async def test_adopt_after_agent_restart(tmp_path, rt):
    """A new runtime (a restarted agent) reconnects to the running supervisor: a running
    container's exit arrives as a notification, a finished one reads its exit file."""
    running = await rt.start(spec(tmp_path, ["sh", "-c", "sleep 0.5; exit 5"], "/bin/sh"))
    s2 = spec(tmp_path / "b", ["sh", "-c", "exit 3"], "/bin/sh")
    (tmp_path / "b").mkdir()
    finished = await rt.start(s2)
    assert (await finished.wait()).exit_code == 3
    sup_pid = rt.supervisor.pid
    await rt.close()  # the agent goes away; the supervisor keeps the container

    rt2 = HostProcessRuntime(Clock(), data_dir=tmp_path / "data", poll_interval=10, cgroup_root=None)
    try:
        await rt2.prepare()
        assert rt2.supervisor.pid == sup_pid
        adopted = rt2.adopt(running.pid, running.pid_start, tmp_path / "run", tmp_path / "logs" / "0.done")
        t0 = time.monotonic()
        info = await asyncio.wait_for(adopted.wait(), 5)
        assert info.exit_code == 5 and time.monotonic() - t0 < 2  # notified, not polled (poll is 10 s)
        done = rt2.adopt(finished.pid, finished.pid_start, s2.state_dir, s2.done_path)
        assert (await done.wait()).exit_code == 3
        # gone without an exit file: nothing to adopt
        (s2.state_dir / "exit.json").unlink()
        assert rt2.adopt(finished.pid, finished.pid_start, s2.state_dir, s2.done_path) is None
    finally:
        await rt2.close()


async def test_supervisor_outlives_agent_and_exits_when_idle(tmp_path, rt):
    h = await rt.start(spec(tmp_path, ["sleep", "0.3"], "/bin/sleep"))
    sup_pid = rt.supervisor.pid
    await rt.close()
    assert proc_start_time(sup_pid) is not None and proc_start_time(h.pid) is not None
    for _ in range(200):  # the container ends, no agent is connected: the supervisor exits
        if proc_start_time(sup_pid) is None:
            break
        await asyncio.sleep(0.02)
    assert proc_start_time(sup_pid) is None
    assert (tmp_path / "run" / "exit.json").exists() and (tmp_path / "logs" / "0.done").exists()
    assert not (tmp_path / "data" / "supervisor.sock").exists()


async def test_killed_supervisor_loses_neither_exit_code_nor_output(tmp_path, rt):
    """kill -9 of the supervisor: the container's waiter still records its real exit code
    and takes over its log (a megabyte written afterwards arrives whole, no SIGPIPE)."""
    script = "echo before; sleep 0.5; head -c 1000000 /dev/zero | tr '\\0' x; echo; echo after; exit 3"
    h = await rt.start(spec(tmp_path, ["sh", "-c", script], "/bin/sh"))
    await asyncio.sleep(0.2)
    os.kill(rt.supervisor.pid, signal.SIGKILL)
    info = await asyncio.wait_for(h.wait(), 10)
    assert info.exit_code == 3 and info.reason is None
    for _ in range(100):
        if (tmp_path / "logs" / "0.done").exists():
            break
        await asyncio.sleep(0.05)
    texts = [line.split(" ", 3)[3] for line in (tmp_path / "logs" / "0.log").read_text().splitlines()]
    assert texts[0] == "before" and texts[-1] == "after"
    assert sum(len(t) for t in texts if set(t) == {"x"}) == 1_000_000
    # the next start brings up a new supervisor
    (tmp_path / "c").mkdir()
    h2 = await rt.start(spec(tmp_path / "c", ["true"], "/bin/true"))
    assert (await h2.wait()).exit_code == 0


async def test_many_parallel_starts(tmp_path, rt):
    specs = []
    for i in range(40):
        d = tmp_path / f"p{i}"
        d.mkdir()
        specs.append(spec(d, ["sh", "-c", f"echo {i}; exit {i % 3}"], "/bin/sh"))
    handles = await asyncio.gather(*(rt.start(s) for s in specs))
    infos = await asyncio.gather(*(h.wait() for h in handles))
    assert [i.exit_code for i in infos] == [i % 3 for i in range(40)]
    assert all(s.log_path.read_text().endswith(f"stdout F {i}\n") for i, s in enumerate(specs))
