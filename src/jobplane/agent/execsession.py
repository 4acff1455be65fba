"""A command run in a running container for ``pods/exec`` on the host runtime: the
container's environment and working directory, pipes or a pseudo-terminal (with resize),
and kubelet's exit status. The runtime decides how the process enters the container
(``Runtime.exec``); this module only runs and streams it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from jobplane import remotecommand as rc


@dataclass
class ExecSpec:
    """What to run: argv (argv[0] resolved by the runtime), environment, working directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    tty: bool
    stdin: bool
    size: tuple[int, int] | None = None  # (width, height) of the terminal


def _controlling_tty() -> None:  # runs in the child before exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class ProcessSession:
    """An exec'd process behind the ``remotecommand.Session`` interface."""

    def __init__(self, proc: asyncio.subprocess.Process, argv: list[str], master: int | None) -> None:
        self.proc = proc
        self.argv = argv
        self.master = master
        self._queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._readers: list[asyncio.Task] = []
        self._open = 0
        loop = asyncio.get_running_loop()
        if master is not None:
            self._open = 1
            loop.add_reader(master, self._read_master)
        else:
            for channel, stream in ((rc.STDOUT, proc.stdout), (rc.STDERR, proc.stderr)):
                if stream is not None:
                    self._open += 1
                    self._readers.append(asyncio.create_task(self._read_stream(channel, stream)))
            if not self._open:
                self._queue.put_nowait(None)

    @classmethod
    async def start(cls, spec: ExecSpec) -> ProcessSession:
        """Start the command; OSError (not found, not executable) for the caller to report."""
        if spec.tty:
            master, slave = os.openpty()
            if spec.size and spec.size[0] > 0 and spec.size[1] > 0:
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", spec.size[1], spec.size[0], 0, 0))
            try:
                proc = await asyncio.create_subprocess_exec(
                    *spec.argv, stdin=slave, stdout=slave, stderr=slave, env=spec.env, cwd=spec.cwd,
                    start_new_session=True, preexec_fn=_controlling_tty)
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            return cls(proc, spec.argv, master)
        proc = await asyncio.create_subprocess_exec(
            *spec.argv, stdin=asyncio.subprocess.PIPE if spec.stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=spec.env, cwd=spec.cwd,
            start_new_session=True)
        return cls(proc, spec.argv, None)

    def _read_master(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: every process holding the terminal has gone
        if data:
            self._queue.put_nowait((rc.STDOUT, data))
            return
        asyncio.get_running_loop().remove_reader(self.master)
        self._queue.put_nowait(None)

    async def _read_stream(self, channel: int, stream: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await stream.read(65536)
                if not data:
                    break
                await self._queue.put((channel, data))
        finally:
            self._open -= 1
            if self._open == 0:
                await self._queue.put(None)

    async def write_stdin(self, data: bytes) -> None:
        if self.master is not None:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self.master, view)
                except BlockingIOError:
                    await asyncio.sleep(0.01)
                    continue
                view = view[n:]
            return
        stdin = self.proc.stdin
        if stdin is not None and not stdin.is_closing():
            with contextlib.suppress(ConnectionError):
                stdin.write(data)
                await stdin.drain()

    async def close_stdin(self) -> None:
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.write(self.master, b"\x04")  # end of file, as a terminal says it
            return
        stdin = self.proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()

    def resize(self, width: int, height: int) -> None:
        if self.master is not None and width > 0 and height > 0:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item

    async def wait(self) -> dict[str, Any]:
        code = await self.proc.wait()
        if code < 0:
            code = 128 - code  # killed by a signal: the shell's convention, as runc reports it
        return rc.exit_status(self.argv, code)

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await self.proc.wait()
        for task in self._readers:
            task.cancel()
        if self.master is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self.master)
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None


async def run_to_end(session: ProcessSession, limit: int) -> tuple[int, bytes]:
    """Run an exec'd command that reads no stdin to its end (CRI ``ExecSync``, for probes
    and lifecycle hooks): its exit code (128+N when killed by signal N) and the first
    ``limit`` bytes of its stdout and stderr as they came. Cancelling it kills the command."""
    out = bytearray()
    try:
        async for _channel, data in session.output():
            if len(out) < limit:
                out.extend(data[:limit - len(out)])
        code = await session.proc.wait()
    finally:
        await session.close()
    return (128 - code if code < 0 else code), bytes(out)


class AttachSession:
    """An attachment to a ``stdin``/``tty`` container through its relay's socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, name: str, size: tuple[int, int] | None) -> AttachSession:
        reader, writer = await asyncio.open_unix_connection("\0" + name)
        session = cls(reader, writer)
        if size:
            session.resize(*size)
        return session

    def _send(self, channel: int, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(struct.pack(">BI", channel, len(data)) + data)

    async def write_stdin(self, data: bytes) -> None:
        self._send(rc.STDIN, data)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def close_stdin(self) -> None:
        self._send(rc.CLOSE, b"")

    def resize(self, width: int, height: int) -> None:
        if width > 0 and height > 0:
            self._send(rc.RESIZE, f"{width},{height}".encode())

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while True:
            try:
                header = await self.reader.readexactly(5)
                channel, size = struct.unpack(">BI", header)
                data = await self.reader.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            yield channel, data

    async def wait(self) -> dict[str, Any]:
        return rc.success_status()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
