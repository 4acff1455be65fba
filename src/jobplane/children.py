"""Child processes of ``jobplane server`` (``--processes 2``): start one, notice when it
exits, restart it with back-off, stop it before the parent's own shutdown goes further.

A child reads its configuration as the first line of its stdin and then watches stdin for
end-of-file: the parent holds the pipe's write end open for the child's whole life, so a
parent that dies in any way (SIGKILL included) closes it and the child stops itself. Nothing
else links the two (no shared memory, no signals from the child), so a child that crashes
leaves the parent serving, and the parent starts a new one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from jobplane.clock import Clock

log = logging.getLogger(__name__)

READY_FD_ENV = "JOBPLANE_CHILD_READY_FD"  # a pipe the child writes "ready" to (``signal_ready``)


@dataclass(frozen=True)
class RestartBackoff:
    """How long to wait before restarting a child that exited: ``base`` doubling up to
    ``cap``, back to ``base`` once a child had run ``stable`` seconds (a crash then is a new
    incident, not a crash loop). systemd's and kubelet's CrashLoopBackOff work alike."""

    base: float = 0.5
    cap: float = 30.0
    stable: float = 60.0

    def next_delay(self, previous: float | None, ran_for: float) -> float:
        if previous is None or ran_for >= self.stable:
            return self.base
        return min(self.cap, max(self.base, previous * 2))


class SupervisedChild:
    """One child process, kept running until ``stop``."""

    def __init__(self, name: str, argv: Sequence[str], config: bytes, *, clock: Clock | None = None,
                 backoff: RestartBackoff | None = None, term_timeout: float = 10.0,
                 env: dict[str, str] | None = None, ready_timeout: float | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.config = config if config.endswith(b"\n") else config + b"\n"
        self.clock = clock or Clock()
        self.backoff = backoff or RestartBackoff()
        self.term_timeout = term_timeout
        self.env = env
        # start() waits this long for the first child to say it is ready (None: not at all)
        self.ready_timeout = ready_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0  # how many times a child that exited was started again
        self.exits: list[int | None] = []  # the exit status of each child that ended on its own
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._started_at = 0.0
        self.started = asyncio.Event()  # set each time a child is spawned (tests wait on it)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def start(self) -> bool:
        """Spawn the first child (an OSError here is the caller's: nothing is running yet),
        then watch it in the background. With ``ready_timeout``, first wait for the child to
        say it is ready; returns whether it did (a child that dies first is restarted as any)."""
        ready = await self._spawn(want_ready=self.ready_timeout is not None)
        self._task = asyncio.create_task(self._watch(), name=f"child:{self.name}")
        if ready is None:
            return True
        try:
            said = await asyncio.wait_for(ready.readline(), self.ready_timeout)
        except TimeoutError:
            said = b""
        if said.strip() != b"ready":
            log.warning("%s process did not become ready within %gs", self.name, self.ready_timeout)
        return said.strip() == b"ready"

    async def _spawn(self, want_ready: bool = False) -> asyncio.StreamReader | None:
        self.started.clear()
        env = self.env
        ready: asyncio.StreamReader | None = None
        pass_fds: tuple[int, ...] = ()
        if want_ready:
            r, w = os.pipe()
            env = {**(env if env is not None else os.environ), READY_FD_ENV: str(w)}
            pass_fds = (w,)
            loop = asyncio.get_running_loop()
            ready = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(ready), os.fdopen(r, "rb", 0))
        try:
            proc = await asyncio.create_subprocess_exec(*self.argv, stdin=asyncio.subprocess.PIPE, env=env,
                                                        pass_fds=pass_fds)
        finally:
            for fd in pass_fds:
                os.close(fd)  # the child's copy is the only writer: its death reads as EOF
        assert proc.stdin is not None
        proc.stdin.write(self.config)
        with contextlib.suppress(ConnectionError):  # it died at once: _watch sees the exit
            await proc.stdin.drain()
        self.proc = proc
        self._started_at = self.clock.now()
        self.started.set()
        log.info("%s process started (pid %d)", self.name, proc.pid)
        return ready

    async def _watch(self) -> None:
        delay: float | None = None
        while not self._stopping:
            proc = self.proc
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            self._close_stdin(proc)
            ran_for = self.clock.now() - self._started_at
            self.exits.append(code)
            delay = self.backoff.next_delay(delay, ran_for)
            log.error("%s process (pid %d) exited with %s after %.1fs; restarting in %.1fs", self.name, proc.pid,
                      _describe(code), ran_for, delay)
            await self.clock.sleep(delay)
            if self._stopping:
                return
            try:
                await self._spawn()
                self.restarts += 1
            except OSError as exc:
                log.error("%s process: cannot start: %s", self.name, exc)
                self.proc = proc  # wait() on the dead one returns at once: the next round backs off further

    async def stop(self) -> int | None:
        """SIGTERM, ``term_timeout`` seconds to finish, then SIGKILL; returns the exit status."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.term_timeout)
            except TimeoutError:
                log.warning("%s process (pid %d) did not stop within %gs: killing it", self.name, proc.pid,
                            self.term_timeout)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._close_stdin(proc)
        return proc.returncode

    @staticmethod
    def _close_stdin(proc: asyncio.subprocess.Process) -> None:
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()


def _describe(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


def signal_ready() -> None:
    """In a child: tell a parent that waits (``ready_timeout``) that we are ready."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"ready\n")
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.close(int(fd))


async def watch_parent(stdin_fd: int = 0) -> None:
    """In a child: return when the parent is gone (its end of our stdin closed). The first
    line (the configuration) must have been read already."""
    loop = asyncio.get_running_loop()
    gone = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(stdin_fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data and not gone.done():
            gone.set_result(None)

    os.set_blocking(stdin_fd, False)
    loop.add_reader(stdin_fd, readable)
    try:
        await gone
    finally:
        loop.remove_reader(stdin_fd)
