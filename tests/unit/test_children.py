"""The server's child-process supervision (``jobplane.children``): back-off decisions, and
real child processes that crash, ignore SIGTERM or lose their parent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jobplane.children import RestartBackoff, SupervisedChild
from proctools import alive

# A child as the server's: the configuration line first, then stdin watched for the parent.
CHILD = textwrap.dedent("""
    import asyncio, os, signal, sys
    from pathlib import Path
    from jobplane.children import signal_ready, watch_parent

    cfg = sys.stdin.buffer.readline().decode().split()
    out = Path(cfg[0])
    if "ignore-term" in cfg:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with out.open("a") as f:
        f.write(f"{os.getpid()}\\n")
    if "never-ready" not in cfg:
        signal_ready()
    asyncio.run(watch_parent())
    with out.open("a") as f:
        f.write("parent-gone\\n")
""")


def test_backoff_doubles_to_its_cap_and_resets_after_a_stable_run():
    b = RestartBackoff(base=0.5, cap=4.0, stable=60.0)
    delays = []
    previous = None
    for _ in range(6):
        previous = b.next_delay(previous, ran_for=1.0)
        delays.append(previous)
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.next_delay(4.0, ran_for=61.0) == 0.5  # a crash after a long run is a new incident


def _child(tmp_path: Path, *extra: str, **kwargs) -> tuple[SupervisedChild, Path]:
    out = tmp_path / "pids"
    config = " ".join([str(out), *extra]).encode()
    child = SupervisedChild("test", [sys.executable, "-c", CHILD], config,
                            backoff=RestartBackoff(base=0.05, cap=0.2), **kwargs)
    return child, out


async def _lines(path: Path, count: int, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path}: fewer than {count} lines: {path.read_text() if path.exists() else ''!r}")




async def test_a_crashed_child_is_restarted(tmp_path):
    child, out = _child(tmp_path)
    await child.start()
    try:
        first = int((await _lines(out, 1))[0])
        assert child.pid == first
        os.kill(first, signal.SIGKILL)
        second = int((await _lines(out, 2))[1])
        assert second != first and alive(second)
        assert child.restarts == 1 and child.exits == [-signal.SIGKILL]
        assert child.pid == second
    finally:
        await child.stop()
    assert not alive(second)


async def test_stop_sends_sigterm_then_kills_a_child_that_stays(tmp_path):
    child, out = _child(tmp_path, "ignore-term", term_timeout=0.5)
    await child.start()
    pid = int((await _lines(out, 1))[0])
    t = time.monotonic()
    code = await child.stop()
    assert code == -signal.SIGKILL and 0.4 < time.monotonic() - t < 5
    assert not alive(pid)
    assert child.restarts == 0  # a stopped child is not restarted
    await asyncio.sleep(0.3)
    assert len(out.read_text().split()) == 1


async def test_start_waits_for_the_child_to_say_ready(tmp_path):
    child, out = _child(tmp_path, ready_timeout=20.0)
    try:
        assert await child.start() is True
        assert out.read_text().split()  # it had started its work when it said so
    finally:
        await child.stop()
    slow, _ = _child(tmp_path, "never-ready", ready_timeout=0.3)
    try:
        assert await slow.start() is False
        assert slow.pid is not None  # still running: readiness is the parent's wait, not a verdict
    finally:
        await slow.stop()


async def test_stop_ends_a_child_that_obeys_sigterm_at_once(tmp_path):
    child, out = _child(tmp_path, term_timeout=10.0)
    await child.start()
    await _lines(out, 1)
    t = time.monotonic()
    assert await child.stop() == -signal.SIGTERM
    assert time.monotonic() - t < 5


@pytest.mark.timeout(60)
def test_the_child_stops_when_its_parent_dies(tmp_path):
    """SIGKILL of the server (the parent) closes the child's stdin: the child notices."""
    out = tmp_path / "pids"
    parent = textwrap.dedent(f"""
        import asyncio, sys
        from jobplane.children import SupervisedChild

        async def main():
            child = SupervisedChild("test", [sys.executable, "-c", {CHILD!r}], {str(out).encode()!r})
            await child.start()
            await asyncio.Event().wait()
        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent])
    try:
        deadline = time.monotonic() + 30
        while not (out.exists() and out.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(out.read_text().split()[0])
        proc.kill()
        proc.wait()
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid)
        assert out.read_text().split()[-1] == "parent-gone"
    finally:
        proc.kill()
