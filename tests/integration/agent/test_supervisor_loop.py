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


def _fork_supervisor(tmp_path: Path, patch: Callable[[], None] = lambda: None) -> tuple[int, socket.socket, Any]:
    """A supervisor loop in a child process (``patch`` runs there first): its pid, a
    connection to it and a line reader/writer on that, the ``hello`` already read."""
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
    except BaseException:
        stream.close()
        conn.close()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    return pid, conn, stream


@contextlib.contextmanager
def _supervisor(tmp_path: Path, patch: Callable[[], None]) -> Iterator[Any]:
    """``_fork_supervisor``'s reader/writer; on exit, the connection closed and the loop
    seen to return."""
    pid, conn, stream = _fork_supervisor(tmp_path, patch)
    try:
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
    second request unread until the first waiter answered). One waiter starting at a time
    (PARALLEL_STARTS 1): the second start waits SLOW_START_SECONDS for the first waiter's
    reply, then gets a waiter of its own."""
    gate_r, gate_w = os.pipe()

    def hold_the_first() -> None:
        supervisor.PARALLEL_STARTS = 1
        supervisor.SLOW_START_SECONDS = 0.05
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
            if proc.starts:
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


def test_waiters_left_idle_by_a_burst_are_let_go_down_to_the_few_kept(tmp_path):
    """Three containers at once with one container per waiter need three waiters; once they
    have been idle a while, the supervisor keeps only KEEP_WAITERS of them (here 1)."""

    def expire_at_once() -> None:
        supervisor.IDLE_WAITER_SECONDS = 0.0
        supervisor.KEEP_WAITERS = 1
        supervisor.WAITER_CONTAINERS = 1

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


def _subreaper() -> None:
    """What ``supervisor.main`` makes of the supervisor: the containers of a waiter that dies
    re-parent to it."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(supervisor._PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _wait(cond: Callable[[], Any], what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _texts(log: Path) -> list[str]:
    return [line.split(" ", 3)[3] for line in log.read_text().splitlines()]


def _gated(tmp_path: Path, name: str, lines: int, code: int) -> dict[str, Any]:
    """A container that prints its parent, then ``lines`` numbered lines once its gate file
    exists, then exits with ``code`` (it gives up after 60 s: a failed test leaves nothing
    polling behind)."""
    gate = tmp_path / f"{name}.go"
    script = (f'echo "$PPID"; n=0; while [ ! -e {gate} ]; do n=$((n+1)); [ $n -lt 6000 ] || exit 99; '
              f'sleep 0.01; done; '
              f'i=0; while [ $i -lt {lines} ]; do echo "{name} $i"; i=$((i+1)); done; exit {code}')
    return _spec(tmp_path, name, script)


def _start_each(stream: Any, specs: list[dict[str, Any]]) -> dict[int, int]:
    """Start each spec once the one before has been started (so all go to the one waiter that
    is not starting another); request id (its index) -> container pid."""
    pids = {}
    for i, spec in enumerate(specs):
        _send(stream, {"op": "start", "id": i, **spec})
        reply = json.loads(stream.readline())
        assert reply["id"] == i and "error" not in reply, reply
        pids[i] = reply["pid"]
    return pids


def _waiter_of(tmp_path: Path, name: str) -> int:
    log = tmp_path / name / "logs" / "0.log"
    _wait(lambda: log.exists() and log.read_text().strip(), f"{name} printed its parent")
    return int(_texts(log)[0])


def test_one_waiter_runs_several_containers_and_each_exit_and_output_goes_to_its_own(tmp_path):
    """Three containers started together share one waiter (their parent); they end in
    another order than they started, each with its own exit code, and each one's output
    lands whole in its own log."""
    names = ["a", "b", "c"]
    with _supervisor(tmp_path, lambda: None) as stream:
        pids = _start_each(stream, [_gated(tmp_path, name, 200 + i, 10 + i) for i, name in enumerate(names)])
        assert len({_waiter_of(tmp_path, n) for n in names}) == 1
        for i in (2, 0, 1):  # interleaved: the last started ends first
            (tmp_path / f"{names[i]}.go").touch()
            ended = json.loads(stream.readline())
            assert ended == {"op": "exit", "pid": pids[i], "exit": ended["exit"]}
            assert ended["exit"]["exitCode"] == 10 + i
            assert json.loads((tmp_path / names[i] / "run" / supervisor.EXIT_FILE).read_text())["exitCode"] == 10 + i
            assert (tmp_path / names[i] / "logs" / "0.done").exists()
            assert _texts(tmp_path / names[i] / "logs" / "0.log")[1:] == [f"{names[i]} {k}" for k in range(200 + i)]


def test_an_exit_whose_record_waits_for_disk_space_holds_up_no_other_exit_of_its_waiter(tmp_path):
    """Three containers in one waiter; the first one's exit record cannot be written (the disk
    is full, for it): it stays an unreaped zombie, retried, while the two others end, each
    reported with its own code; once the record can be written, the first is reported too,
    with its code. (A waiter finds exits with ``waitid(P_ALL)``, which names the oldest
    zombie first: a zombie kept back must not hide the later ones.)"""
    names = ["a", "b", "c"]
    full = tmp_path / "disk-full"
    full.touch()
    held_dir = str(tmp_path / "a" / "run")

    def patch() -> None:
        real = supervisor.write_exit_record

        def write_exit_record(state_dir: str, result: dict[str, Any]) -> None:
            if state_dir == held_dir and full.exists():
                raise OSError(28, "No space left on device")
            real(state_dir, result)

        supervisor.write_exit_record = write_exit_record  # type: ignore[assignment]
        supervisor.RECORD_RETRY_SECONDS = 0.05

    with _supervisor(tmp_path, patch) as stream:
        pids = _start_each(stream, [_gated(tmp_path, name, 3, 20 + i) for i, name in enumerate(names)])
        assert len({_waiter_of(tmp_path, n) for n in names}) == 1
        (tmp_path / "a.go").touch()
        _wait(lambda: _state(pids[0]) == "Z", "a is a zombie, its exit not recorded")
        for i in (2, 1):
            (tmp_path / f"{names[i]}.go").touch()
            ended = json.loads(stream.readline())
            assert ended == {"op": "exit", "pid": pids[i], "exit": ended["exit"]}
            assert ended["exit"]["exitCode"] == 20 + i
        assert _state(pids[0]) == "Z" and not (tmp_path / "a" / "run" / supervisor.EXIT_FILE).exists()
        full.unlink()
        ended = json.loads(stream.readline())
        assert ended == {"op": "exit", "pid": pids[0], "exit": ended["exit"]}
        assert ended["exit"]["exitCode"] == 20
        assert json.loads((tmp_path / "a" / "run" / supervisor.EXIT_FILE).read_text())["exitCode"] == 20
        assert supervisor.proc_start_time(pids[0]) is None  # reaped once recorded


def test_a_waiter_killed_with_three_containers_running_leaves_their_exits_to_the_supervisor(tmp_path):
    """kill -9 of a waiter that runs three containers: they re-parent to the supervisor (a
    child subreaper), which records each real exit code in exit.json before reaping it and
    reports it; their output still reaches their logs; the next start gets a new waiter."""
    names = ["a", "b", "c"]
    with _supervisor(tmp_path, _subreaper) as stream:
        pids = _start_each(stream, [_gated(tmp_path, name, 50, 20 + i) for i, name in enumerate(names)])
        waiter = _waiter_of(tmp_path, "a")
        assert {_waiter_of(tmp_path, n) for n in names} == {waiter}
        os.kill(waiter, signal.SIGKILL)
        _wait(lambda: all(_parent(pid) != waiter for pid in pids.values()), "the containers re-parented")
        for i in (1, 2, 0):
            (tmp_path / f"{names[i]}.go").touch()
            ended = json.loads(stream.readline())
            assert ended["op"] == "exit" and ended["pid"] == pids[i]
            assert ended["exit"]["exitCode"] == 20 + i and "reason" not in ended["exit"]
            assert json.loads((tmp_path / names[i] / "run" / supervisor.EXIT_FILE).read_text())["exitCode"] == 20 + i
            assert _texts(tmp_path / names[i] / "logs" / "0.log")[1:] == [f"{names[i]} {k}" for k in range(50)]
            assert (tmp_path / names[i] / "logs" / "0.done").exists()
        _send(stream, {"op": "start", "id": 9, **_spec(tmp_path, "d", 'echo "$PPID"; exit 6')})
        reply, ended = json.loads(stream.readline()), json.loads(stream.readline())
        assert ended["pid"] == reply["pid"] and ended["exit"]["exitCode"] == 6
        assert _waiter_of(tmp_path, "d") != waiter


def test_a_waiter_killed_after_its_container_ended_reports_the_recorded_exit(tmp_path):
    """A waiter that recorded its container's exit and reaped it, then died before saying
    ``done``: the supervisor reports the exit.json it wrote; the waiter's other container,
    still running, is then the supervisor's to record."""

    def die_before_done() -> None:
        _subreaper()
        real = supervisor.Waiter._finish

        def finish(self: supervisor.Waiter, run: supervisor.Run) -> None:
            if "/a/" in run.spec["state_dir"]:
                os.kill(os.getpid(), signal.SIGKILL)
            real(self, run)

        supervisor.Waiter._finish = finish  # type: ignore[method-assign]

    with _supervisor(tmp_path, die_before_done) as stream:
        pids = _start_each(stream, [_spec(tmp_path, "b", "exec sleep 30"), _spec(tmp_path, "a", "exit 7")])
        ended = json.loads(stream.readline())
        assert ended["pid"] == pids[1] and ended["exit"]["exitCode"] == 7
        assert _parent(_parent(pids[0])) == os.getpid()  # b's parent is the supervisor now: a's waiter was b's
        os.kill(pids[0], signal.SIGTERM)  # the waiter is gone: the supervisor records this one
        ended = json.loads(stream.readline())
        assert ended["pid"] == pids[0] and ended["exit"]["exitCode"] == 128 + signal.SIGTERM
        assert ended["exit"]["signal"] == signal.SIGTERM


def test_a_supervisor_killed_with_three_containers_in_one_waiter_loses_no_log_and_no_exit(tmp_path):
    """kill -9 of the supervisor while one waiter runs three containers: the waiter takes over
    all three logs (output written afterwards arrives whole), records each exit code, writes
    each .done marker, and exits once the last has ended."""
    names = ["a", "b", "c"]
    sup, conn, stream = _fork_supervisor(tmp_path)  # killed below
    try:
        pids = _start_each(stream, [_gated(tmp_path, name, 3000, 30 + i) for i, name in enumerate(names)])
        waiter = _waiter_of(tmp_path, "a")
        assert {_waiter_of(tmp_path, n) for n in names} == {waiter}
    finally:
        stream.close()
        conn.close()
        os.kill(sup, signal.SIGKILL)
        os.waitpid(sup, 0)
    for i in (1, 0, 2):
        (tmp_path / f"{names[i]}.go").touch()
        done = tmp_path / names[i] / "logs" / "0.done"
        _wait(done.exists, f"{names[i]}'s log is marked done")
        assert json.loads((tmp_path / names[i] / "run" / supervisor.EXIT_FILE).read_text())["exitCode"] == 30 + i
        assert _texts(tmp_path / names[i] / "logs" / "0.log")[1:] == [f"{names[i]} {k}" for k in range(3000)]
        assert supervisor.proc_start_time(pids[i]) is None  # reaped by its waiter
    _wait(lambda: supervisor.proc_start_time(waiter) is None or _state(waiter) == "Z", "the waiter exits")


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0].decode()
