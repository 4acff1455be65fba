"""Real short processes through the shim and the host-process runtime."""

import asyncio
import json
import re
import signal
import sys
import time

from jobplane.agent.runtime import HostProcessRuntime, ProcessSpec, proc_start_time, terminate
from jobplane.clock import Clock

CRI = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] ")


def spec(tmp_path, argv, exe, **kw):
    return ProcessSpec(argv=argv, executable=exe, env={"PATH": "/usr/bin:/bin", "X": "1"}, cwd=str(tmp_path),
                       state_dir=tmp_path / "run", log_path=tmp_path / "logs" / "0.log",
                       done_path=tmp_path / "logs" / "0.done", **kw)


async def test_exit_codes_and_logs(tmp_path):
    rt = HostProcessRuntime(Clock(), cgroup_root=None)
    h = await rt.start(spec(tmp_path, ["sh", "-c", "echo out; echo err >&2; printf tail; exit 3"], "/bin/sh"))
    info = await h.wait()
    assert info.exit_code == 3
    lines = (tmp_path / "logs" / "0.log").read_text().splitlines()
    assert all(CRI.match(line) for line in lines)
    texts = sorted(line.split(" ", 3)[1:] for line in lines)
    assert ["stderr", "F", "err"] in texts and ["stdout", "F", "out"] in texts and ["stdout", "F", "tail"] in texts
    assert (tmp_path / "logs" / "0.done").exists()


async def test_env_and_cwd(tmp_path):
    rt = HostProcessRuntime(Clock(), cgroup_root=None)
    h = await rt.start(spec(tmp_path, ["sh", "-c", 'echo "$X $(pwd)"'], "/bin/sh"))
    assert (await h.wait()).exit_code == 0
    assert (tmp_path / "logs" / "0.log").read_text().split(" ", 3)[3].strip() == f"1 {tmp_path}"


async def test_terminate_sigterm_then_sigkill(tmp_path):
    rt = HostProcessRuntime(Clock(), cgroup_root=None)
    h = await rt.start(spec(tmp_path, ["sleep", "30"], "/bin/sleep"))
    await asyncio.sleep(0.2)
    info = await terminate(h, 5, Clock())
    assert info.exit_code == 128 + signal.SIGTERM  # sleep dies of SIGTERM; the shim records it

    (tmp_path / "run").mkdir(exist_ok=True)
    h = await rt.start(spec(tmp_path, ["sh", "-c", "trap '' TERM; sleep 30 & wait; sleep 30"], "/bin/sh"))
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    info = await terminate(h, 0.3, Clock())
    assert time.monotonic() - t0 < 1.5
    assert info.exit_code == 137


async def test_memory_limit_rlimit(tmp_path):
    rt = HostProcessRuntime(Clock(), cgroup_root=None)
    code = "x = bytearray(512 * 1024 * 1024)"
    h = await rt.start(spec(tmp_path, [sys.executable, "-c", code], sys.executable, memory_limit=256 * 2**20))
    info = await h.wait()
    assert info.exit_code == 137 and info.reason == "OOMKilled"


async def test_adopt_running_and_finished(tmp_path):
    rt = HostProcessRuntime(Clock(), poll_interval=0.05, cgroup_root=None)
    h = await rt.start(spec(tmp_path, ["sh", "-c", "sleep 0.4; exit 5"], "/bin/sh"))
    await asyncio.sleep(0.1)
    adopted = rt.adopt(h.pid, proc_start_time(h.pid), tmp_path / "run", tmp_path / "logs" / "0.done")
    assert adopted is not None
    info = await adopted.wait()
    assert info.exit_code == 5
    await h.wait()
    # finished before adoption: the exit file answers
    again = rt.adopt(h.pid, "bogus-start", tmp_path / "run", tmp_path / "logs" / "0.done")
    assert again is not None and (await again.wait()).exit_code == 5
    # gone without an exit file
    (tmp_path / "run" / "exit.json").unlink()
    assert rt.adopt(h.pid, "bogus-start", tmp_path / "run", tmp_path / "logs" / "0.done") is None
    assert json.loads((tmp_path / "run" / "spec.json").read_text())["argv"][0] == "sh"
