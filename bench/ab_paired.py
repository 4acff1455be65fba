"""Paired A/B on a shared machine: a server from another source tree ("base", e.g. a clone of
main before a change) and one from this checkout ("new") run at the same time; latency Jobs
(bench_latency's measurement) and wrk CREATE rounds (bench_api's) alternate between them, so
both see the same load from everything else on the machine.

Usage: .venv/bin/python bench/ab_paired.py latency|create --base-src /tmp/main-clone/src
           [--jobs 100] [--extra=--no-sandbox] [--rounds 4 --duration 6 --objects 10000]
"""

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_api as ba
import bench_latency as bl
from benchlib import percentile, start_server

p = argparse.ArgumentParser()
p.add_argument("what", choices=["latency", "create"])
p.add_argument("--jobs", type=int, default=100)
p.add_argument("--extra", default="")
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--duration", type=int, default=6)
p.add_argument("--objects", type=int, default=10000)
p.add_argument("--base-src", required=True, help="the src/ directory of the baseline tree")
a = p.parse_args()
BASE = a.base_src


def load():
    return open("/proc/loadavg").read().split()[:3]


def start(which, agent):
    env_pp = os.environ.pop("PYTHONPATH", None)
    if which == "base":
        os.environ["PYTHONPATH"] = BASE
    try:
        return start_server(agent=agent, extra=a.extra.split() if a.extra else None)
    finally:
        os.environ.pop("PYTHONPATH", None)
        if env_pp:
            os.environ["PYTHONPATH"] = env_pp


print("load start", load(), time.strftime("%H:%M:%S"))
srv = {w: start(w, a.what == "latency") for w in ("base", "new")}
try:
    if a.what == "latency":
        time.sleep(1.0)

        async def run():
            res = {"base": [], "new": []}
            async with srv["base"].session() as sa, srv["new"].session() as sb:
                api = {"base": sa, "new": sb}
                for w in api:
                    await bl.one_job(api[w], 10_000, 30)
                for i in range(a.jobs):
                    order = ("base", "new") if i % 2 == 0 else ("new", "base")
                    for w in order:
                        res[w].append(await bl.one_job(api[w], i, 30) * 1000)
            return res

        res = asyncio.run(run())
        for w, ms in res.items():
            print(
                f"{w}: p50 {percentile(ms, 50):.1f} p90 {percentile(ms, 90):.1f} p99 {percentile(ms, 99):.1f} max {max(ms):.1f} mean {sum(ms) / len(ms):.1f} ms (n={len(ms)})"
            )
        pairs = sorted(n / b for b, n in zip(res["base"], res["new"], strict=True))
        print(f"per-job new/base ratio: median {pairs[len(pairs) // 2]:.2f}")
    else:

        class A:
            pass

        args = A()
        args.threads, args.connections, args.duration, args.drain = 2, 50, a.duration, 1.0
        for w in srv:
            asyncio.run(ba.setup_server(srv[w]))
            asyncio.run(ba.populate(srv[w], 0, a.objects - 1, ba.HOT))
        print("populated", a.objects, "each; load", load())
        rows = {"base": [], "new": []}
        for r in range(a.rounds):
            for w in ("base", "new") if r % 2 == 0 else ("new", "base"):
                script = ba.WRK_CREATE.format(
                    token=srv[w].token, path=ba.LEASES.format(ns="default")
                ).replace("\"c-' ..", f"\"c{r}-' ..")
                res = ba.run_wrk(srv[w], ba.LEASES.format(ns="default"), args, script, f"{w}{r}", None)
                rows[w].append(res)
                print(
                    f"round {r} {w}: {res['rps']:.0f} creates/s p50 {res['p50_ms']:.1f} p99 {res['p99_ms']:.1f} n={res['requests']} non2xx={res['non2xx']} load {load()[0]}",
                    flush=True,
                )
        for w in rows:
            print(
                f"{w}: rps {[round(x['rps']) for x in rows[w]]} p99 {[round(x['p99_ms'], 1) for x in rows[w]]} peak RSS {srv[w].peak_rss_mb():.0f} MiB"
            )
finally:
    for s in srv.values():
        s.stop()
print("load end", load(), time.strftime("%H:%M:%S"))
