"""Throughput benchmark: an Indexed Job of N completions of ``true`` at parallelism P on a real
``jobplane server`` with its embedded agent; time from create to the Complete condition.

Baseline, measured in the same run: ``seq N | xargs -P P -n 1 true`` (the same N processes with
the same concurrency, no control plane). Target: at least half the xargs rate; server peak RSS
below 200 MB.

Usage: .venv/bin/python bench/bench_throughput.py [--completions 2000] [--parallelism 50]
                                                  [--profile FILE.txt] [--runtime host|podman|docker]
                                                  [--modes both|on|off] [--processes 1,2] [--rounds N]

``--runtime podman`` (or docker) adds a run of the image runtime (each container from a small
local busybox image through the engine) beside the host runtime's, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import re
import resource as rusage
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import floors
import orjson
from benchlib import (
    CpuGroup,
    PySpy,
    bench_image,
    indexed_job,
    jobplane_processes,
    node_supervisors,
    print_machine,
    print_table,
    record_summary,
    remove_engine_leftovers,
    start_server,
    wait_job_finished,
)


def xargs_baseline(n: int, parallelism: int) -> float:
    """Seconds for ``xargs -P parallelism -n 1 true`` over n inputs."""
    return floors.xargs_run(["true"], n, parallelism)[0]


def sandbox_floor_row(n: int, parallelism: int, base_rate: float, label: str = "") -> tuple[list, float | None]:
    """The table row of the sandbox alone (the agent's bwrap command line around ``true``, by
    xargs at the same parallelism) and its rate; no row without bubblewrap."""
    got = floors.sandbox_xargs(n, parallelism)
    if got is None:
        return [], None
    wall, _cpu = got  # its CPU misses the sandbox's init (bwrap's pid 1 outlives bwrap: RESULTS §19b)
    return [f"xargs -P {parallelism}, each `true` in the pod sandbox (floor{label})",
            wall, n / wall, f"{n / wall / base_rate:.3f}x", "1.00x", "-", "-"], n / wall


WRITE_RE = re.compile(r'^jobplane_storage_(writes|write_bytes)_total\{resource="([^"]*)",type="([^"]*)"\} (\S+)$', re.M)


async def store_writes(api) -> dict[tuple[str, str], list[float]]:
    """(resource, event type) -> [changes, bytes] committed so far (the server's /metrics)."""
    async with api.get("/metrics") as r:
        text = await r.text()
    out: dict[tuple[str, str], list[float]] = {}
    for what, resource, etype, value in WRITE_RE.findall(text):
        out.setdefault((resource, etype), [0.0, 0.0])[0 if what == "writes" else 1] = float(value)
    return out


async def run_job(srv, n: int, parallelism: int, timeout: float, image: str = "local"
                  ) -> tuple[float, dict, dict[tuple[str, str], list[float]]]:
    """Seconds from create to finished, the final Job, and the store writes the Job made."""
    async with srv.session() as api:
        body = indexed_job("throughput", n, parallelism, ["true"], image)
        before = await store_writes(api)
        t = time.perf_counter()
        async with api.post("/apis/batch/v1/namespaces/default/jobs", json=body) as r:
            assert r.status == 201, await r.text()
        job = await wait_job_finished(api, "default", "throughput", timeout, poll=0.05)
        elapsed = time.perf_counter() - t
        await asyncio.sleep(1.0)  # the agent's and controllers' last writes (events, finalizers)
        after = await store_writes(api)
        diff = {k: [v[0] - before.get(k, [0, 0])[0], v[1] - before.get(k, [0, 0])[1]] for k, v in after.items()}
        return elapsed, job, {k: v for k, v in diff.items() if v[0]}


def supervisor_pid(data_dir: Path, server_pid: int) -> int | None:
    """The node supervisor of ``data_dir`` (its own session, so not a child of the server;
    its waiters share its command line, and ``node_supervisors`` leaves them out)."""
    found = node_supervisors(data_dir)
    return found[0] if found else None


class SupervisorSpy:
    """py-spy of the node supervisor, which the agent starts with its first container: a thread
    waits for it to appear, then records it until the block ends."""

    def __init__(self, data_dir: Path, server_pid: int, out: str | None) -> None:
        self.data_dir, self.server_pid, self.out = data_dir, server_pid, out
        self.spy: PySpy | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._wait, daemon=True)

    def _wait(self) -> None:
        while not self._stop.wait(0.02):
            pid = supervisor_pid(self.data_dir, self.server_pid)
            if pid:
                self.spy = PySpy(pid, self.out).__enter__()
                return

    def __enter__(self) -> SupervisorSpy:
        if self.out:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.out:
            self._thread.join()
        if self.spy is not None:
            self.spy.__exit__()


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of ``pid`` and its reaped children (/proc/PID/stat fields 14-17)."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` itself, not of the children it reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def supervisor_cpu_seconds(pid: int | None) -> tuple[float, float, float]:
    """``cpu_seconds`` of the node supervisor plus that of its live children: the waiters it
    keeps between containers (with the containers they reaped) have not been reaped yet.
    Also the parts: the supervisor's own CPU, and its live waiters' own (without the
    containers they reaped; a waiter let go meanwhile counts with the containers)."""
    if not pid:
        return 0.0, 0.0, 0.0
    try:
        kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        kids = []
    return (cpu_seconds(pid) + sum(cpu_seconds(k) for k in kids), own_cpu_seconds(pid),
            sum(own_cpu_seconds(k) for k in kids))


def bench_cpu_seconds() -> float:
    """This benchmark's own CPU and that of the children it reaped (py-spy)."""
    own, kids = rusage.getrusage(rusage.RUSAGE_SELF), rusage.getrusage(rusage.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def thread_cpu_seconds(pid: int) -> float:
    """User + system CPU of the main thread of ``pid`` (the server's event loop): the rest of the
    server's CPU is its threads' (SQLite commits, file work handed to the default executor)."""
    try:
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def print_writes(title: str, writes: dict[tuple[str, str], list[float]], pods: int) -> None:
    rows = [[resource, etype, n / pods, size / pods, size / n]
            for (resource, etype), (n, size) in sorted(writes.items(), key=lambda kv: -kv[1][0])]
    n_all, size_all = sum(v[0] for v in writes.values()), sum(v[1] for v in writes.values())
    rows.append(["all", "", n_all / pods, size_all / pods, size_all / max(n_all, 1)])
    print_table(title, ["resource", "type", "writes per pod", "bytes per pod", "bytes per write"], rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--completions", type=int, default=2000)
    p.add_argument("--parallelism", type=int, default=50)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--profile", default=None,
                   help="py-spy raw profile of the server during the job (first round); the node supervisor's "
                        "and the agent process's go to the same name with .supervisor / .agent before the extension")
    p.add_argument("--modes", choices=["both", "on", "off"], default="both",
                   help="the sandbox modes to run (both: on and off, alternating)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run sandbox on/off this many times, alternating (on a shared machine the load drifts "
                        "during a run; the median of alternating rounds is fairer than one of each)")
    p.add_argument("--data-dir-parent", default=None,
                   help="create the server's data dir here (e.g. /dev/shm to take the disk out of the loop)")
    p.add_argument("--runtime", choices=["host", "podman", "docker"], default="host",
                   help="also run the image runtime through this engine (host: the host runtime only)")
    p.add_argument("--processes", default="",
                   help="server --processes values to run in each mode, alternating, e.g. 1,2 (default: the "
                        "server's own)")
    p.add_argument("--base-src", default=None,
                   help="also run a server from this src/ directory (e.g. a worktree of main) as \"base\" beside "
                        "this checkout's \"new\", alternating which goes first each round")
    args = p.parse_args()
    print_machine()

    base = xargs_baseline(args.completions, args.parallelism)
    base_rate = args.completions / base
    rows: list[list] = [[f"xargs -P {args.parallelism} (baseline)", base, base_rate, "1.00x", "-", "-", "-"]]
    floor_row, floor_rate = sandbox_floor_row(args.completions, args.parallelism, base_rate)
    rows += [floor_row] if floor_row else []
    rss_rows = []
    cpu_rows: list[list] = []
    write_tables: list[tuple[str, dict[tuple[str, str], list[float]]]] = []
    # The pod sandbox (bubblewrap, the default) and without it, in the same run.
    modes: list[tuple[str, list[str], str]] = [("sandbox on", [], "local"), ("sandbox off", ["--no-sandbox"], "local")]
    if args.modes != "both":
        modes = [m for m in modes if m[0] == f"sandbox {args.modes}"]
    procs = [n.strip() for n in args.processes.split(",") if n.strip()]
    if procs:
        modes = [(f"{mode}, --processes {n}", [*flags, "--processes", n], image)
                 for mode, flags, image in modes for n in procs]
    variants = [("", None)]
    if args.base_src:
        variants = [("base", {"PYTHONPATH": str(Path(args.base_src).resolve())}), ("new", None)]
    per_round = len(modes) * len(variants)
    runs = []
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        runs += [(f"{mode}, {tag}" if tag else mode, flags, image, env, tag) for mode, flags, image in modes
                 for tag, env in order]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # Everything started from here on runs in this cgroup (root only): the node supervisor's
    # column is then also the group's CPU less the server's, the agent's and this benchmark's.
    group = CpuGroup.create()
    if group is not None:
        atexit.register(group.close)
    rates: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    if args.runtime != "host":
        runs.append((f"image runtime ({args.runtime})", ["--runtime", args.runtime], bench_image(args.runtime),
                     None, ""))
    for round_no, (mode, flags, image, env, tag) in enumerate(runs):
        if args.rounds > 1 and round_no and round_no % per_round == 0:  # a baseline per round
            base = xargs_baseline(args.completions, args.parallelism)
            base_rate = args.completions / base
            rows.append([f"xargs -P {args.parallelism} (baseline, round {round_no // per_round + 1})", base,
                         base_rate, "1.00x", "-", "-", "-"])
            floor_row, floor_rate = sandbox_floor_row(args.completions, args.parallelism, base_rate,
                                                      f", round {round_no // per_round + 1}")
            rows += [floor_row] if floor_row else []
        data_dir = (Path(tempfile.mkdtemp(prefix="jp-bench-", dir=args.data_dir_parent))
                    if args.data_dir_parent else None)
        srv = start_server(agent=True, data_dir=data_dir, extra=flags, env=env)
        try:
            time.sleep(1.0)  # let the agent register its node
            profile = args.profile if round_no == 0 or (tag and round_no < len(variants)) else None
            if profile and tag:
                profile = f"{Path(profile).with_suffix('')}.{tag}{Path(profile).suffix}"
            sup_profile = f"{Path(profile).with_suffix('')}.supervisor{Path(profile).suffix}" if profile else None
            sup = supervisor_pid(srv.data_dir, srv.pid)
            agent = next((pid for pid, role in jobplane_processes(srv.pid, srv.data_dir).items()
                          if role == "agent process"), None)
            cpu0 = cpu_seconds(srv.pid), supervisor_cpu_seconds(sup), cpu_seconds(agent), thread_cpu_seconds(srv.pid)
            cg0 = (group.usage(), bench_cpu_seconds()) if group else (0.0, 0.0)
            agent_profile = f"{Path(profile).with_suffix('')}.agent{Path(profile).suffix}" if profile else None
            with PySpy(srv.pid, profile), PySpy(agent or 0, agent_profile if agent else None), \
                    SupervisorSpy(srv.data_dir, srv.pid, sup_profile):
                elapsed, job, writes = asyncio.run(run_job(srv, args.completions, args.parallelism, args.timeout,
                                                           image))
            sup = sup or supervisor_pid(srv.data_dir, srv.pid)  # started with the first container
            sup1 = supervisor_cpu_seconds(sup)
            cpu = cpu_seconds(srv.pid) - cpu0[0], sup1[0] - cpu0[1][0], cpu_seconds(agent) - cpu0[2]
            sup_parts = sup1[1] - cpu0[1][1], sup1[2] - cpu0[1][2]
            # the group less the server (with what it reaped), the agent process and this benchmark
            sup_cg = (group.usage() - cg0[0] - cpu[0] - cpu[2] - (bench_cpu_seconds() - cg0[1])
                      if group else None)
            loop_cpu = thread_cpu_seconds(srv.pid) - cpu0[3]
            by_process = srv.peak_rss_by_process()
            rss = sum(by_process.values())
        finally:
            where = srv.data_dir
            srv.stop()
            if image != "local":
                remove_engine_leftovers(args.runtime, where)
            if data_dir is not None:
                shutil.rmtree(data_dir, ignore_errors=True)
        st = job.get("status") or {}
        cond = next(c["type"] for c in st.get("conditions") or [] if c.get("status") == "True"
                    and c.get("type") in ("Complete", "Failed"))
        if st.get("succeeded") != args.completions:
            print("WARNING: job status", orjson.dumps(st).decode())
        rate = args.completions / elapsed
        rates.setdefault(mode, []).append(rate)
        ratios.setdefault(mode, []).append(rate / base_rate)
        label = f" #{round_no // per_round + 1}, load {os.getloadavg()[0]:.1f}" if args.rounds > 1 else ""
        write_tables.append((f"Store writes per completed pod ({mode}{label})", writes))
        cpu_rows.append([f"{mode}{label}", 1000 * cpu[0] / args.completions, 1000 * loop_cpu / args.completions,
                         1000 * cpu[2] / args.completions if agent else "-",
                         1000 * cpu[1] / args.completions if sup else "-",
                         (f"{1000 * sup_parts[0] / args.completions:.2f} / {1000 * sup_parts[1] / args.completions:.2f}"
                          if sup else "-"),
                         1000 * sup_cg / args.completions if sup_cg is not None else "-"])
        rows.append([f"jobplane Job, {mode}{label} ({cond}, succeeded={st.get('succeeded')})", elapsed, rate,
                     f"{rate / base_rate:.3f}x", f"{rate / floor_rate:.2f}x" if floor_rate else "-", ">= 0.5x",
                     "PASS" if rate >= base_rate / 2 else "FAIL"])
        parts = ", ".join(f"{k} {v:.0f}" for k, v in by_process.items())
        print(f"[{time.strftime('%H:%M:%S')}] {mode}{label}: {rate:.1f} pods/s ({rate / base_rate:.3f}x xargs "
              f"{base_rate:.0f}/s), peak RSS {rss:.0f} MiB ({parts})", flush=True)
        rss_rows.append([f"peak RSS MiB ({mode}{label}: {parts})", rss, "< 200 MB", "PASS" if rss < 200 else "FAIL"])
        record_summary("throughput", mode=mode, rate=rate, xargs=base_rate, sandbox_floor=floor_rate, rss_mb=rss,
                       server_ms=1000 * cpu[0] / args.completions, completions=args.completions)
    print_table(f"Indexed Job, {args.completions:,} completions of `true`, parallelism {args.parallelism}",
                ["run", "wall s", "processes/s", "ratio vs xargs (same run)", "ratio vs sandbox floor", "target",
                 "result"], rows)
    print_table("Peak RSS of all jobplane processes (VmHWM summed: server, agent process, node supervisor)",
                ["metric", "value", "target", "result"], rss_rows)
    print_table("CPU per completed pod (ms; server process, its agent process, node supervisor with its reaped "
                "containers)", ["run", "server ms/pod", "of which event-loop thread", "agent process ms/pod",
                                "supervisor + containers ms/pod", "of which supervisor / waiters' own",
                                "supervisor + containers, cgroup ms/pod"],
                cpu_rows)
    for title, writes in write_tables:
        print_writes(title, writes, args.completions)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.rounds > 1:
        print("\nmedian over rounds: " + "; ".join(
            f"{m}: {statistics.median(rates[m]):.1f}/s, {statistics.median(ratios[m]):.3f}x xargs" for m in rates))


if __name__ == "__main__":
    main()
