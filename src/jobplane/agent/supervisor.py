"""The node's container supervisor: ``python -I -S supervisor.py DATA_DIR``.

One long-lived process per agent data directory, like a single containerd shim for the
whole node. The agent used to fork a Python shim per container from its own (large)
process; this small process does all of that instead, on the other core:

* spawns every container (``posix_spawn``; fork+exec when a memory limit must be applied
  in the child), each in its own session / process group, stdin from ``/dev/null``;
* reads every container's stdout/stderr in one selector loop and writes kubelet's CRI
  log lines to ``<restartCount>.log``;
* is the parent of every container (and a child subreaper), so it reaps them and knows
  their exact exit status. When a container's main process exits, what is left of its
  process group is killed, as a container runtime does when the init process exits;
* writes ``exit.json`` and the ``.done`` marker, then tells the agent.

It runs in its own session and is nobody's child but init's, so it survives the agent and
the API server that embeds it. A restarted agent reconnects over ``DATA_DIR/supervisor.sock``
and re-adopts the containers still running. The supervisor exits once no agent is
connected and no container is left.

Protocol, one JSON object per line each way:

* agent -> supervisor: ``{"op": "start", "id": N, ...spec}``, answered by
  ``{"id": N, "pid": P, "start": T}`` or ``{"id": N, "error": "..."}``;
  ``{"op": "signal", "pid": P, "sig": S}`` signals the container's process group.
* supervisor -> agent: ``{"op": "hello", "pid": SUPERVISOR_PID, "children": [P, ...]}`` on
  connect (the containers whose exit is still to be reported), then
  ``{"op": "exit", "pid": P, "exit": {"exitCode": ..., "finishedAt": ..., ...}}`` per exit.

Standard library only and nothing from jobplane, so it starts fast and stays small.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time
from typing import Any

MAX_LINE = 16 * 1024  # kubelet splits longer lines into partial (P) entries
DRAIN_SECONDS = 1.0  # how long processes that left the group may hold the pipes after the main one exits
IDLE_EXIT_SECONDS = 10.0  # lifetime without any agent ever connecting
SOCKET_NAME = "supervisor.sock"
LOCK_NAME = "supervisor.lock"
LOG_NAME = "supervisor.log"
_OOM_HINTS = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc", b"out of memory")
# Python ignores these; ignored dispositions survive exec, containers must not inherit them.
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGHUP)
_PR_SET_CHILD_SUBREAPER = 36


def unix_address(path: str) -> tuple[str, int | None]:
    """An address for ``path`` that fits AF_UNIX's 107 bytes: a long one is reached through
    ``/proc/self/fd/<dirfd>/<name>`` (close the returned fd after bind/connect)."""
    if len(os.fsencode(path)) < 100:
        return path, None
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{os.path.basename(path)}", fd


def proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), zombies included; None if
    there is no such process. Distinguishes a re-used pid from the process we started."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw.rsplit(b")", 1)[1].split()[19].decode()


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (``/proc/<pid>/task/<pid>/children``)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def sandbox_init(outer_pid: int) -> int | None:
    """The host pid of a bwrap sandbox's init (pid 1 inside), the leader of the sandbox's
    own session and process group (``--new-session``); None before it exists."""
    kids = children(outer_pid)
    return kids[0] if kids else None


def _timestamp() -> bytes:
    now = time.time()
    sec = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode() + b".%09dZ" % int((now - sec) * 1e9)


class CriWriter:
    """Writes ``<time> <stream> <F|P> <text>`` lines, one write per chunk read, so followers see them."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> None:
        head = _timestamp() + b" " + stream.encode() + b" "
        out: list[bytes] = []
        buf = self.pending[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl == -1:
                break
            out.append(head + b"F " + buf[:nl] + b"\n")
            buf = buf[nl + 1:]
        while len(buf) >= MAX_LINE:
            out.append(head + b"P " + buf[:MAX_LINE] + b"\n")
            buf = buf[MAX_LINE:]
        self.pending[stream] = buf
        if out:
            os.write(self.fd, b"".join(out))

    def close(self) -> None:
        for stream, rest in self.pending.items():
            if rest:
                os.write(self.fd, _timestamp() + b" " + stream.encode() + b" F " + rest + b"\n")
        os.close(self.fd)


def make_cgroup(path: str | None, memory: int | None, cpu: float | None) -> str | None:
    """Create the container's cgroup v2 group with its limits; None when that is not possible."""
    if not path:
        return None
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        if memory:
            _write(os.path.join(path, "memory.max"), str(int(memory)))
            with contextlib.suppress(OSError):
                _write(os.path.join(path, "memory.swap.max"), "0")
        if cpu:
            period = 100_000
            _write(os.path.join(path, "cpu.max"), f"{max(1000, int(cpu * period))} {period}")
        return path
    except OSError as exc:
        print(f"cgroup {path} not usable ({exc}); falling back to RLIMIT_AS", file=sys.stderr)
        return None


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _oom_killed(cgroup: str | None, rlimit: int | None, failed: bool, stderr_tail: bytes) -> bool:
    if cgroup:
        try:
            with open(os.path.join(cgroup, "memory.events")) as f:
                return any(line.split()[:1] == ["oom_kill"] and int(line.split()[1]) > 0 for line in f)
        except (OSError, ValueError, IndexError):
            return False
    return bool(rlimit) and failed and any(h in stderr_tail for h in _OOM_HINTS)


def exit_result(status: int, finished_at: float, oom: bool) -> dict[str, Any]:
    """A ``waitpid`` status as the exit file records it (a signal as 128 + signal, like runc)."""
    result: dict[str, Any] = {"finishedAt": finished_at}
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        result.update(exitCode=128 + sig, signal=sig)
    else:
        result["exitCode"] = os.WEXITSTATUS(status)
    if oom:
        result.update(exitCode=137, reason="OOMKilled")
    return result


def _fork_exec(spec: dict[str, Any], out_w: int, err_w: int, cgroup: str | None, rlimit: int | None) -> int:
    """fork+exec, for what posix_spawn cannot do in the child: join a cgroup, set RLIMIT_AS."""
    err_r, err_w_pipe = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setsid()
            os.chdir(spec["cwd"])
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            for sig in (*_DEFAULT_SIGNALS, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            if cgroup:
                _write(os.path.join(cgroup, "cgroup.procs"), "0")
            if rlimit:
                resource.setrlimit(resource.RLIMIT_AS, (int(rlimit), int(rlimit)))
            os.execve(spec["executable"], spec["argv"], spec["env"])
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
            with contextlib.suppress(BaseException):
                os.write(err_w_pipe, str(exc).encode()[:4000])
        os._exit(127)
    os.close(err_w_pipe)
    chunks = []
    while chunk := os.read(err_r, 4096):
        chunks.append(chunk)
    os.close(err_r)
    if chunks:
        os.waitpid(pid, 0)
        raise OSError(b"".join(chunks).decode(errors="replace"))
    return pid


class Container:
    """One container process: its pipes, its log, and (once reaped) its wait status."""

    def __init__(self, pid: int, spec: dict[str, Any], writer: CriWriter, fds: dict[int, str],
                 cgroup: str | None, rlimit: int | None) -> None:
        self.pid = pid
        self.spec = spec
        self.writer = writer
        self.fds = fds  # read end -> stream name
        self.cgroup = cgroup
        self.rlimit = rlimit
        self.status: int | None = None
        self.finished_at = 0.0
        self.drain_deadline = 0.0
        self.stderr_tail = b""


def start_container(spec: dict[str, Any]) -> Container:
    """Create the run and log directories, open the log, spawn the process."""
    os.makedirs(spec["state_dir"], exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(spec["state_dir"], "exit.json"))
    os.makedirs(os.path.dirname(spec["log"]), exist_ok=True)
    writer = CriWriter(os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644))
    memory = spec.get("memory_limit")
    cgroup = make_cgroup(spec.get("cgroup"), memory, spec.get("cpu_limit"))
    rlimit = memory if memory and not cgroup else None
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        if cgroup or rlimit:
            pid = _fork_exec(spec, out_w, err_w, cgroup, rlimit)
        else:
            os.chdir(spec["cwd"])
            pid = os.posix_spawn(
                spec["executable"], spec["argv"], spec["env"],
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                              (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)],
                setsid=True, setsigdef=_DEFAULT_SIGNALS, setsigmask=())
    except OSError:
        for fd in (out_r, err_r):
            os.close(fd)
        writer.close()
        _touch(spec["done"])
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return Container(pid, spec, writer, {out_r: "stdout", err_r: "stderr"}, cgroup, rlimit)


def _touch(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.outbuf = bytearray()


class Supervisor:
    """The selector loop: the listening socket, agent connections, container pipes, SIGCHLD."""

    def __init__(self, listener: socket.socket) -> None:
        self.sel = selectors.DefaultSelector()
        self.listener = listener
        listener.setblocking(False)
        self.sel.register(listener, selectors.EVENT_READ, (self._accept, None))
        self.clients: dict[socket.socket, _Client] = {}
        self.children: dict[int, Container] = {}
        self.had_client = False
        self.born = time.monotonic()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self.sel.register(wake_r, selectors.EVENT_READ, (self._reap, wake_r))

    def run(self) -> None:
        while True:
            for key, mask in self.sel.select(self._timeout()):
                handler, arg = key.data
                handler(arg, mask)
            self._expire_drains()
            if not self.clients and not self.children and (
                    self.had_client or time.monotonic() - self.born > IDLE_EXIT_SECONDS):
                return

    def _timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [c.drain_deadline for c in self.children.values() if c.status is not None]
        if not self.had_client:
            deadlines.append(self.born + IDLE_EXIT_SECONDS)
        return max(0.0, min(deadlines) - now) if deadlines else None

    # ------------------------------------------------------------ agents

    def _accept(self, _arg: Any, _mask: int) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        if struct.unpack("3i", creds)[1] != os.getuid():
            sock.close()
            return
        sock.setblocking(False)
        client = _Client(sock)
        self.clients[sock] = client
        self.had_client = True
        self.sel.register(sock, selectors.EVENT_READ, (self._on_client, client))
        self._send(client, {"op": "hello", "pid": os.getpid(), "children": list(self.children)})

    def _on_client(self, client: _Client, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush(client)
        if not mask & selectors.EVENT_READ or client.sock not in self.clients:
            return
        try:
            data = client.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.inbuf += data
        *lines, client.inbuf = client.inbuf.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                self._handle(client, json.loads(line))
            except Exception as exc:  # noqa: BLE001 - a bad request must not take every container down
                print(f"bad request {line[:200]!r}: {exc!r}", file=sys.stderr)

    def _handle(self, client: _Client, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "start":
            try:
                c = start_container(msg)
            except (OSError, KeyError, TypeError, ValueError) as exc:
                self._send(client, {"id": msg["id"], "error": str(exc)})
                return
            self.children[c.pid] = c
            for fd, stream in c.fds.items():
                self.sel.register(fd, selectors.EVENT_READ, (self._on_pipe, (c, fd, stream)))
            self._send(client, {"id": msg["id"], "pid": c.pid, "start": proc_start_time(c.pid)})
        elif op == "signal":
            child = self.children.get(int(msg["pid"]))
            if child is not None and child.status is None:  # not reaped yet: the group id is still ours
                sig = int(msg["sig"])
                # A sandboxed container: its bwrap init leads the group of what runs inside;
                # bwrap's outer process would die of the signal and take the sandbox with it.
                # Until the command runs inside (bwrap still setting up), the whole sandbox goes.
                inner = sandbox_init(child.pid) if child.spec.get("sandbox") and sig != signal.SIGKILL else None
                target = inner if inner is not None and children(inner) else child.pid
                try:
                    os.killpg(target, sig)
                except (ProcessLookupError, PermissionError):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.pid, sig)

    def _send(self, client: _Client, msg: dict[str, Any]) -> None:
        client.outbuf += json.dumps(msg, separators=(",", ":")).encode() + b"\n"
        self._flush(client)

    def _flush(self, client: _Client) -> None:
        if client.sock not in self.clients:
            return
        try:
            sent = client.sock.send(client.outbuf)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(client)
            return
        del client.outbuf[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbuf else 0)
        if self.sel.get_key(client.sock).events != events:
            self.sel.modify(client.sock, events, (self._on_client, client))

    def _drop(self, client: _Client) -> None:
        if self.clients.pop(client.sock, None) is not None:
            self.sel.unregister(client.sock)
            client.sock.close()

    # -------------------------------------------------------- containers

    def _on_pipe(self, arg: tuple[Container, int, str], _mask: int) -> None:
        c, fd, stream = arg
        try:
            data = os.read(fd, 1 << 16)
        except OSError:
            data = b""
        if not data:
            self._close_pipe(c, fd)
            self._maybe_finish(c)
            return
        try:
            c.writer.feed(stream, data)
        except OSError as exc:  # e.g. the disk is full: the output is lost, the container is not
            print(f"container {c.pid}: cannot write its log: {exc}", file=sys.stderr)
        if stream == "stderr":
            c.stderr_tail = (c.stderr_tail + data)[-4096:]

    def _close_pipe(self, c: Container, fd: int) -> None:
        self.sel.unregister(fd)
        os.close(fd)
        del c.fds[fd]

    def _reap(self, wake_fd: int, _mask: int) -> None:
        with contextlib.suppress(OSError):
            while os.read(wake_fd, 4096):
                pass
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            c = self.children.get(pid)
            if c is not None and c.status is None:
                # Still a zombie, so the group id cannot have been re-used: kill what is left of it.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            if c is not None:  # else an orphan that re-parented to us (we are a subreaper)
                c.status = status
                c.finished_at = time.time()
                c.drain_deadline = time.monotonic() + DRAIN_SECONDS
                self._maybe_finish(c)

    def _expire_drains(self) -> None:
        now = time.monotonic()
        for c in [c for c in self.children.values() if c.status is not None and c.drain_deadline <= now]:
            for fd in list(c.fds):
                self._close_pipe(c, fd)
            self._maybe_finish(c)

    def _maybe_finish(self, c: Container) -> None:
        """Once the process is reaped and its output drained: log closed, exit file, .done, notify."""
        if c.status is None or c.fds or c.pid not in self.children:
            return
        del self.children[c.pid]
        with contextlib.suppress(OSError):
            c.writer.close()
        failed = os.waitstatus_to_exitcode(c.status) != 0
        result = exit_result(c.status, c.finished_at, _oom_killed(c.cgroup, c.rlimit, failed, c.stderr_tail))
        try:
            _write(os.path.join(c.spec["state_dir"], "exit.json"), json.dumps(result))
            _touch(c.spec["done"])
        except OSError as exc:  # the pod's directory was removed under us
            print(f"container {c.pid}: cannot record its exit: {exc}", file=sys.stderr)
        if c.cgroup:
            with contextlib.suppress(OSError):
                os.rmdir(c.cgroup)
        msg = {"op": "exit", "pid": c.pid, "exit": result}
        for client in list(self.clients.values()):
            self._send(client, msg)


def main(argv: list[str]) -> int:
    data_dir = os.path.abspath(argv[1])
    os.makedirs(data_dir, exist_ok=True)
    lock_fd = os.open(os.path.join(data_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("busy", flush=True)  # another supervisor serves this directory (or is just exiting)
        return 0
    sock_path = os.path.join(data_dir, SOCKET_NAME)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    addr, dir_fd = unix_address(sock_path)
    old_umask = os.umask(0o177)
    try:
        listener.bind(addr)
    finally:
        os.umask(old_umask)
        if dir_fd is not None:
            os.close(dir_fd)
    listener.listen(128)
    if os.fork():  # the agent's child exits at once: the supervisor is nobody's child but init's
        os._exit(0)
    os.chdir("/")
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    print("ready", flush=True)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    try:
        Supervisor(listener).run()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(sock_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
