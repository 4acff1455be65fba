"""Memory probe: where does the server's resident memory go after a Job of N pods?

Runs the whole server (store, API, controllers, embedded agent) in this process, runs an
Indexed Job of N completions of ``true``, then reports the peak RSS, the store's history
length and how many history entries still hold decoded objects, and the top allocation sites
(tracemalloc, grouped by file). Diagnostic only; not part of run_all.sh.

With ``--lists``, then what follows a Job's end, phase by phase (the Job's archiving, then
``kubectl get pods`` twice): the process's RSS and peak after each, and with ``--tracemalloc``
the traced peak within the phase (``bench_scale``'s "peak during the lists").

Usage: .venv/bin/python bench/mem_probe.py [--completions 1000] [--tracemalloc] [--lists]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from benchlib import indexed_job, peak_rss_mb


def print_breakdown(mirror) -> None:
    """Objects and JSON bytes per resource, and Events per reason: what the store holds."""
    import collections

    import orjson

    per: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    reasons: collections.Counter[str] = collections.Counter()
    for key, e in mirror._entries.items():
        res = key.split("/")[1] if key.startswith("/") else key.split("/")[0]
        per[res][0] += 1
        per[res][1] += len(e.data)
        if res in ("events", "events.k8s.io"):
            reasons[orjson.loads(e.raw()).get("reason", "?")] += 1
    for res, (n, b) in sorted(per.items(), key=lambda kv: -kv[1][1])[:8]:
        print(f"  store {res}: {n} objects, {b / 2**20:.1f} MiB JSON ({b // max(n, 1)} B each)")
    print(f"  event reasons: {dict(reasons.most_common(10))} (events kept only in the database: "
          f"{getattr(mirror, '_spilled_counts', {})})")


def print_census(done: int, before: collections.Counter[str] | None) -> collections.Counter[str]:
    """Live objects by type (the gc's view: containers), and what grew since the last census."""
    import os

    gc.unfreeze()  # get_objects skips the frozen (permanent) generation, where the gc policy keeps most
    try:
        counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
    finally:
        gc.freeze()
    status = Path(f"/proc/{os.getpid()}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024
    grew = "" if before is None else ", grew: " + ", ".join(
        f"{k} {n:+,}" for k, n in (counts - before).most_common(8))
    print(f"census at {done:,} succeeded: RSS {rss:.0f} MiB, {sum(counts.values()):,} gc objects{grew}", flush=True)
    return counts


def frozen_garbage() -> str:
    """Collect everything once, frozen objects included (as the gc policy's thaw does), keeping
    what was unreachable in ``gc.garbage`` to count it: how much garbage was waiting for a thaw."""
    frozen = gc.get_freeze_count()
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.unfreeze()
    try:
        gc.collect()
        found = list(gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.freeze()
    kinds = collections.Counter(type(o).__name__ for o in found)
    size = sum(sys.getsizeof(o) for o in found)
    return (f"{len(found):,} objects, {size / 2**20:.1f} MiB shallow (of {frozen:,} frozen); "
            f"most common: {dict(kinds.most_common(6))}")


def _rss(pid: int) -> str:
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith(("VmRSS", "VmHWM"))}
    traced = ""
    if tracemalloc.is_tracing():
        cur, peak = tracemalloc.get_traced_memory()
        traced = f"; traced now {cur / 2**20:.0f} MiB, peak in the phase {peak / 2**20:.0f} MiB"
        tracemalloc.reset_peak()
    return f"RSS {kb['VmRSS'] / 1024:.0f} MiB (peak {kb['VmHWM'] / 1024:.0f}){traced}"


async def after_the_job(srv, job: dict, kubeconfig: Path) -> None:
    """Phases after the Job's end, as bench_scale runs them: the archive, then kubectl's lists."""
    import os
    import subprocess

    from jobplane.storage.records import JobRecords

    pid = os.getpid()
    md = job["metadata"]
    print(f"after the job: {_rss(pid)}")
    print(f"cyclic garbage the gc policy's frozen generation held: {frozen_garbage()}")
    t = time.perf_counter()
    records = JobRecords(srv.store)
    while not await records.exists(md["namespace"], md["name"], md["uid"]):
        await asyncio.sleep(0.2)
    print(f"archived in {time.perf_counter() - t:.1f}s: {_rss(pid)}")
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    big = _trace_big_responses()
    for extra in ([], ["--chunk-size=0"]):
        t = time.perf_counter()
        out = await asyncio.to_thread(subprocess.run, ["kubectl", "get", "pods", *extra], env=env,
                                      capture_output=True, check=True)
        print(f"kubectl get pods {' '.join(extra)}: {time.perf_counter() - t:.1f}s, "
              f"{len(out.stdout.splitlines()) - 1} rows: {_rss(pid)}")
        for line in big:
            print("  " + line)
        big.clear()


def _trace_big_responses() -> list[str]:
    """Trace allocations (if not traced already) and, when a response body over 1 MiB is made,
    note what was allocated at that moment (the rows and the body are both alive then)."""
    from jobplane.apiserver import http

    if not tracemalloc.is_tracing():
        tracemalloc.start()
    notes: list[str] = []
    plain = http.json_response

    def json_response(obj, *a, **k):
        response = plain(obj, *a, **k)
        if len(response.body) > 2**20:
            cur, peak = tracemalloc.get_traced_memory()
            notes.append(f"a {len(response.body) / 2**20:.1f} MiB body: traced {cur / 2**20:.0f} MiB (peak {peak / 2**20:.0f})")
            for st in tracemalloc.take_snapshot().statistics("lineno")[:6]:
                notes.append(f"  {st.size / 2**20:6.1f} MiB {st.traceback[0]}")
        return response

    http.json_response = json_response
    return notes


async def main_async(args: argparse.Namespace) -> None:
    import os

    from jobplane.client.inproc import InProcessClient
    from jobplane.server import Server
    from jobplane.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="jp-mem-"))
    extra = {"terminated_pod_gc_threshold": args.pod_gc_threshold} if args.pod_gc_threshold else {}
    settings = Settings(data_dir=tmp, port=0, agent=True, log_level="warning", **extra)
    srv = Server(settings)
    await srv.start()
    from jobplane import gcpolicy

    gcpolicy.install()  # as ``jobplane server`` runs (server.serve)
    client = InProcessClient(srv.service)
    await asyncio.sleep(1.0)
    base = peak_rss_mb(os.getpid())
    t = time.perf_counter()
    await client.create("jobs", indexed_job("mem", args.completions, 50, ["true"]), "default")
    census_at = [args.completions * i // 4 for i in (2, 3, 4)] if args.census else []
    census: collections.Counter[str] | None = None
    while True:
        job = await client.get("jobs", "mem", "default")
        if census_at and (job.get("status") or {}).get("succeeded", 0) >= census_at[0]:
            census = print_census(census_at.pop(0), census)
        conds = (job.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Complete" and c["status"] == "True" for c in conds):
            break
        await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - t
    await asyncio.sleep(1.0)
    gc.collect()
    mirror = srv.store._mirror
    hist = list(mirror._hist)
    decoded = sum(1 for ch in hist if ch.event is not None and (ch.event._object is not None
                                                                 or ch.event._prev_object is not None))
    hist_bytes = sum(len(ch.data) + len(ch.prev or b"") for ch in hist)
    entries_decoded = sum(1 for e in mirror._entries.values() if getattr(e, "_obj", None) is not None)
    print(f"job of {args.completions} pods: {elapsed:.1f}s; RSS before job {base:.0f} MiB, "
          f"peak {peak_rss_mb(os.getpid()):.0f} MiB")
    print(f"mirror: {len(mirror._entries)} objects ({entries_decoded} with a cached decode), "
          f"history {len(hist)} changes ({hist_bytes / 2**20:.0f} MiB of JSON bytes; "
          f"{decoded} still holding decoded objects)")
    entry_bytes = sum(len(e.data) for e in mirror._entries.values())
    buffered = sorted((len(w.buf) for w in mirror._watchers), reverse=True)
    print(f"mirror: {entry_bytes / 2**20:.1f} MiB of current-object bytes; {len(buffered)} watchers, "
          f"undelivered changes per watcher (top 5): {buffered[:5]}")
    if hasattr(mirror, "stats"):
        print(f"mirror stats: {mirror.stats()}")
    print_breakdown(mirror)
    infs = getattr(srv.controller_ctx.informers, "_informers", {})
    for name, inf in (infs.items() if isinstance(infs, dict) else []):
        print(f"informer {name}: {len(inf.keys())} cached objects, {inf.relists} lists")
    if args.lists:
        await after_the_job(srv, job, settings.kubeconfig_path)
    if args.tracemalloc:
        snap = tracemalloc.take_snapshot()
        print("\ntop allocation sites (tracemalloc, by file:line):")
        for stat in snap.statistics("lineno")[:15]:
            print(f"  {stat.size / 2**20:7.1f} MiB  {stat.traceback[0]}")
        if args.frames > 1:
            print("\ntop allocation tracebacks:")
            for stat in snap.statistics("traceback")[:args.tracebacks]:
                print(f"  {stat.size / 2**20:7.1f} MiB in {stat.count} blocks")
                for line in stat.traceback.format(limit=args.frames):
                    print("    " + line)
    await srv.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--completions", type=int, default=1000)
    p.add_argument("--tracemalloc", action="store_true")
    p.add_argument("--census", action="store_true",
                   help="live objects by type at 1/2, 3/4 and all of the completions, and what grew between")
    p.add_argument("--pod-gc-threshold", type=int, default=0,
                   help="PodGC's threshold (default: the shipped 12,500), to reach its plateau sooner")
    p.add_argument("--lists", action="store_true", help="then the Job's archiving and kubectl's lists, phase by phase")
    p.add_argument("--frames", type=int, default=1, help="tracemalloc frames per allocation (tracebacks if > 1)")
    p.add_argument("--tracebacks", type=int, default=8, help="how many of the largest tracebacks to print")
    args = p.parse_args()
    if args.tracemalloc:
        tracemalloc.start(args.frames)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
