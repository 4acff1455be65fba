"""Container supervisor shim: ``python -m jobplane.agent.shim SPEC.json``.

The agent starts one shim per container process, in a new session (its own process
group). The shim runs the command as its child in that same group, writes the child's
stdout/stderr to the CRI-format log file, and records the exit code in a file. That is
what makes agent restarts recoverable: a re-started agent cannot ``wait()`` for a process
that is not its child, but it can read the exit file the shim leaves behind, and the logs
keep being written while no agent runs.

The shim ignores SIGTERM/SIGINT: the agent signals the whole process group, so the
container receives the signal itself and the shim stays to record how it ended. A
SIGKILL of the group kills the shim too; the agent then reports exit code 137 itself.

Standard library only, and nothing from jobplane, so the shim starts fast.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

MAX_LINE = 16 * 1024  # kubelet splits longer lines into partial (P) entries
_OOM_HINTS = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc", b"out of memory")


def _timestamp() -> bytes:
    now = time.time()
    base = datetime.fromtimestamp(int(now), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{int((now % 1) * 1e9):09d}Z".encode()


class CriWriter:
    """Writes ``<time> <stream> <F|P> <text>`` lines, flushing each so followers see them."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the shim
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl == -1:
                break
            self._write(stream, b"F", buf[:nl])
            buf = buf[nl + 1:]
        while len(buf) >= MAX_LINE:
            self._write(stream, b"P", buf[:MAX_LINE])
            buf = buf[MAX_LINE:]
        self.pending[stream] = buf

    def close(self) -> None:
        for stream, rest in self.pending.items():
            if rest:
                self._write(stream, b"F", rest)
        self.file.close()

    def _write(self, stream: str, tag: bytes, text: bytes) -> None:
        self.file.write(_timestamp() + b" " + stream.encode() + b" " + tag + b" " + text + b"\n")


def _preexec(spec: dict[str, Any]) -> None:
    # The shim ignores these; ignored dispositions survive exec, the container must not inherit them.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    cgroup = spec.get("cgroup")
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write("0")
    limit = spec.get("rlimit_as")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))


def _oom_killed(spec: dict[str, Any], exit_code: int, stderr_tail: bytes) -> bool:
    cgroup = spec.get("cgroup")
    if cgroup:
        try:
            with open(os.path.join(cgroup, "memory.events")) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
        except OSError:
            pass
        return False
    return bool(spec.get("rlimit_as")) and exit_code != 0 and any(h in stderr_tail for h in _OOM_HINTS)


def _write_json(path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the container process to completion; returns what goes into the exit file."""
    writer = CriWriter(spec["log"])
    try:
        proc = subprocess.Popen(
            spec["argv"], executable=spec["executable"], env=spec["env"], cwd=spec.get("cwd") or None,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=lambda: _preexec(spec), close_fds=True,
        )
    except OSError as exc:
        writer.close()
        return {"exitCode": 128, "reason": "StartError", "message": str(exc), "finishedAt": time.time()}
    with open(spec["pid_file"], "w") as f:
        f.write(str(proc.pid))
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    stderr_tail = b""
    open_streams = 2
    while open_streams:
        for key, _ in sel.select():
            data = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
            if not data:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            writer.feed(key.data, data)
            if key.data == "stderr":
                stderr_tail = (stderr_tail + data)[-4096:]
    code = proc.wait()
    writer.close()
    result: dict[str, Any] = {"finishedAt": time.time()}
    if code < 0:
        result.update(exitCode=128 - code, signal=-code)
    else:
        result["exitCode"] = code
    if _oom_killed(spec, result["exitCode"], stderr_tail):
        result.update(exitCode=137, reason="OOMKilled")
    return result


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(argv[1]) as f:
        spec = json.load(f)
    result = run(spec)
    _write_json(spec["exit"], result)
    open(spec["done"], "w").close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
