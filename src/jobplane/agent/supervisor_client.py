"""The agent's connection to the node's container supervisor (``agent/supervisor.py``).

``connect`` reaches the supervisor serving the data directory, starting one when none
runs. Replies and exit notifications arrive on one reader task; every container the
supervisor still holds has an exit future here (registered from the start reply, or
from the ``hello`` a re-connecting agent receives), resolved with the raw exit record,
or with None when the connection is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from jobplane.agent import supervisor
from jobplane.clock import Clock

log = logging.getLogger(__name__)

SUPERVISOR_SCRIPT = supervisor.__file__
CONNECT_ATTEMPTS = 5


class SupervisorLost(ConnectionError):
    """The supervisor went away (it was killed); containers it held can only be polled."""


def spawn_supervisor(data_dir: Path, timeout: float = 30.0) -> str:
    """Start a supervisor for ``data_dir`` (blocking: run it in a thread). Returns its first
    line: ``ready``, or ``busy`` when another one holds the directory."""
    fd = os.open(data_dir / supervisor.LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    with open(fd, "ab") as errlog:
        # -I -S: stdlib only, no site packages to import; a new session, so it outlives us.
        proc = subprocess.Popen([sys.executable, "-I", "-S", SUPERVISOR_SCRIPT, str(data_dir)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errlog,
                                start_new_session=True, close_fds=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return ""
    return out.decode(errors="replace").strip()


class SupervisorClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: dict[str, Any]) -> None:
        self._reader = reader
        self._writer = writer
        self.pid: int = hello["pid"]
        self.alive = True
        self.on_lost: Any = None  # called once when the supervisor goes away (not on close)
        self._closing = False
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future] = {}
        loop = asyncio.get_running_loop()
        self._exits: dict[int, asyncio.Future] = {int(pid): loop.create_future() for pid in hello["children"]}
        self._task = asyncio.ensure_future(self._read_loop())

    @classmethod
    async def connect(cls, data_dir: Path, clock: Clock) -> SupervisorClient:
        data_dir.mkdir(parents=True, exist_ok=True)
        sock = str(data_dir / supervisor.SOCKET_NAME)
        for _ in range(CONNECT_ATTEMPTS):
            with contextlib.suppress(OSError, ValueError, asyncio.TimeoutError):
                return await cls._open(sock)
            if await asyncio.to_thread(spawn_supervisor, data_dir) != "ready":
                await clock.sleep(0.1)  # one is starting or just exiting: try again
        raise OSError(f"cannot reach or start the container supervisor for {data_dir}")

    @classmethod
    async def _open(cls, sock: str) -> SupervisorClient:
        addr, dir_fd = supervisor.unix_address(sock)
        try:
            reader, writer = await asyncio.open_unix_connection(addr, limit=1 << 22)
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
        line = await asyncio.wait_for(reader.readline(), 10)
        if not line:  # accepted by a supervisor that was exiting
            writer.close()
            raise ConnectionResetError("supervisor closed the connection")
        return cls(reader, writer, orjson.loads(line))

    async def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Start a container; the reply has ``pid`` and ``start``, or ``error``."""
        if not self.alive:
            raise SupervisorLost("the container supervisor exited")
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        self._writer.write(orjson.dumps({"op": "start", "id": rid, **spec}) + b"\n")
        reply = await fut
        if reply is None:
            raise SupervisorLost("the container supervisor exited")
        return reply

    def exit_future(self, pid: int) -> asyncio.Future | None:
        """The pending exit of a container this supervisor holds, or None if it holds no such pid."""
        return self._exits.get(pid) if self.alive else None

    def signal(self, pid: int, sig: int) -> bool:
        """Signal the container's process group; False when the supervisor is gone."""
        if not self.alive or self._writer.is_closing():
            return False
        self._writer.write(orjson.dumps({"op": "signal", "pid": pid, "sig": int(sig)}) + b"\n")
        return True

    async def close(self) -> None:
        self._closing = True
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while line := await self._reader.readline():
                msg = orjson.loads(line)
                if "id" in msg:
                    if "pid" in msg:  # before anything else is read: its exit comes later
                        self._exits[msg["pid"]] = loop.create_future()
                    fut = self._replies.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                elif msg.get("op") == "exit":
                    fut = self._exits.pop(msg["pid"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg["exit"])
        except (OSError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError) as exc:
            log.warning("container supervisor connection failed: %s", exc)
        finally:
            self.alive = False
            for fut in [*self._replies.values(), *self._exits.values()]:
                if not fut.done():
                    fut.set_result(None)
            self._replies.clear()
            self._exits.clear()
            if not self._writer.is_closing():
                log.warning("container supervisor (pid %d) went away", self.pid)
                self._writer.close()
            if not self._closing and self.on_lost is not None:
                self.on_lost()
