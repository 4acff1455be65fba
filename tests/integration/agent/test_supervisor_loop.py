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
    """The waiter is reaped (the container ran and ended) before the loop reads its start
    reply: the reply still comes first, then the exit with the exit code the waiter recorded."""

    def reap_before_the_reply() -> None:
        real = supervisor.Supervisor._on_reply

        def on_reply(self: supervisor.Supervisor, start: supervisor.Starting, mask: int) -> None:
            os.waitid(os.P_PID, start.waiter, os.WEXITED | os.WNOWAIT)  # the waiter has ended, not reaped
            self._reap_children()
            assert start.status is not None
            real(self, start, mask)

        supervisor.Supervisor._on_reply = on_reply  # type: ignore[method-assign]

    with _supervisor(tmp_path, reap_before_the_reply) as stream:
        _send(stream, {"op": "start", "id": 7, **_spec(tmp_path, "c", "exit 3")})
        reply, ended = json.loads(stream.readline()), json.loads(stream.readline())
        assert reply["id"] == 7 and "error" not in reply
        assert ended["op"] == "exit" and ended["pid"] == reply["pid"] and ended["exit"]["exitCode"] == 3
    assert (tmp_path / "c" / "logs" / "0.done").exists()
