"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): where the server's time goes.

Usage: .venv/bin/python bench/profile_top.py PROFILE.txt [--top 5]

Prints the top self-time frames (the leaf function that was on CPU) and the top inclusive
jobplane frames (a jobplane function anywhere on the stack), each as a share of all samples.
Idle samples (the event loop waiting in select/epoll) are counted and shown separately.
Profiles recorded with ``--threads`` (benchlib.PySpy does) are restricted to the event-loop
thread (the one running ``asyncio`` ``run_forever``): a single-process asyncio server is bound by
that thread, and worker threads (SQLite commits, waitpid) mostly wait.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME_RE = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")
IDLE = ("select (selectors.py", "EpollSelector.select", "_run_once (asyncio/base_events.py:1", "KqueueSelector")


def _strip(frame: str) -> str:
    """``func (path/file.py:123)`` -> ``path/file.py:func`` (line numbers vary within a function)."""
    m = FRAME_RE.match(frame)
    if not m:
        return frame
    return f"{m.group('file')}:{m.group('func')}"


def summarise(path: Path, top: int) -> tuple[int, int, list[tuple[str, int]], list[tuple[str, int]]]:
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = idle = 0
    lines = [ln.rpartition(" ") for ln in path.read_text(errors="replace").splitlines()]
    lines = [(stack.split(";"), int(count)) for stack, _, count in lines if stack and count.isdigit()]
    loop_thread = next((f[0] for f, _ in lines if f[0].startswith("thread") and
                        ("MainThread" in f[0] or any("run_forever" in x for x in f))), None)
    for frames, n in lines:
        if loop_thread is not None:
            if frames[0] != loop_thread:
                continue
            frames = frames[1:]
        if not frames:
            continue
        total += n
        if any(frames[-1].startswith(i) or i in frames[-1] for i in IDLE):
            idle += n
            continue
        self_t[_strip(frames[-1])] += n
        seen = {_strip(f) for f in frames if "jobplane/" in f and "cli/" not in f and "server.py" not in f}
        for f in seen:
            incl[f] += n
    return total, idle, self_t.most_common(top), incl.most_common(top)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("profiles", nargs="+")
    p.add_argument("--top", type=int, default=5)
    args = p.parse_args()
    for prof in args.profiles:
        total, idle, self_t, incl = summarise(Path(prof), args.top)
        busy = total - idle
        print(f"\n### {prof}: {total} samples, {idle / max(total, 1):.0%} idle (event loop waiting)\n")
        print("| self time (leaf frame) | share of busy samples |")
        print("|---|---|")
        for name, n in self_t:
            print(f"| `{name}` | {n / max(busy, 1):.1%} |")
        print("\n| inclusive (jobplane frame on the stack) | share of busy samples |")
        print("|---|---|")
        for name, n in incl:
            print(f"| `{name}` | {n / max(busy, 1):.1%} |")


if __name__ == "__main__":
    main()
