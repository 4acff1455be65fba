"""Container log files: the format shared by the agent (writer) and the API server's
``log`` subresource (reader).

Layout: ``<data_dir>/pods/<pod-uid>/logs/<container>/<restartCount>.log`` in the CRI
format kubelet uses, one line per output line:

    2024-01-02T03:04:05.123456789Z stdout F the line's text

(``P`` instead of ``F`` for a partial line). When the container process has exited and
all its output is written, the agent creates ``<restartCount>.done`` beside the log, so a
``follow`` reader knows to stop at EOF.

Reading them with kubelet's log options (container, follow, tailLines, sinceSeconds,
sinceTime, timestamps, previous, limitBytes) lives here too, below the API server and the
agent, because both serve logs: the API server from its own data dir, a standalone agent
over its ``/containerLogs`` endpoint. Parsing and selection are pure (``LogOptions``,
``resolve_target``, ``parse_line``, ``select_lines``); only ``stream_log`` touches files
and sleeps.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobplane.api import errors
from jobplane.api.meta import parse_time
from jobplane.api.query import int_param


def container_log_dir(pods_dir: Path, pod_uid: str, container: str) -> Path:
    return pods_dir / pod_uid / "logs" / container


def log_path(pods_dir: Path, pod_uid: str, container: str, restart_count: int) -> Path:
    return container_log_dir(pods_dir, pod_uid, container) / f"{restart_count}.log"


def done_marker(pods_dir: Path, pod_uid: str, container: str, restart_count: int) -> Path:
    return container_log_dir(pods_dir, pod_uid, container) / f"{restart_count}.done"


_POLL = 0.1
_POD_CHECK_EVERY = 10  # polls between checks that the pod still exists


@dataclass
class LogOptions:
    container: str | None = None
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: float | None = None
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, query: Any) -> LogOptions:
        def num(name: str) -> int | None:
            return int_param(query, name, what="invalid")

        def flag(name: str) -> bool:
            return str(query.get(name, "")).lower() in ("true", "1")

        opts = cls(container=query.get("container") or None, follow=flag("follow"),
                   previous=flag("previous"), timestamps=flag("timestamps"), tail_lines=num("tailLines"),
                   since_seconds=num("sinceSeconds"), limit_bytes=num("limitBytes"))
        since_time = query.get("sinceTime")
        if since_time:
            try:
                opts.since_time = parse_time(since_time)
            except ValueError:
                raise errors.bad_request(f"invalid sinceTime: {since_time!r}") from None
        # upstream's ValidatePodLogOptions, in its order, every problem at once
        problems = []
        if opts.tail_lines is not None and opts.tail_lines < 0:
            problems.append(errors.invalid("tailLines", opts.tail_lines, "must be greater than or equal to 0"))
        if opts.limit_bytes is not None and opts.limit_bytes < 1:
            problems.append(errors.invalid("limitBytes", opts.limit_bytes, "must be greater than 0"))
        if opts.since_seconds is not None and opts.since_seconds < 1:
            problems.append(errors.invalid("sinceSeconds", opts.since_seconds, "must be greater than 0"))
        if problems:
            raise errors.invalid_object("PodLogOptions", "", "", problems)
        return opts


@dataclass(frozen=True)
class LogTarget:
    """Which file to read: the container name and the restart count whose log is wanted."""

    container: str
    restart_count: int
    running: bool  # the container may still write (follow waits for more)


def _names(pod: dict[str, Any], field: str) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get(field) or ()]


def resolve_target(pod: dict[str, Any], opts: LogOptions) -> LogTarget:
    """Pick the container and restart count like kubelet does; raise 400 with upstream's
    messages when the choice is ambiguous or the container has not started."""
    name = pod["metadata"]["name"]
    containers = _names(pod, "containers")
    init = _names(pod, "initContainers")
    container = opts.container
    if not container:
        if len(containers) == 1:
            container = containers[0]
        else:
            msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
            if init:
                msg += f" or one of the init containers: [{' '.join(init)}]"
            raise errors.bad_request(msg)
    elif container not in containers and container not in init:
        msg = f"container {container} is not valid for pod {name}"
        raise errors.bad_request(msg)
    status = pod.get("status") or {}
    cstatus = None
    for field in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(field) or ():
            if cs.get("name") == container:
                cstatus = cs
    restart = int((cstatus or {}).get("restartCount") or 0)
    state = (cstatus or {}).get("state") or {}
    last = (cstatus or {}).get("lastState") or {}
    # The run lastState describes: while in back-off it is the latest (restartCount counts only
    # the restarts made, as kubelet's); otherwise the one before the current.
    crash_loop = (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff"
    last_run = restart if crash_loop else max(restart - 1, 0)
    if opts.previous:
        if not last.get("terminated") and restart < 1:
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        return LogTarget(container, last_run, False)
    if cstatus is None or ("waiting" in state and not last.get("terminated")):
        reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
        raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    if "waiting" in state:  # crash loop: show the last run, as kubelet does
        return LogTarget(container, last_run, False)
    return LogTarget(container, restart, "running" in state)


def parse_line(raw: bytes) -> tuple[bytes, bytes, bool] | None:
    """A CRI log line -> (timestamp, content, complete). None for a malformed line."""
    line = raw[:-1] if raw.endswith(b"\n") else raw
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, _stream, tag = parts[0], parts[1], parts[2]
    content = parts[3] if len(parts) == 4 else b""
    return ts, content, tag != b"P"


def render(ts: bytes, content: bytes, complete: bool, timestamps: bool) -> bytes:
    out = content + b"\n" if complete else content
    return ts + b" " + out if timestamps else out


def _since_cutoff(opts: LogOptions, now: float) -> float | None:
    if opts.since_seconds is not None:
        return now - opts.since_seconds
    return opts.since_time


def select_lines(raw_lines: list[bytes], opts: LogOptions, now: float) -> list[bytes]:
    """Apply sinceSeconds/sinceTime, tailLines and timestamps to complete CRI lines."""
    cutoff = _since_cutoff(opts, now)
    out: deque[bytes] | list[bytes] = deque(maxlen=opts.tail_lines) if opts.tail_lines is not None else []
    for raw in raw_lines:
        parsed = parse_line(raw)
        if parsed is None:
            continue
        ts, content, complete = parsed
        if cutoff is not None and (_ts_seconds(ts) or 0.0) < cutoff:
            continue
        out.append(render(ts, content, complete, opts.timestamps))
    return list(out)


def _ts_seconds(ts: bytes) -> float | None:
    text = ts.decode(errors="replace")
    # Trim nanoseconds to microseconds for fromisoformat.
    if "." in text:
        head, _, frac = text.partition(".")
        frac = frac.rstrip("Z")
        text = f"{head}.{frac[:6]}Z"
    try:
        return parse_time(text)
    except ValueError:
        return None


class _Limiter:
    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def cut(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[: self.left]
        self.left -= len(data)
        return data

    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0


async def stream_log(pods_dir: Path, pod: dict[str, Any], opts: LogOptions, now: float,
                     pod_exists: Callable[[], Awaitable[bool]]) -> AsyncGenerator[bytes, None]:
    """Yield log bytes for the chosen container; with ``follow``, keep yielding until the
    ``.done`` marker exists and the file is read to its end, or the pod is gone."""
    target = resolve_target(pod, opts)
    uid = pod["metadata"].get("uid", "")
    path = log_path(pods_dir, uid, target.container, target.restart_count)
    done = done_marker(pods_dir, uid, target.container, target.restart_count)
    limiter = _Limiter(opts.limit_bytes)
    pos = 0
    pending = b""
    if path.exists():
        with open(path, "rb") as fh:
            data = fh.read()
        pos = len(data)
        lines = data.splitlines(keepends=True)
        if lines and not lines[-1].endswith(b"\n"):
            pending = lines.pop()
        chunk = b"".join(select_lines(lines, opts, now))
        chunk = limiter.cut(chunk)
        if chunk:
            yield chunk
    if not opts.follow or not target.running or limiter.exhausted:
        return
    cutoff_opts = LogOptions(timestamps=opts.timestamps)
    polls = 0
    while not limiter.exhausted:
        finished = done.exists()
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            size = 0
        if size > pos:
            with open(path, "rb") as fh:
                fh.seek(pos)
                data = fh.read(size - pos)
            pos += len(data)
            data = pending + data
            lines = data.splitlines(keepends=True)
            pending = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
            chunk = limiter.cut(b"".join(select_lines(lines, cutoff_opts, now)))
            if chunk:
                yield chunk
            continue
        if finished:
            return
        polls += 1
        if polls % _POD_CHECK_EVERY == 0 and not await pod_exists():
            return
        await asyncio.sleep(_POLL)
