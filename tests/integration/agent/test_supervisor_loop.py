"""The node supervisor's loop waits for a waiter's start reply as for any other event.

Each test runs a real ``Supervisor`` loop in a forked child (patched there, where a test needs
a waiter held or an ordering forced) and talks its line protocol over the unix socket."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jobplane.agent import supervisor


def _spec(tmp_path: Path, name: str, script: str) -> dict[str, Any]:
    return {"argv": ["sh", "-c", script], "executable": "/bin/sh", "env": {"PATH": "/usr/bin:/bin"},
            "cwd": str(tmp_path), "sandbox": False, "state_dir": str(tmp_path / name / "run"),
            "log": str(tmp_path / name / "logs" / "0.log"), "done": str(tmp_path / name / "logs" / "0.done")}


@contextlib.contextmanager
def _supervisor(tmp_path: Path, patch: Callable[[], None]) -> Iterator[Any]:
    """A supervisor loop in a child process (``patch`` runs there first); yields a line
    reader/writer on a connection to it, the ``hello`` already read."""
    path = str(tmp_path / "sup.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the supervisor
        try:
            patch()
            supervisor.Supervisor(listener).run()
        finally:
            os._exit(0)
    listener.close()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(10)
    conn.connect(path)
    stream = conn.makefile("rwb")
    try:
        assert json.loads(stream.readline())["op"] == "hello"
        yield stream
    finally:
        stream.close()
        conn.close()
        deadline = time.monotonic() + 10
        while os.waitpid(pid, os.WNOHANG) == (0, 0):  # no agent and no container left: the loop returns
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError("the supervisor's loop did not return")
            time.sleep(0.02)


def _send(stream: Any, msg: dict[str, Any]) -> None:
    stream.write(json.dumps(msg).encode() + b"\n")
    stream.flush()


def test_a_start_whose_waiter_is_slow_holds_up_no_other_start(tmp_path):
    """The first start's waiter is held before it spawns; the second container is started,
    runs and is reported ended meanwhile (a blocking read of the first reply would hold the
    second request unread until the first waiter answered)."""
    gate_r, gate_w = os.pipe()

    def hold_the_first() -> None:
        real_spawn, real_close = supervisor._spawn, supervisor._close_fds_except

        def spawn(spec: dict[str, Any], *args: Any) -> int:
            if "/held/" in spec["state_dir"]:
                os.read(gate_r, 1)
            return real_spawn(spec, *args)

        supervisor._spawn = spawn
        supervisor._close_fds_except = lambda keep: real_close({*keep, gate_r})

    try:
        with _supervisor(tmp_path, hold_the_first) as stream:
            _send(stream, {"op": "start", "id": 1, **_spec(tmp_path, "held", "exit 4")})
            _send(stream, {"op": "start", "id": 2, **_spec(tmp_path, "quick", "exit 5")})
            first = [json.loads(stream.readline()) for _ in range(2)]
            assert first[0]["id"] == 2 and first[1]["op"] == "exit" and first[1]["pid"] == first[0]["pid"]
            assert first[1]["exit"]["exitCode"] == 5
            os.write(gate_w, b"go")
            then = [json.loads(stream.readline()) for _ in range(2)]
            assert then[0]["id"] == 1 and then[1]["op"] == "exit" and then[1]["pid"] == then[0]["pid"]
            assert then[1]["exit"]["exitCode"] == 4
    finally:
        os.close(gate_w)  # a held waiter goes on (and ends) whatever failed


def test_a_container_ended_before_its_reply_was_read_is_reported_started_then_ended(tmp_path):
    """The waiter's start reply and its ``done`` (the container ran and ended) both wait on
    its channel when the loop first reads it: the reply still goes out first, then the exit
    with the exit code the waiter recorded."""

    def read_late() -> None:
        real = supervisor.Supervisor._on_waiter

        def on_waiter(self: supervisor.Supervisor, proc: supervisor.WaiterProc, mask: int) -> None:
            if isinstance(proc.job, supervisor.Starting):
                deadline = time.monotonic() + 10
                while b'"done"' not in _peek(proc.chan):
                    assert time.monotonic() < deadline, "the waiter never said done"
                    time.sleep(0.005)
            real(self, proc, mask)

        supervisor.Supervisor._on_waiter = on_waiter  # type: ignore[method-assign]

    with _supervisor(tmp_path, read_late) as stream:
        _send(stream, {"op": "start", "id": 7, **_spec(tmp_path, "c", "exit 3")})
        reply, ended = json.loads(stream.readline()), json.loads(stream.readline())
        assert reply["id"] == 7 and "error" not in reply
        assert ended["op"] == "exit" and ended["pid"] == reply["pid"] and ended["exit"]["exitCode"] == 3
    assert (tmp_path / "c" / "logs" / "0.done").exists()


def _peek(chan: socket.socket) -> bytes:
    try:
        return chan.recv(1 << 16, socket.MSG_PEEK)
    except BlockingIOError:
        return b""


def _a_parent(pids: set[int]) -> int:
    """The parent of whichever of ``pids`` still lives (at least one does)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            return _parent(pid)
    raise AssertionError(f"none of {pids} lives")


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])


def test_a_waiter_runs_the_next_container_once_its_first_has_ended(tmp_path):
    """Waiters are kept between containers: the second container's parent is the first's."""
    with _supervisor(tmp_path, lambda: None) as stream:
        parents = []
        for i, code in enumerate((3, 4)):
            _send(stream, {"op": "start", "id": i, **_spec(tmp_path, f"c{i}", f'echo "$PPID"; exit {code}')})
            reply, ended = json.loads(stream.readline()), json.loads(stream.readline())
            assert ended["op"] == "exit" and ended["pid"] == reply["pid"] and ended["exit"]["exitCode"] == code
            log = (tmp_path / f"c{i}" / "logs" / "0.log").read_text()
            parents.append(int(log.split()[-1]))
            assert (tmp_path / f"c{i}" / "logs" / "0.done").exists()
        assert parents[0] == parents[1] != os.getpid()


def test_a_killed_waiter_is_not_used_again_and_its_container_is_reported(tmp_path):
    """A waiter killed while its container runs: the container is reported ended (its exit
    code unknown) once its output has drained, and the next start gets a new waiter."""
    with _supervisor(tmp_path, lambda: None) as stream:
        _send(stream, {"op": "start", "id": 1, **_spec(tmp_path, "a", "exec sleep 30")})
        reply = json.loads(stream.readline())
        waiter = _parent(reply["pid"])
        os.kill(waiter, signal.SIGKILL)
        os.kill(reply["pid"], signal.SIGKILL)  # now nobody's child but init's: nothing records its end
        ended = json.loads(stream.readline())
        assert ended["op"] == "exit" and ended["pid"] == reply["pid"]
        assert ended["exit"]["reason"] == "ContainerStatusUnknown"
        _send(stream, {"op": "start", "id": 2, **_spec(tmp_path, "b", 'echo "$PPID"; exit 6')})
        reply2, ended2 = json.loads(stream.readline()), json.loads(stream.readline())
        assert ended2["pid"] == reply2["pid"] and ended2["exit"]["exitCode"] == 6
        assert int((tmp_path / "b" / "logs" / "0.log").read_text().split()[-1]) != waiter


def test_waiters_left_idle_by_a_burst_are_let_go_down_to_the_few_kept(tmp_path):
    """Three containers at once need three waiters; once they have been idle a while, the
    supervisor keeps only KEEP_WAITERS of them (here 1)."""

    def expire_at_once() -> None:
        supervisor.IDLE_WAITER_SECONDS = 0.0
        supervisor.KEEP_WAITERS = 1

    with _supervisor(tmp_path, expire_at_once) as stream:
        for i in range(3):
            _send(stream, {"op": "start", "id": i, **_spec(tmp_path, f"c{i}", 'echo "$PPID"; sleep 1')})
        lines = [json.loads(stream.readline()) for _ in range(6)]
        replies = [m for m in lines if "id" in m]
        ended = [m for m in lines if m.get("op") == "exit"]
        assert {e["pid"] for e in ended} == {r["pid"] for r in replies} and len(replies) == 3
        waiters = {int((tmp_path / f"c{i}" / "logs" / "0.log").read_text().split()[-1]) for i in range(3)}
        assert len(waiters) == 3
        sup = _a_parent(waiters)
        deadline = time.monotonic() + 10
        while len(supervisor.children(sup)) != 1:
            assert time.monotonic() < deadline, f"waiters left: {supervisor.children(sup)}"
            time.sleep(0.02)
        assert set(supervisor.children(sup)) < waiters
