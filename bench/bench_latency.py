"""Latency benchmark: apply-to-first-container-started over N sequential Jobs on a real
``jobplane server`` with its embedded agent.

For each Job (1 completion of ``true``): list pods to get a resourceVersion, POST the Job (client
clock starts), then watch the Job's pods from that resourceVersion until a containerStatus shows
``running`` or ``terminated`` (client clock stops when that event arrives). Targets (issue #16): p50
5 ms, p99 20 ms (an earlier round's were 50 / 250 ms).

Baseline, in the same run: spawning the same process directly (``subprocess.Popen(["true"])``
until it has started, and until it has exited), N times; and the floor of a sandboxed container:
``true`` in the pod sandbox (the agent's own bwrap command line, ``floors.py``) from spawn to
exit, N times. A short container is reported once, when it has exited (a running report waits
``running_report_delay``), so the second is the part of the measured time the sandbox alone takes.

Usage: .venv/bin/python bench/bench_latency.py [--jobs 100] [--runtime host|podman|docker]
                                               [--rounds N] [--modes both|on|off] [--processes 1,2]
                                               [--base-src OTHER_CHECKOUT/src]

``--runtime podman`` (or docker) adds the image runtime (a small local busybox image through
the engine) beside the host runtime's runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time
from pathlib import Path

import floors
import orjson
from benchlib import (
    bench_image,
    indexed_job,
    percentile,
    print_machine,
    print_table,
    record_summary,
    remove_engine_leftovers,
    start_server,
)

JOB_LABEL = "batch.kubernetes.io/job-name"


def started(pod: dict) -> bool:
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        state = cs.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


async def one_job(api, i: int, timeout: float, image: str = "local") -> float:
    name = f"lat-{i}"
    sel = f"{JOB_LABEL}={name}"
    async with api.get("/api/v1/namespaces/default/pods", params={"labelSelector": sel, "limit": "1"}) as r:
        rv = (await r.json(loads=orjson.loads))["metadata"]["resourceVersion"]
    body = indexed_job(name, 1, 1, ["true"], image)
    body["spec"]["completionMode"] = "NonIndexed"
    t0 = time.perf_counter()
    async with api.post("/apis/batch/v1/namespaces/default/jobs", json=body) as r:
        assert r.status == 201, await r.text()
    params = {"watch": "1", "labelSelector": sel, "resourceVersion": rv, "timeoutSeconds": str(int(timeout))}
    async with api.get("/api/v1/namespaces/default/pods", params=params) as r:
        assert r.status == 200, await r.text()
        async for line in r.content:
            if not line.strip():
                continue
            ev = orjson.loads(line)
            if ev["type"] in ("ADDED", "MODIFIED") and started(ev["object"]):
                return time.perf_counter() - t0
    raise TimeoutError(f"{name}: no started container within {timeout}s")


async def run_jobs(srv, n: int, timeout: float, image: str = "local") -> list[float]:
    async with srv.session() as api:
        await one_job(api, 10_000, timeout, image)  # warm-up (imports, first node lookups): not counted
        return [await one_job(api, i, timeout, image) for i in range(n)]


def spawn_baseline(n: int) -> tuple[list[float], list[float]]:
    """Seconds until Popen returned (process started) and until the process exited."""
    start, done = [], []
    for _ in range(n):
        t = time.perf_counter()
        p = subprocess.Popen(["true"])
        start.append(time.perf_counter() - t)
        p.wait()
        done.append(time.perf_counter() - t)
    return start, done


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--runtime", choices=["host", "podman", "docker"], default="host",
                   help="also measure the image runtime through this engine")
    p.add_argument("--modes", choices=["both", "on", "off"], default="both",
                   help="the sandbox modes to run (both: on and off)")
    p.add_argument("--processes", default="",
                   help="server --processes values to run each round, e.g. 1,2 (default: the server's own)")
    p.add_argument("--rounds", type=int, default=1, help="run every mode this many times, alternating")
    p.add_argument("--base-src", default="",
                   help="also run a server from another checkout's src (\"base\") beside this one's (\"new\"), "
                        "alternating which goes first each round")
    args = p.parse_args()
    print_machine()
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    base_start, base_done = spawn_baseline(args.jobs)
    b1 = [x * 1000 for x in base_start]
    b2 = [x * 1000 for x in base_done]
    rows = [
        ["subprocess.Popen(['true']) returned (baseline)", percentile(b1, 50), percentile(b1, 99), max(b1),
         "1.00x", "-", "-"],
        ["subprocess.Popen(['true']) + wait() (baseline)", percentile(b2, 50), percentile(b2, 99), max(b2),
         f"{percentile(b2, 50) / percentile(b1, 50):.1f}x", "-", "-"],
    ]
    sandboxed = floors.sandbox_sequential(args.jobs)
    floor_ms = [x * 1000 for x in sandboxed] if sandboxed else []
    if floor_ms:  # the sandbox alone: what no control plane can start a sandboxed container under
        rows.append(["`true` in the pod sandbox (the agent's bwrap command line), spawn to exit (floor)",
                     percentile(floor_ms, 50), percentile(floor_ms, 99), max(floor_ms),
                     f"{percentile(floor_ms, 50) / percentile(b1, 50):.1f}x", "-", "-"])
    notes = []
    # The pod sandbox (bubblewrap, the default) and without it, and each --processes value, in the
    # same run, alternating.
    sandbox_flags = {"on": [], "off": ["--no-sandbox"]}
    procs = [p.strip() for p in args.processes.split(",") if p.strip()] or [""]
    one_round: list[tuple[str, list[str], str]] = []
    for sb in ["on", "off"] if args.modes == "both" else [args.modes]:
        for n in procs:
            one_round.append((f"sandbox {sb}" + (f", --processes {n}" if n else ""),
                              sandbox_flags[sb] + (["--processes", n] if n else []), "local"))
    variants: list[tuple[str, dict[str, str] | None]] = [("", None)]
    if args.base_src:
        variants = [("base", {"PYTHONPATH": str(Path(args.base_src).resolve())}), ("new", None)]
        one_round = [(f"{mode}, {tag}", flags, image) for mode, flags, image in one_round for tag, _env in variants]
    envs = dict(variants)
    modes: list[tuple[str, list[str], str, dict[str, str] | None]] = []
    for r in range(args.rounds):  # base and new alternate which goes first
        ordered = one_round if r % 2 == 0 or len(variants) == 1 else [
            m for pair in zip(one_round[1::2], one_round[::2], strict=True) for m in pair]
        modes += [(mode, flags, image, envs[mode.rsplit(", ", 1)[-1]] if args.base_src else None)
                  for mode, flags, image in ordered]
    if args.runtime != "host":
        modes.append((f"image runtime ({args.runtime})", ["--runtime", args.runtime], bench_image(args.runtime),
                      None))
    p50s: dict[str, list[float]] = {}
    for round_no, (mode, flags, image, env) in enumerate(modes):
        srv = start_server(agent=True, extra=flags, env=env)
        try:
            time.sleep(1.0)  # let the agent register its node
            lat = asyncio.run(run_jobs(srv, args.jobs, args.timeout, image))
            by_process = srv.peak_rss_by_process()
        finally:
            where = srv.data_dir
            srv.stop()
            if image != "local":
                remove_engine_leftovers(args.runtime, where)
        ms = [x * 1000 for x in lat]
        p50, p99 = percentile(ms, 50), percentile(ms, 99)
        p50s.setdefault(mode, []).append(p50)
        record_summary("latency", mode=mode, p50_ms=p50, p99_ms=p99, jobs=args.jobs,
                       sandbox_p50_ms=percentile(floor_ms, 50) if floor_ms else None,
                       sandbox_p99_ms=percentile(floor_ms, 99) if floor_ms else None)
        label = f" #{round_no // len(one_round) + 1}, load {os.getloadavg()[0]:.1f}" if args.rounds > 1 else ""
        rows.append([f"jobplane, {mode}{label}: POST Job -> watch sees container started ({args.jobs} sequential "
                     "jobs)", p50, p99, max(ms), f"{p50 / percentile(b1, 50):.0f}x", "p50 5 / p99 20",
                     "PASS" if p50 <= 5 and p99 <= 20 else "FAIL"])
        parts = ", ".join(f"{k} {v:.0f}" for k, v in by_process.items())
        print(f"[{time.strftime('%H:%M:%S')}] {mode}{label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, peak RSS "
              f"{sum(by_process.values()):.0f} MiB ({parts})", flush=True)
        notes.append(f"{mode}{label}: peak RSS {sum(by_process.values()):.0f} MiB over all jobplane processes "
                     f"({parts}); mean {sum(ms) / len(ms):.1f} ms")
    print_table("Apply-to-first-container-started latency (ms)",
                ["measurement", "p50 ms", "p99 ms", "max ms", "p50 ratio vs Popen (same run)", "target ms", "result"],
                rows)
    print("\n" + "\n".join(notes))
    if args.rounds > 1:
        print("median p50 over rounds: " + "; ".join(f"{m}: {statistics.median(v):.1f} ms" for m, v in p50s.items()))
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
