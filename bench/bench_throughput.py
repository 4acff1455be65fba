"""Throughput benchmark: an Indexed Job of N completions of ``true`` at parallelism P on a real
``jobplane server`` with its embedded agent; time from create to the Complete condition.

Baseline, measured in the same run: ``seq N | xargs -P P -n 1 true`` (the same N processes with
the same concurrency, no control plane). Target: at least half the xargs rate; server peak RSS
below 200 MB.

Usage: .venv/bin/python bench/bench_throughput.py [--completions 2000] [--parallelism 50]
                                                  [--profile FILE.txt] [--runtime host|podman|docker]

``--runtime podman`` (or docker) adds a run of the image runtime (each container from a small
local busybox image through the engine) beside the host runtime's, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import orjson
from benchlib import (
    PySpy,
    bench_image,
    indexed_job,
    print_machine,
    print_table,
    remove_engine_leftovers,
    start_server,
    wait_job_finished,
)


def xargs_baseline(n: int, parallelism: int) -> float:
    """Seconds for ``seq n | xargs -P parallelism -n 1 true``."""
    t = time.perf_counter()
    subprocess.run(f"seq {n} | xargs -P {int(parallelism)} -n 1 true", shell=True, check=True)
    return time.perf_counter() - t


async def run_job(srv, n: int, parallelism: int, timeout: float, image: str = "local") -> tuple[float, dict]:
    async with srv.session() as api:
        body = indexed_job("throughput", n, parallelism, ["true"], image)
        t = time.perf_counter()
        async with api.post("/apis/batch/v1/namespaces/default/jobs", json=body) as r:
            assert r.status == 201, await r.text()
        job = await wait_job_finished(api, "default", "throughput", timeout, poll=0.05)
        elapsed = time.perf_counter() - t
        return elapsed, job


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--completions", type=int, default=2000)
    p.add_argument("--parallelism", type=int, default=50)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--profile", default=None, help="py-spy raw profile of the server during the job")
    p.add_argument("--rounds", type=int, default=1,
                   help="run sandbox on/off this many times, alternating (on a shared machine the load drifts "
                        "during a run; the median of alternating rounds is fairer than one of each)")
    p.add_argument("--data-dir-parent", default=None,
                   help="create the server's data dir here (e.g. /dev/shm to take the disk out of the loop)")
    p.add_argument("--runtime", choices=["host", "podman", "docker"], default="host",
                   help="also run the image runtime through this engine (host: the host runtime only)")
    args = p.parse_args()
    print_machine()

    base = xargs_baseline(args.completions, args.parallelism)
    base_rate = args.completions / base
    rows: list[list] = [[f"xargs -P {args.parallelism} (baseline)", base, base_rate, "1.00x", "-", "-"]]
    rss_rows = []
    # The pod sandbox (bubblewrap, the default) and without it, in the same run.
    modes: list[tuple[str, list[str], str]] = [("sandbox on", [], "local"), ("sandbox off", ["--no-sandbox"], "local")]
    modes = modes * args.rounds
    rates: dict[str, list[float]] = {}
    if args.runtime != "host":
        modes.append((f"image runtime ({args.runtime})", ["--runtime", args.runtime], bench_image(args.runtime)))
    for round_no, (mode, flags, image) in enumerate(modes):
        data_dir = (Path(tempfile.mkdtemp(prefix="jp-bench-", dir=args.data_dir_parent))
                    if args.data_dir_parent else None)
        srv = start_server(agent=True, data_dir=data_dir, extra=flags)
        try:
            time.sleep(1.0)  # let the agent register its node
            with PySpy(srv.pid, args.profile if mode == "sandbox on" else None):
                elapsed, job = asyncio.run(run_job(srv, args.completions, args.parallelism, args.timeout, image))
            rss = srv.peak_rss_mb()
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
        label = f" #{round_no // 2 + 1}, load {os.getloadavg()[0]:.1f}" if args.rounds > 1 else ""
        rows.append([f"jobplane Job, {mode}{label} ({cond}, succeeded={st.get('succeeded')})", elapsed, rate,
                     f"{rate / base_rate:.3f}x", ">= 0.5x", "PASS" if rate >= base_rate / 2 else "FAIL"])
        rss_rows.append([f"peak RSS MiB ({mode})", rss, "< 200 MB", "PASS" if rss < 200 else "FAIL"])
    print_table(f"Indexed Job, {args.completions:,} completions of `true`, parallelism {args.parallelism}",
                ["run", "wall s", "processes/s", "ratio vs xargs (same run)", "target", "result"], rows)
    print_table("Server peak RSS (VmHWM)", ["metric", "value", "target", "result"], rss_rows)
    if args.rounds > 1:
        on, off = statistics.median(rates["sandbox on"]), statistics.median(rates["sandbox off"])
        print(f"\nmedian processes/s: sandbox on {on:.1f}, off {off:.1f}, on/off {on / off:.2f}")


if __name__ == "__main__":
    main()
