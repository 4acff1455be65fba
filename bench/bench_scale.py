"""Scale benchmark: an Indexed Job of N completions (``true``) on a real ``jobplane server`` with
its embedded agent must finish; record wall time and server peak RSS (target < 500 MB). Then
``kubectl get pods`` over all the Job's pods (the real /usr/bin/kubectl, default chunking) and a
server-side Table list must answer within 2 s.

Usage: .venv/bin/python bench/bench_scale.py [--completions 100000] [--parallelism 100]
                                             [--timeout 3600] [--profile FILE.txt]

The Job's finished pods are kept (as upstream), so after the run the namespace holds N pods:
``--completions 10000`` gives the "kubectl get pods over 10,000 pods" check exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time

import orjson
from benchlib import PySpy, indexed_job, print_machine, print_table, start_server

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def run_job(srv, n: int, parallelism: int, timeout: float, progress: float) -> tuple[float, dict]:
    async with srv.session() as api:
        t = time.perf_counter()
        async with api.post("/apis/batch/v1/namespaces/default/jobs",
                            json=indexed_job("scale", n, parallelism, ["true"])) as r:
            assert r.status == 201, await r.text()
        last = t
        while True:
            async with api.get("/apis/batch/v1/namespaces/default/jobs/scale") as r:
                job = await r.json(loads=orjson.loads)
            st = job.get("status") or {}
            if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                   for c in st.get("conditions") or ()):
                return time.perf_counter() - t, job
            now = time.perf_counter()
            if now - last >= progress:
                last = now
                done = st.get("succeeded", 0)
                print(f"  t={now - t:6.0f}s succeeded={done:,} failed={st.get('failed', 0)} "
                      f"active={st.get('active', 0)} rate={done / (now - t):.1f}/s "
                      f"rss={srv.rss_mb():.0f}MiB peak={srv.peak_rss_mb():.0f}MiB", flush=True)
            if now - t > timeout:
                raise TimeoutError(f"job not finished after {timeout}s: {st}")
            await asyncio.sleep(0.5)


async def create_pods(srv, n: int, conc: int = 50) -> float:
    """N bare pods (no agent runs them; they stay Pending), for the list-only check."""
    t = time.perf_counter()
    async with srv.session(limit=conc) as api:
        sem = asyncio.Semaphore(conc)

        async def one(i: int) -> None:
            body = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"p-{i}", "labels": {"app": "scale"}},
                    "spec": {"restartPolicy": "Never",
                             "containers": [{"name": "main", "image": "local", "command": ["true"]}]}}
            async with sem, api.post("/api/v1/namespaces/default/pods", json=body) as r:
                if r.status != 201:
                    raise RuntimeError(f"create p-{i}: {r.status} {await r.text()}")

        await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - t)


def list_rows(srv, n: int) -> list[list]:
    k_default = time_kubectl(srv, ["get", "pods", "-n", "default"])
    k_nochunk = time_kubectl(srv, ["get", "pods", "-n", "default", "--chunk-size=0"])
    table = asyncio.run(time_table_list(srv))
    return [["kubectl get pods (default --chunk-size=500)", k_default[0], k_default[1], "< 2 s",
             "PASS" if k_default[0] < 2 else "FAIL"],
            ["kubectl get pods --chunk-size=0", k_nochunk[0], k_nochunk[1], "< 2 s",
             "PASS" if k_nochunk[0] < 2 else "FAIL"],
            ["GET pods as=Table (server-side Table, aiohttp)", table[0], table[1], "< 2 s",
             "PASS" if table[0] < 2 else "FAIL"]]


def list_only(n: int) -> None:
    """The kubectl check alone: N Pending pods created over HTTPS (server without agent)."""
    srv = start_server(agent=False)
    try:
        rate = asyncio.run(create_pods(srv, n))
        print(f"created {n:,} pods ({rate:.0f}/s)")
        time.sleep(1.0)
        rows = list_rows(srv, n)
        rss = srv.peak_rss_mb()
    finally:
        srv.stop()
    print_table(f"Listing {n:,} Pending pods (server --no-agent)", ["command", "seconds", "rows", "target", "result"],
                rows)
    print(f"server peak RSS: {rss:.0f} MiB")


def time_kubectl(srv, args: list[str]) -> tuple[float, int]:
    env = dict(os.environ, KUBECONFIG=str(srv.data_dir / "kubeconfig"))
    t = time.perf_counter()
    out = subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, check=True).stdout
    return time.perf_counter() - t, max(0, len(out.splitlines()) - 1)


async def time_table_list(srv) -> tuple[float, int]:
    async with srv.session() as api:
        t = time.perf_counter()
        async with api.get("/api/v1/namespaces/default/pods", headers={"Accept": TABLE_ACCEPT}) as r:
            body = await r.json(loads=orjson.loads)
        return time.perf_counter() - t, len(body.get("rows") or body.get("items") or ())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--completions", type=int, default=100_000)
    p.add_argument("--parallelism", type=int, default=100)
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--progress", type=float, default=30, help="seconds between progress lines")
    p.add_argument("--profile", default=None, help="py-spy raw profile of the server during the job")
    p.add_argument("--list-only", type=int, default=0, metavar="N",
                   help="skip the Job; create N Pending pods and run only the list checks")
    args = p.parse_args()
    print_machine()
    if args.list_only:
        list_only(args.list_only)
        return
    srv = start_server(agent=True)
    try:
        time.sleep(1.0)
        with PySpy(srv.pid, args.profile, rate=20):
            elapsed, job = asyncio.run(run_job(srv, args.completions, args.parallelism, args.timeout,
                                               args.progress))
        rss_job = srv.peak_rss_mb()
        time.sleep(2.0)
        rows = list_rows(srv, args.completions)
        rss = srv.peak_rss_mb()
    finally:
        srv.stop()
    st = job.get("status") or {}
    print_table(f"Indexed Job, {args.completions:,} completions of `true`, parallelism {args.parallelism}",
                ["metric", "value", "target", "result"],
                [["succeeded / failed", f"{st.get('succeeded', 0):,} / {st.get('failed', 0):,}",
                  f"{args.completions:,} / 0", "PASS" if st.get("succeeded") == args.completions else "FAIL"],
                 ["wall time create -> Complete (s)", elapsed, "-", "-"],
                 ["processes/s", args.completions / elapsed, "-", "-"],
                 ["server peak RSS during the job (MiB)", rss_job, "< 500 MB", "PASS" if rss_job < 500 else "FAIL"],
                 ["server peak RSS incl. the lists (MiB)", rss, "< 500 MB", "PASS" if rss < 500 else "FAIL"]])
    print_table(f"Listing the Job's pods ({args.completions:,} pods in the namespace)",
                ["command", "seconds", "rows", "target", "result"], rows)


if __name__ == "__main__":
    main()
