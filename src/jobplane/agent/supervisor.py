"""The node's container supervisor: ``python -I -S supervisor.py DATA_DIR``.

One long-lived process per agent data directory, like a single containerd shim for the
whole node. The agent used to fork a Python shim per container from its own (large)
process; this small process does all of that instead, on the other core:

* spawns every container (``posix_spawn``; fork+exec when a memory limit must be applied
  in the child), each in its own session / process group, stdin from ``/dev/null``;
* reads every container's stdout/stderr in one selector loop and writes kubelet's CRI
  log lines to ``<restartCount>.log``;
* starts each container through a **waiter**: a child forked from the supervisor (no exec)
  that spawns the container, is its parent, and waits for it. When the container exits, the
  waiter records the exact exit status in ``exit.json`` (atomically, by rename) *before*
  reaping it, kills what is left of the container's process group, and says ``done`` (with
  that record) once the output has drained. The waiter holds the read ends of the
  container's pipes without reading them; if the supervisor dies (its lifeline pipe reaches
  end of file), each waiter takes over writing the log of each of its containers, so a
  container never meets a closed pipe and its exit code is never lost; it exits once the
  last of them has ended and is recorded;
* one waiter runs up to ``WAITER_CONTAINERS`` containers at once, multiplexed in one
  ``poll`` loop (a waiter's pages are ~1.6 MiB whatever it runs: 100 running containers
  need 4 waiters, not 100). A start goes to the least-loaded waiter with room that is not
  starting another one (``posix_spawn`` holds a waiter until the exec); a new waiter is forked
  only when all are full, or all with room have been starting one for ``SLOW_START_SECONDS``,
  so a slow start holds up no other start (it does delay the ``done`` of its own waiter's
  other containers, never their output). Waiters left idle by a burst are kept a while for
  the next starts (``IDLE_WAITER_SECONDS``, ``KEEP_WAITERS``): the fork, the copy-on-write
  faults it causes and the waiter's exit are paid once per waiter, not once per container.
  A start reaches its waiter on a socket pair (a tag and the spec as a JSON line, the pipes
  and the log as ``SCM_RIGHTS``); the reply (the tag with the pid, or an error) and ``done``
  (the pid with the exit record) are events of the supervisor's selector loop like any other;
* a run (one ``state_dir``) is started at most once: the waiter claims it (``claim_run``,
  a ``flock`` of the run directory held while that container's run lasts) before it spawns,
  and records ``pid.json`` before anyone hears of the start; a start retried after a
  supervisor died mid-start meets the claim or the record and is answered ``claimed``, never
  spawned twice;
* once a waiter is done with a container and the output is drained, writes the ``.done``
  marker and tells the agent. A waiter that dies (killed) is reaped; its containers, which
  re-parent to the supervisor (a child subreaper), are then the supervisor's to follow: it
  records each one's exit in ``exit.json`` before reaping it, exactly as the waiter would
  have, and reads the record of one the waiter had already reaped; a start the dead waiter
  had not answered is settled by its ``pid.json``. It also reaps whatever a container left
  behind.

It runs in its own session and is nobody's child but init's, so it survives the agent and
the API server that embeds it. A restarted agent reconnects over ``DATA_DIR/supervisor.sock``
and re-adopts the containers still running. The supervisor exits once no agent is
connected and no container is left.

Protocol, one JSON object per line each way:

* agent -> supervisor: ``{"op": "start", "id": N, ...spec}``, answered by
  ``{"id": N, "pid": P, "start": T}`` or ``{"id": N, "error": "...", "claimed": BOOL}``;
  ``{"op": "signal", "pid": P, "sig": S}`` signals the container's process group.
* supervisor -> agent: ``{"op": "hello", "pid": SUPERVISOR_PID, "children": [P, ...]}`` on
  connect (the containers whose exit is still to be reported), then
  ``{"op": "exit", "pid": P, "exit": {"exitCode": ..., "finishedAt": ..., ...}}`` per exit.

Standard library only and nothing from jobplane, so it starts fast and stays small.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import gc
import json
import os
import resource
import select
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
# A waiter holds ~1.6 MiB of its own pages, whether it runs one container or many: it runs up
# to WAITER_CONTAINERS at once (a new one is forked only when all are full), so 100 running
# containers need 4 waiters, not 100 (bench/RESULTS.md §18a). Waiters left idle by a burst are
# kept (at most IDLE_WAITERS) for IDLE_WAITER_SECONDS, then let go down to KEEP_WAITERS.
WAITER_CONTAINERS = 32
IDLE_WAITERS = 4
KEEP_WAITERS = 1
IDLE_WAITER_SECONDS = 5.0
# A waiter is handed one start at a time (posix_spawn holds it until the exec). A start that
# finds every waiter with room still starting one gets a new waiter while there are fewer than
# PARALLEL_STARTS (starts in a burst then overlap with the supervisor's own work), else waits
# for a reply, or, past SLOW_START_SECONDS, for a new waiter all the same.
PARALLEL_STARTS = 4
SLOW_START_SECONDS = 0.2
SETTLE_SECONDS = 2.0  # how long an agent's hello waits for a dying waiter's starts to be settled
SOCKET_NAME = "supervisor.sock"
LOCK_NAME = "supervisor.lock"
LOG_NAME = "supervisor.log"
_OOM_HINTS = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc", b"out of memory")
# Python and the waiters ignore these; ignored dispositions survive exec, containers must
# not inherit them.
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGHUP, signal.SIGTERM)
_WAITER_IGNORES = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)
RECORD_RETRY_SECONDS = 1.0  # a full disk: the waiter keeps its exit record until it can write it
LOG_MODE = 0o640
PID_FILE = "pid.json"  # the started container: pid, start time, startedAt
EXIT_FILE = "exit.json"  # its exit status, written by its waiter before reaping it
CLAIM_FILE = "claim"  # what a waiter of an older supervisor flock-ed instead of the run directory


def warn(message: str) -> None:
    """One line to stderr (``supervisor.log``); never raises, so a full disk cannot kill us."""
    with contextlib.suppress(OSError):
        os.write(2, message.encode(errors="replace")[:4000] + b"\n")
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
        try:
            for stream, rest in self.pending.items():
                if rest:
                    os.write(self.fd, _timestamp() + b" " + stream.encode() + b" F " + rest + b"\n")
        finally:
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
        warn(f"cgroup {path} not usable ({exc}); falling back to RLIMIT_AS")
        return None


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def write_record(path: str, record: dict[str, Any]) -> None:
    """A small JSON file by rename, so a reader never sees half of it."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        data = json.dumps(record).encode()
        if os.write(fd, data) != len(data):
            raise OSError(28, "short write")
    finally:
        os.close(fd)
    os.rename(tmp, path)


def write_exit_record(state_dir: str, result: dict[str, Any]) -> None:
    write_record(os.path.join(state_dir, EXIT_FILE), result)


def read_exit_record(state_dir: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(state_dir, EXIT_FILE), "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


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


def waitid_status(info: Any) -> int:
    """The ``waitpid`` status word for a ``waitid`` result (which does not reap)."""
    if info.si_code == os.CLD_EXITED:
        return (info.si_status & 0xFF) << 8
    return info.si_status & 0x7F  # CLD_KILLED / CLD_DUMPED: terminated by that signal


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
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
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


def _spawn(spec: dict[str, Any], out_w: int, err_w: int, cgroup: str | None, rlimit: int | None) -> int:
    if cgroup or rlimit:
        return _fork_exec(spec, out_w, err_w, cgroup, rlimit)
    os.chdir(spec["cwd"])
    return os.posix_spawn(
        spec["executable"], spec["argv"], spec["env"],
        file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                      (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)],
        setsid=True, setsigdef=_DEFAULT_SIGNALS, setsigmask=())


class Container:
    """One container process (the waiter's child): its pipes, its log, and (once its waiter
    is reaped) its wait status."""

    def __init__(self, pid: int, start: str | None, waiter: int, spec: dict[str, Any], writer: CriWriter,
                 fds: dict[int, str], cgroup: str | None, rlimit: int | None) -> None:
        self.pid = pid
        self.start = start
        self.waiter = waiter
        self.spec = spec
        self.writer = writer
        self.fds = fds  # read end -> stream name
        self.cgroup = cgroup
        self.rlimit = rlimit
        self.ended = False  # the waiter is done with it (or died): its exit is recorded
        self.record: dict[str, Any] | None = None  # that exit record, as the waiter sent it
        self.finished_at = 0.0
        self.drain_deadline = 0.0
        self.stderr_tail = b""


def _close_fds_except(keep: set[int]) -> None:
    try:
        top = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError):
        top = 65536
    if top == resource.RLIM_INFINITY or top > 1 << 20:
        top = 1 << 20
    low = 0
    for fd in sorted(keep):
        if fd > low:  # closerange(n, n) would close everything from n up (close_range(n, -1))
            os.closerange(low, fd)
        low = fd + 1
    if top > low:
        os.closerange(low, top)


def _wakeup_pipe() -> int:
    """SIGCHLD wakes a ``poll`` through this pipe's read end (set up once per process)."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    return wake_r


class Run:
    """One container of a waiter, as its parent sees it: the pipes' read ends (held, not read,
    while the supervisor lives), the log, the run's claim and, once it exited, its record."""

    def __init__(self, tag: Any, spec: dict[str, Any], pid: int, pipes: dict[int, str], log_fd: int,
                 claim: int, cgroup: str | None, rlimit: int | None) -> None:
        self.tag = tag
        self.spec = spec
        self.pid = pid
        self.pipes = dict(pipes)  # read end -> stream name
        self.log_fd = log_fd
        self.claim = claim
        self.cgroup = cgroup
        self.rlimit = rlimit
        self.pump: CriWriter | None = None  # the supervisor died: this waiter writes the log
        self.stderr_tail = b""
        self.result: dict[str, Any] | None = None  # the exit, once waitid saw it
        self.reaped = False  # recorded in exit.json, then reaped
        self.retry_at = 0.0  # a full disk: when to try recording the exit again
        self.warned = False
        self.drain_deadline = 0.0
        self.hangup_watch: set[int] = set()  # pipe read ends polled for their hang-up alone


class Waiter:
    """A waiter's loop (in the forked child): the parent of up to ``WAITER_CONTAINERS``
    containers at once, multiplexed with one ``poll``; starts arrive on its channel at any time.

    Order on a container's exit: ``waitid`` without reaping (the pid and its process group
    cannot be re-used meanwhile), kill what is left of the group, write ``exit.json``
    (retried while the disk is full: the container stays a zombie, so nobody takes its exit
    for lost; the other containers go on meanwhile), then reap. Its run lingers until the
    supervisor has drained the output, then ``done`` goes out with the record; if the
    supervisor dies, each run pumps its own output into its log. The waiter exits once its
    channel is closed (the supervisor let it go, or died) and no container of its is left."""

    def __init__(self, chan: socket.socket, lifeline: int) -> None:
        self.chan = chan
        self.chan_fd = chan.fileno()
        self.lifeline = lifeline
        self.wake = _wakeup_pipe()
        self.poller = select.poll()
        for fd in (self.wake, lifeline, self.chan_fd):
            self.poller.register(fd, select.POLLIN)
        self.runs: dict[int, Run] = {}  # container pid -> its run
        self.owner: dict[int, Run] = {}  # pipe read end -> its run
        self.inbuf = b""
        self.fdsets: collections.deque[list[int]] = collections.deque()  # one per start, in order
        self.chan_open = True
        self.orphaned = False  # the supervisor died (lifeline at its end)
        self.reap_check = False  # SIGCHLD (or a new container): look for exits

    def run(self) -> int:
        while self.chan_open or self.runs:
            for fd, _events in self.poller.poll(self._timeout_ms()):
                if fd == self.wake:
                    with contextlib.suppress(OSError):
                        while os.read(fd, 4096):
                            pass
                    self.reap_check = True
                elif fd == self.lifeline:
                    self._take_over()
                elif fd == self.chan_fd:
                    if self.chan_open:
                        self._read_requests()
                elif (run := self.owner.get(fd)) is not None:
                    self._on_pipe(run, fd)
            self._check_exits()
            for run in [r for r in self.runs.values() if r.reaped and self._drained(r)]:
                self._finish(run)
        return 0

    def _timeout_ms(self) -> int:
        now = time.monotonic()
        timeout: float | None = None
        for run in self.runs.values():
            if not run.reaped:
                due = run.retry_at - now if run.result is not None else None
            elif run.pump is None:
                # pipes that still have writers wake us when they hang up; output left unread
                # after that is the supervisor's to drain right now: look again shortly
                due = min(0.02 if run.hangup_watch else 0.002, run.drain_deadline - now)
            else:
                due = run.drain_deadline - now
            if due is not None and (timeout is None or due < timeout):
                timeout = due
        return -1 if timeout is None else max(0, int(timeout * 1000) + 1)

    # ------------------------------------------------------------- starts

    def _read_requests(self) -> None:
        """What the channel holds: start requests (a JSON line each, its five descriptors
        attached to its first byte), or its end."""
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.chan, 1 << 16, MAX_FDS, socket.MSG_CMSG_CLOEXEC)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        if fds:  # a recvmsg returns at most one message's descriptors: they queue in order
            self.fdsets.append(fds)
        if not data:
            self._close_chan()
            return
        self.inbuf += data
        *lines, self.inbuf = self.inbuf.split(b"\n")
        for line in lines:
            if line.strip():
                self._start(line, self.fdsets.popleft() if self.fdsets else [])

    def _close_chan(self) -> None:
        if not self.chan_open:
            return
        self.chan_open = False
        self.poller.unregister(self.chan_fd)
        self.chan.close()
        for fds in self.fdsets:
            for fd in fds:
                os.close(fd)
        self.fdsets.clear()
        self.inbuf = b""

    def _reply(self, msg: dict[str, Any]) -> None:
        if self.chan_open and not self.orphaned:
            try:
                _send_line(self.chan, msg)
            except OSError:  # the supervisor closed the channel or died
                self._close_chan()

    def _start(self, line: bytes, fds: list[int]) -> None:
        """Claim the run, spawn its container, record ``pid.json``, then reply (the request's
        tag with the pid, or the error)."""
        tag = None
        try:
            msg = json.loads(line)
            tag = msg.get("tag")
            if len(fds) != MAX_FDS:
                raise OSError(errno.EBADF, f"the start came with {len(fds)} descriptors")
            run = self._spawn_run(tag, msg, fds)
        except Exception as exc:  # noqa: BLE001 - a bad request must not take the other containers down
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._reply({"tag": tag, "error": str(exc), "errno": getattr(exc, "errno", None),
                         "claimed": isinstance(exc, RunClaimed)})
            return
        self.runs[run.pid] = run
        for fd in run.pipes:
            self.owner[fd] = run
        if self.orphaned:  # started from a request read after the supervisor died
            self._pump(run)
        self.reap_check = True

    def _spawn_run(self, tag: Any, msg: dict[str, Any], fds: list[int]) -> Run:
        spec, cgroup, rlimit = msg["spec"], msg.get("cgroup"), msg.get("rlimit")
        out_r, out_w, err_r, err_w, log_fd = fds
        claim = -1
        try:
            claim = claim_run(spec["state_dir"])  # held until this run is over
            pid = _spawn(spec, out_w, err_w, cgroup, rlimit)
        except BaseException:
            for fd in (out_r, err_r, log_fd, claim):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            fds[:] = []  # closed here, whatever happened
            os.close(out_w)
            os.close(err_w)
            with contextlib.suppress(OSError):
                os.chdir("/")  # a volume this waiter's cwd pinned could not be unmounted
        started = {"pid": pid, "start": proc_start_time(pid), "startedAt": time.time()}
        # Before anyone hears of it: an agent (or a retried start) that lost the reply finds the
        # container here and re-adopts it instead of starting it a second time.
        try:
            write_record(os.path.join(spec["state_dir"], PID_FILE), started)
        except OSError as exc:
            warn(f"container {pid}: cannot record its start: {exc}")
        self._reply({"tag": tag, **started})
        return Run(tag, spec, pid, {out_r: "stdout", err_r: "stderr"}, log_fd, claim, cgroup, rlimit)

    # -------------------------------------------------------------- exits

    def _check_exits(self) -> None:
        """Record and reap the containers that exited (on SIGCHLD), and retry records a full
        disk held back."""
        now = time.monotonic()
        for run in list(self.runs.values()):
            if run.reaped:
                continue
            if run.result is None:
                if not self.reap_check:
                    continue
                try:
                    info = os.waitid(os.P_PID, run.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:
                    run.result = {"exitCode": 137, "finishedAt": time.time(), "reason": "ContainerStatusUnknown",
                                  "message": "the container's exit status could not be read"}
                    self._reaped(run)
                    continue
                if info is None:
                    continue
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(run.pid, signal.SIGKILL)
                run.result = exit_result(waitid_status(info), time.time(), _oom_killed(run.cgroup, None, False, b""))
            elif now < run.retry_at:
                continue
            if self._record(run):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(run.pid, 0)
                self._reaped(run)
        self.reap_check = False

    def _record(self, run: Run) -> bool:
        """Write ``exit.json``; False (to be retried) while the disk is full."""
        try:
            write_exit_record(run.spec["state_dir"], run.result or {})
        except FileNotFoundError:
            return True  # the pod's directory is gone: nobody will ask
        except OSError as exc:
            if not run.warned:
                warn(f"container {run.pid}: cannot record its exit ({exc}); retrying every "
                     f"{RECORD_RETRY_SECONDS:g}s")
                run.warned = True
            run.retry_at = time.monotonic() + RECORD_RETRY_SECONDS
            return False
        if run.warned:
            warn(f"container {run.pid}: exit recorded")
        return True

    def _reaped(self, run: Run) -> None:
        run.reaped = True
        run.drain_deadline = time.monotonic() + DRAIN_SECONDS
        if run.pump is None:
            self._watch_hangups(run)

    def _watch_hangups(self, run: Run) -> None:
        """Wake when the last writer of each pipe has gone (poll reports a hang-up without
        being asked), not on a timer: the supervisor hears of the exit when this waiter says
        ``done``, so each millisecond waited here is a millisecond on the pod's start latency."""
        for fd in run.pipes:
            self.poller.register(fd, 0)
            run.hangup_watch.add(fd)

    def _drained(self, run: Run) -> bool:
        if time.monotonic() >= run.drain_deadline:
            return True
        if run.pump is not None:
            return not run.pipes
        for fd in run.pipes:
            p = select.poll()
            p.register(fd, select.POLLIN)
            events = p.poll(0)
            if not events or events[0][1] & select.POLLIN:  # writers left, or unread output
                return False
        return True

    def _finish(self, run: Run) -> None:
        """The run is over: let go of its descriptors and claim (and, when this waiter wrote
        the log, end it as the supervisor would have), then say ``done`` with the record."""
        del self.runs[run.pid]
        for fd in list(run.pipes):
            self._close_pipe(run, fd)
        result = run.result or {}
        if run.pump is None:
            with contextlib.suppress(OSError):
                os.close(run.log_fd)  # the supervisor closes the log and writes the .done marker
        else:
            with contextlib.suppress(OSError):
                run.pump.close()
            if _oom_killed(None, run.rlimit, result.get("exitCode") != 0, run.stderr_tail):
                result.update(exitCode=137, reason="OOMKilled")
                with contextlib.suppress(OSError):
                    write_exit_record(run.spec["state_dir"], result)
            with contextlib.suppress(OSError):
                _touch(run.spec["done"])
        os.close(run.claim)
        self._reply({"op": "done", "pid": run.pid, "exit": run.result})

    # ------------------------------------------------------------ output

    def _take_over(self) -> None:
        """The supervisor died: write each container's output to its log from now on."""
        self.orphaned = True
        self.poller.unregister(self.lifeline)
        os.close(self.lifeline)
        for run in self.runs.values():
            self._pump(run)

    def _pump(self, run: Run) -> None:
        run.pump = CriWriter(run.log_fd)
        run.hangup_watch.clear()
        for fd in run.pipes:
            self.poller.register(fd, select.POLLIN)  # (re-registering sets the events anew)

    def _on_pipe(self, run: Run, fd: int) -> None:
        if run.pump is None:
            if fd in run.hangup_watch:  # its writers are gone: _drained() looks at it next
                run.hangup_watch.discard(fd)
                self.poller.unregister(fd)
            return
        try:
            data = os.read(fd, 1 << 16)
        except OSError:
            data = b""
        if not data:
            self._close_pipe(run, fd)
            return
        stream = run.pipes[fd]
        try:
            run.pump.feed(stream, data)
        except OSError as exc:
            warn(f"container {run.pid}: cannot write its log: {exc}")
        if stream == "stderr":
            run.stderr_tail = (run.stderr_tail + data)[-4096:]

    def _close_pipe(self, run: Run, fd: int) -> None:
        with contextlib.suppress(OSError, KeyError):
            self.poller.unregister(fd)
        with contextlib.suppress(OSError):
            os.close(fd)
        run.pipes.pop(fd, None)
        run.hangup_watch.discard(fd)
        self.owner.pop(fd, None)


class RunClaimed(OSError):
    """Another waiter holds this run (it is starting or running its container), or an
    earlier one already started it: the start must not spawn it again."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EEXIST, message)


def claim_run(state_dir: str) -> int:
    """Claim the container run of ``state_dir`` before spawning it; the returned descriptor
    (the run directory's, ``flock``-ed: a killed waiter frees it; no file to create) holds
    the claim until the waiter exits.

    A run is started at most once: a start retried after its supervisor died (or after the
    agent lost the reply) meets the first waiter's claim while that one lives, and the
    first waiter's ``pid.json`` / ``exit.json`` after it; either raises ``RunClaimed``. A
    waiter of an older supervisor claimed a ``claim`` file instead: that is respected too."""
    fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunClaimed("the container is being started by an earlier request") from None
    if _legacy_claim_held(state_dir):
        os.close(fd)
        raise RunClaimed("the container is being started by an earlier request")
    if run_recorded(state_dir):
        os.close(fd)
        raise RunClaimed("the container was started by an earlier request")
    return fd


def run_recorded(state_dir: str) -> bool:
    """Whether a waiter recorded starting (``pid.json``) or ending (``exit.json``) this run."""
    return any(os.path.exists(os.path.join(state_dir, f)) for f in (PID_FILE, EXIT_FILE))


def _probe_lock(path: str, flags: int) -> bool:
    """Whether someone holds an exclusive ``flock`` on ``path`` (False when it does not exist)."""
    try:
        fd = os.open(path, flags | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops our shared lock
    return False


def _legacy_claim_held(state_dir: str) -> bool:
    return _probe_lock(os.path.join(state_dir, CLAIM_FILE), os.O_RDONLY)


def claim_held(state_dir: str) -> bool:
    """Whether a live waiter holds the run's claim (a probe: held for no time at all)."""
    return _probe_lock(state_dir, os.O_RDONLY | os.O_DIRECTORY) or _legacy_claim_held(state_dir)


MAX_FDS = 5  # a start hands the waiter: stdout and stderr pipes (both ends each), the log
SEND_SECONDS = 5.0  # a waiter that takes no start for this long is broken (killed; see WaiterBroken)


def _send_line(chan: socket.socket, msg: dict[str, Any], fds: list[int] | None = None) -> None:
    """One JSON line on a waiter's channel (blocking), with ``fds`` attached to its first byte."""
    data = json.dumps(msg, separators=(",", ":")).encode() + b"\n"
    sent = socket.send_fds(chan, [data], fds) if fds else 0
    if sent < len(data):
        chan.sendall(data[sent:])


def _waiter_main(chan: socket.socket, lifeline: int) -> int:
    """A waiter's life (in the forked child): serve the starts sent on ``chan`` until the
    supervisor closes it (or dies) and every container started has ended."""
    # Nothing inherited is ever collected here: a finalizer of the parent's garbage (a socket
    # object, say) would act on a descriptor number this waiter has closed and re-used.
    gc.freeze()
    signal.set_wakeup_fd(-1)
    for sig in _WAITER_IGNORES:
        signal.signal(sig, signal.SIG_IGN)
    _close_fds_except({0, 1, 2, chan.fileno(), lifeline})
    return Waiter(chan, lifeline).run()


class WaiterProc:
    """A waiter as the supervisor sees it: its pid, its end of the channel, the reply bytes
    read so far, the starts it has not answered yet and the containers it has not said
    ``done`` for: its load."""

    def __init__(self, pid: int, chan: socket.socket) -> None:
        self.pid = pid
        self.chan = chan
        self.inbuf = b""
        self.starts: dict[int, Starting] = {}  # tag -> start
        self.containers: dict[int, Container] = {}  # pid -> container
        self.closed = False
        self.idle_since = time.monotonic()
        self.sent_at = 0.0  # when its last start was handed over

    @property
    def load(self) -> int:
        return len(self.starts) + len(self.containers)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.chan.close()


class Starting:
    """A container handed to a waiter that has not replied yet: what the start holds until
    the reply (``pid`` or ``error``, with the start's tag) has been read from the channel."""

    def __init__(self, tag: int, spec: dict[str, Any], proc: WaiterProc, writer: CriWriter, fds: dict[int, str],
                 cgroup: str | None, rlimit: int | None) -> None:
        self.tag = tag
        self.spec = spec
        self.proc = proc
        self.waiter = proc.pid
        self.writer = writer
        self.fds = fds  # the container's output pipes (read ends) -> stream name
        self.cgroup = cgroup
        self.rlimit = rlimit


class WaiterBroken(OSError):
    """A start could not be handed to its waiter (the channel failed or stayed full): what
    the waiter runs can no longer be heard of through it."""


def fork_waiter(lifeline: int) -> WaiterProc:
    """Fork a waiter; it waits on its channel for starts (``hand_over``)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pid = os.fork()
    except OSError as exc:
        ours.close()
        theirs.close()
        raise OSError(exc.errno, f"cannot start the container's waiter: {exc.strerror}") from None
    if pid == 0:  # pragma: no cover - the waiter
        code = 1
        try:
            ours.detach()  # closed with the rest by _close_fds_except
            code = _waiter_main(theirs, lifeline)
        except BaseException as exc:  # noqa: BLE001 - a waiter must never return into the supervisor
            warn(f"waiter failed: {exc!r}")
        finally:
            os._exit(code)
    theirs.close()
    return WaiterProc(pid, ours)


def hand_over(spec: dict[str, Any], proc: WaiterProc, tag: int) -> Starting:
    """Create the run and log directories, open the log and the output pipes, and hand the
    start to ``proc``. Its reply (with ``tag``) comes on ``proc.chan``: the supervisor's loop
    waits for it as for any other event (``finish_start``). Raises ``WaiterBroken`` when the
    channel failed (the rest failed before anything reached the waiter)."""
    os.makedirs(spec["state_dir"], exist_ok=True)
    os.makedirs(os.path.dirname(spec["log"]), exist_ok=True)
    writer = CriWriter(os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, LOG_MODE))
    memory = spec.get("memory_limit")
    cgroup = make_cgroup(spec.get("cgroup"), memory, spec.get("cpu_limit"))
    rlimit = memory if memory and not cgroup else None
    fds: list[int] = []
    try:
        out = os.pipe()
        fds.extend(out)
        err = os.pipe()
        fds.extend(err)
        timeout = proc.chan.gettimeout()
        proc.chan.settimeout(SEND_SECONDS)  # a waiter reads its channel in its loop at once
        try:
            _send_line(proc.chan, {"tag": tag, "spec": spec, "cgroup": cgroup, "rlimit": rlimit},
                       [*out, *err, writer.fd])
        except OSError as exc:
            raise WaiterBroken(exc.errno, f"cannot start the container's waiter: {exc.strerror or exc}") from None
        finally:
            proc.chan.settimeout(timeout)
    except OSError:
        for fd in fds:
            os.close(fd)
        writer.close()
        with contextlib.suppress(OSError):
            _touch(spec["done"])
        raise
    for fd in (out[1], err[1]):
        os.close(fd)
    return Starting(tag, spec, proc, writer, {out[0]: "stdout", err[0]: "stderr"}, cgroup, rlimit)


def read_lines(proc: WaiterProc) -> list[dict[str, Any]] | None:
    """The complete lines the waiter has written since the last call (non-blocking unless
    its channel is); None once the channel is at its end (the waiter has exited)."""
    try:
        data = proc.chan.recv(1 << 16)
    except BlockingIOError:
        return []
    except OSError:
        data = b""
    if not data:
        return None
    proc.inbuf += data
    *lines, proc.inbuf = proc.inbuf.split(b"\n")
    return [json.loads(line) for line in lines if line.strip()]


def finish_start(start: Starting, reply: dict[str, Any] | None) -> Container:
    """The container the waiter's reply names (None: it exited without one). For an error
    reply, releases what the start held and raises: ``RunClaimed``, or an ``OSError`` with
    the waiter's errno."""
    if reply is None:
        reply = {"error": "the container's waiter exited before starting it"}
    if "error" in reply:
        for fd in start.fds:
            os.close(fd)
        start.writer.close()
        if reply.get("claimed"):  # the run is another waiter's: its log is not ours to end
            raise RunClaimed(reply["error"])
        with contextlib.suppress(OSError):
            _touch(start.spec["done"])
        raise OSError(reply.get("errno") or 0, reply["error"])
    return Container(reply["pid"], reply.get("start"), start.waiter, start.spec, start.writer, start.fds,
                     start.cgroup, start.rlimit)


def start_container(spec: dict[str, Any], lifeline: int) -> Container:
    """Fork a waiter, hand it ``spec`` and wait for its reply (blocking: for callers without a
    loop). The channel is closed after the reply: the waiter exits once the container has."""
    proc = fork_waiter(lifeline)
    try:
        start = hand_over(spec, proc, 0)
        lines: list[dict[str, Any]] | None = []
        while lines == []:
            lines = read_lines(proc)
        return finish_start(start, lines[0] if lines else None)
    finally:
        proc.close()


def _touch(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, LOG_MODE))


def _same_process(c: Container, pid: int) -> bool:
    """Whether ``pid`` (alive or a zombie) is still the process ``c`` started, not a re-use."""
    return c.start is None or proc_start_time(pid) == c.start


def _recorded_start(state_dir: str) -> dict[str, Any] | None:
    """The reply a waiter that died before replying would have sent: the container it started
    and recorded in ``pid.json``, when that container is (re-parented) our child. A record that
    is not (an earlier waiter's, or a container already reaped) is answered ``claimed``: the
    agent then follows the record (``runtime._await_claim``). None: nothing was started."""
    try:
        with open(os.path.join(state_dir, PID_FILE), "rb") as f:
            started = json.loads(f.read())
        pid = int(started["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return {"error": "the container's waiter exited after recording its start", "claimed": True}
    if started.get("start") is not None and proc_start_time(pid) != started["start"]:
        return {"error": "the container's waiter exited after recording its start", "claimed": True}
    return {"pid": pid, "start": started.get("start")}


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
        self.children: dict[int, Container] = {}  # container pid -> container
        self.starting: dict[int, tuple[Starting, _Client, Any]] = {}  # tag -> (start, requester, request id)
        self.waiters: dict[int, WaiterProc] = {}  # every waiter not reaped yet (its channel closed or not)
        self.tags = 0  # the last start's tag: a waiter's reply names its start by it
        self.queue: collections.deque[tuple[dict[str, Any], _Client]] = collections.deque()  # starts for a waiter
        # Every waiter inherits the read end; it reaches end of file when we die.
        self.lifeline, self._lifeline_w = os.pipe()
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
            self._dispatch()
            self._expire_drains()
            self._expire_idle()
            if not self.clients and not self.children and not self.starting and not self.queue and (
                    self.had_client or time.monotonic() - self.born > IDLE_EXIT_SECONDS):
                return

    def _timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [c.drain_deadline for c in self.children.values() if c.ended]
        if not self.had_client:
            deadlines.append(self.born + IDLE_EXIT_SECONDS)
        idle = self._idle()
        if len(idle) > KEEP_WAITERS:
            deadlines.append(idle[0].idle_since + IDLE_WAITER_SECONDS)
        if self.queue:
            deadlines.extend(p.sent_at + SLOW_START_SECONDS for p in self.waiters.values()
                             if p.starts and not p.closed and p.load < WAITER_CONTAINERS)
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
        self._settle_starts()  # the hello names every container whose exit is still to come
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
                warn(f"bad request {line[:200]!r}: {exc!r}")

    def _handle(self, client: _Client, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "start":
            self.queue.append((msg, client))  # handed to a waiter at the end of this round
        elif op == "signal":
            child = self.children.get(int(msg["pid"]))
            if child is not None and not child.ended:  # not reaped yet: the group id is still ours
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

    # ----------------------------------------------------------- waiters

    def _dispatch(self) -> None:
        """Hand the queued starts to waiters, in order, while one can take them."""
        while self.queue:
            try:
                proc = self._pick_waiter()
            except OSError as exc:  # cannot fork
                proc = None
                msg, client = self.queue.popleft()
                self._send(client, {"id": msg.get("id"), "error": str(exc), "errno": exc.errno, "claimed": False})
            if proc is None:
                return
            msg, client = self.queue.popleft()
            self._hand_over(msg, client, proc)

    def _pick_waiter(self) -> WaiterProc | None:
        """The least-loaded waiter with room that is not starting a container (of equals, the
        one idle the shortest: the longest idle are let go). Else a new waiter when all are
        full, or fewer than PARALLEL_STARTS run, or all with room are slow to start (a slow
        start holds up no other); None (wait for a reply) while one with room is starting one
        since less than SLOW_START_SECONDS."""
        best, replying, live = None, False, 0
        now = time.monotonic()
        for proc in self.waiters.values():
            live += not proc.closed
            if proc.closed or proc.load >= WAITER_CONTAINERS:
                continue
            if proc.starts:
                replying = replying or now - proc.sent_at < SLOW_START_SECONDS
            elif best is None or (proc.load, -proc.idle_since) < (best.load, -best.idle_since):
                best = proc
        if best is not None or (replying and live >= PARALLEL_STARTS):
            return best
        return self._fork_waiter()

    def _hand_over(self, msg: dict[str, Any], client: _Client, proc: WaiterProc) -> None:
        self.tags += 1
        try:
            start = hand_over(msg, proc, self.tags)
        except Exception as exc:  # noqa: BLE001 - a bad request must not take every container down
            if isinstance(exc, WaiterBroken):
                # What it holds of a half-sent start is unknown: its containers become ours
                # (a child subreaper's) once it is gone; see _waiter_gone.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                self._discard(proc)
            self._send(client, {"id": msg.get("id"), "error": str(exc), "errno": getattr(exc, "errno", None),
                                "claimed": False})
            return
        # The reply is an event like any other: meanwhile the loop serves other starts,
        # output and exits instead of blocking on this waiter.
        proc.starts[start.tag] = start
        proc.sent_at = time.monotonic()
        self.starting[start.tag] = (start, client, msg.get("id"))

    def _fork_waiter(self) -> WaiterProc:
        proc = fork_waiter(self.lifeline)
        proc.chan.setblocking(False)
        self.sel.register(proc.chan, selectors.EVENT_READ, (self._on_waiter, proc))
        self.waiters[proc.pid] = proc
        return proc

    def _idle(self) -> list[WaiterProc]:
        """The waiters running nothing, the longest idle first."""
        return sorted((p for p in self.waiters.values() if not p.closed and not p.load), key=lambda p: p.idle_since)

    def _discard(self, proc: WaiterProc) -> None:
        """Close a waiter's channel: an idle one exits at once (it stays in ``waiters`` until
        it is reaped)."""
        if proc.closed:
            return
        self.sel.unregister(proc.chan)
        proc.close()

    def _on_waiter(self, proc: WaiterProc, _mask: int) -> None:
        """A waiter's lines (start replies, ``done`` with an exit), or its end: then it has
        exited (killed), and what it held is settled once it is reaped (``_waiter_gone``)."""
        if proc.closed:
            return  # an event of this select round for a waiter discarded meanwhile
        lines = read_lines(proc)
        for msg in lines or ():
            self._on_waiter_line(proc, msg)
        if lines is None:
            self._discard(proc)

    def _on_waiter_line(self, proc: WaiterProc, msg: dict[str, Any]) -> None:
        if "tag" in msg:
            start = proc.starts.pop(msg["tag"], None)
            if start is not None:
                self._started(start, msg)
        elif msg.get("op") == "done":
            c = proc.containers.pop(msg.get("pid"), None)  # type: ignore[arg-type]
            if c is not None:
                self._waiter_ended(c, msg.get("exit"))
                self._unloaded(proc)
                self._maybe_finish(c)

    def _unloaded(self, proc: WaiterProc) -> None:
        """A start or a container of ``proc`` is over: once it runs nothing, it is idle (kept
        for the next starts, or let go when enough are)."""
        if proc.load or proc.closed:
            return
        proc.idle_since = time.monotonic()
        if len(self._idle()) > IDLE_WAITERS:
            self._discard(proc)

    def _expire_idle(self) -> None:
        """Let go of the waiters a burst of starts left idle (the longest idle go first)."""
        limit = time.monotonic() - IDLE_WAITER_SECONDS
        idle = self._idle()
        while len(idle) > KEEP_WAITERS and idle[0].idle_since <= limit:
            self._discard(idle.pop(0))

    def _started(self, start: Starting, reply: dict[str, Any] | None) -> None:
        """The waiter replied: answer the start and hold the container (or release the start)."""
        proc = start.proc
        _, client, rid = self.starting.pop(start.tag)
        proc.starts.pop(start.tag, None)
        try:
            c = finish_start(start, reply)
        except OSError as exc:
            self._unloaded(proc)  # it started nothing
            self._send(client, {"id": rid, "error": str(exc), "errno": exc.errno,
                                "claimed": isinstance(exc, RunClaimed)})
            return
        proc.containers[c.pid] = c
        self.children[c.pid] = c
        for fd, stream in c.fds.items():
            self.sel.register(fd, selectors.EVENT_READ, (self._on_pipe, (c, fd, stream)))
        self._send(client, {"id": rid, "pid": c.pid, "start": c.start})  # before its exit, if that came first
        self._maybe_finish(c)

    def _settle_starts(self) -> None:
        """Wait for every pending start's reply (an agent connects: its hello must name them)."""
        for proc in [p for p in self.waiters.values() if p.starts]:
            if not proc.closed:
                proc.chan.setblocking(True)
                try:
                    while proc.starts and not proc.closed:
                        self._on_waiter(proc, selectors.EVENT_READ)
                finally:
                    if not proc.closed:
                        proc.chan.setblocking(False)
            if proc.starts:  # it has exited, or is being killed: settled once it is reaped
                deadline = time.monotonic() + SETTLE_SECONDS
                while proc.pid in self.waiters and time.monotonic() < deadline:
                    self._reap_children()
                    if proc.pid in self.waiters:
                        time.sleep(0.001)

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
            warn(f"container {c.pid}: cannot write its log: {exc}")
        if stream == "stderr":
            c.stderr_tail = (c.stderr_tail + data)[-4096:]

    def _close_pipe(self, c: Container, fd: int) -> None:
        self.sel.unregister(fd)
        os.close(fd)
        del c.fds[fd]

    def _reap(self, wake_fd: int, _mask: int) -> None:
        """Reap waiters (their container has ended and its exit is recorded) and whatever
        re-parented to us as a subreaper."""
        with contextlib.suppress(OSError):
            while os.read(wake_fd, 4096):
                pass
        self._reap_children()

    def _reap_children(self) -> None:
        """Reap what exited: waiters (settling what each still held: ``_waiter_gone``),
        orphans of containers, and the containers of a waiter that died, which re-parent to
        us (a child subreaper): the exit of those is recorded here before they are reaped."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            c = self.children.get(pid)
            if c is not None and not c.ended and _same_process(c, pid):
                self._record_exit(c, info)  # our child now: its waiter died
                continue
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            proc = self.waiters.pop(pid, None)
            if proc is not None:
                self._waiter_gone(proc)

    def _waiter_gone(self, proc: WaiterProc) -> None:
        """A waiter was reaped (it was let go, or killed). Its last lines are read; a start
        it had not answered is settled by its ``pid.json``; its containers (re-parented to
        us once it was a zombie) are followed here, or were reaped by it after it recorded
        their exit."""
        if not proc.closed:
            proc.chan.settimeout(0.05)  # its end is closed: what it wrote, then end of file
            while (lines := read_lines(proc)) is not None:
                for msg in lines:
                    self._on_waiter_line(proc, msg)
            self._discard(proc)
        for start in list(proc.starts.values()):
            self._started(start, _recorded_start(start.spec["state_dir"]))
        for c in list(proc.containers.values()):
            if c.ended:
                continue
            try:
                info = os.waitid(os.P_PID, c.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                info = None
                alive = False
            else:
                alive = _same_process(c, c.pid)
            if not alive:  # the waiter reaped it, having recorded its exit (read by _maybe_finish)
                proc.containers.pop(c.pid, None)
                self._waiter_ended(c, None)
                self._maybe_finish(c)
            elif info is not None:
                self._record_exit(c, info)
            # else it runs, our child now: _reap_children records its exit

    def _record_exit(self, c: Container, info: Any) -> None:
        """What a waiter does on its container's exit, for a container whose waiter died:
        kill the rest of its group, record its exit, then reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(c.pid, signal.SIGKILL)
        record = exit_result(waitid_status(info), time.time(), _oom_killed(c.cgroup, None, False, b""))
        try:
            write_exit_record(c.spec["state_dir"], record)
        except FileNotFoundError:
            pass
        except OSError as exc:  # the agent hears it from us all the same
            warn(f"container {c.pid}: cannot record its exit: {exc}")
        with contextlib.suppress(ChildProcessError):
            os.waitpid(c.pid, 0)
        proc = self.waiters.get(c.waiter)
        if proc is not None:
            proc.containers.pop(c.pid, None)
        self._waiter_ended(c, record)
        self._maybe_finish(c)

    @staticmethod
    def _waiter_ended(c: Container, record: dict[str, Any] | None) -> None:
        """The waiter is done with ``c``: its exit is recorded (``record``, as in ``exit.json``;
        None when the waiter died), and its output has only the drain deadline left."""
        c.ended = True
        c.record = record
        c.finished_at = time.time()
        c.drain_deadline = time.monotonic() + DRAIN_SECONDS

    def _expire_drains(self) -> None:
        now = time.monotonic()
        for c in [c for c in self.children.values() if c.ended and c.drain_deadline <= now]:
            for fd in list(c.fds):
                self._close_pipe(c, fd)
            self._maybe_finish(c)

    def _maybe_finish(self, c: Container) -> None:
        """Once the waiter is done and the output drained: log closed, exit record (the
        waiter's, plus an OOM seen in stderr), .done, notify."""
        if not c.ended or c.fds or c.pid not in self.children:
            return
        del self.children[c.pid]
        with contextlib.suppress(OSError):
            c.writer.close()
        state_dir = c.spec["state_dir"]
        result = c.record or read_exit_record(state_dir)
        if result is None:  # the waiter died before recording it
            result = {"exitCode": 137, "finishedAt": c.finished_at, "reason": "ContainerStatusUnknown",
                      "message": "the container's waiter exited before recording its exit"}
        elif _oom_killed(None, c.rlimit, result.get("exitCode") != 0, c.stderr_tail) \
                and result.get("reason") != "OOMKilled":
            result.update(exitCode=137, reason="OOMKilled")
            try:
                write_exit_record(state_dir, result)
            except OSError as exc:
                warn(f"container {c.pid}: cannot record its exit: {exc}")
        try:
            _touch(c.spec["done"])
        except OSError as exc:  # the pod's directory was removed under us
            warn(f"container {c.pid}: cannot mark its log done: {exc}")
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
