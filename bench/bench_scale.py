"""Scale benchmark: an Indexed Job of N completions (``true``) on a real ``jobplane server`` with
its embedded agent must finish; record wall time and the peak of the SUM of resident memory over
all jobplane processes (target <= 400 MiB at 100,000 completions, shipped defaults): the server,
any Python process below it (an agent child) and the node supervisor of its data dir; pods are
not counted (``benchlib.jobplane_processes``). Sampled every 0.25 s; the sum of each process's own
peak (VmHWM) is printed beside it as an upper bound. Then ``kubectl get pods`` over the pods
left (the real /usr/bin/kubectl, default chunking) and a server-side Table list (target <= 1 s).

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
from pathlib import Path

import floors
import kubectl_floor
import orjson
from benchlib import PySpy, RssSampler, indexed_job, print_machine, print_table, record_summary, start_server

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


RSS_TARGET_MB = 400
LIST_TARGET_S = 1.0


async def run_job(srv, n: int, parallelism: int, timeout: float, progress: float,
                  rss: RssSampler) -> tuple[float, dict]:
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
                      f"rss sum={rss.last_sum_mb:.0f}MiB peak sum={rss.peak_sum_mb:.0f}MiB "
                      f"(server {srv.rss_mb():.0f}) load={os.getloadavg()[0]:.1f}", flush=True)
            if now - t > timeout:
                raise TimeoutError(f"job not finished after {timeout}s: {st}")
            await asyncio.sleep(0.5)


def finished_status(i: int, ts: str) -> dict:
    """The status the agent writes for a ``true`` container that exited 0 (the shape the
    pods PodGC keeps after a Job have), so ``--finished`` lists look like a real run's."""
    def cond(t: str, status: str, reason: str | None = None) -> dict:
        c = {"type": t, "status": status, "lastProbeTime": None, "lastTransitionTime": ts}
        return {**c, "reason": reason} if reason else c

    term = {"exitCode": 0, "reason": "Completed", "finishedAt": ts, "startedAt": ts,
            "containerID": f"jobplane://{10000 + i}"}
    return {"phase": "Succeeded", "qosClass": "BestEffort",
            "conditions": [cond("PodReadyToStartContainers", "False"), cond("Initialized", "True"),
                           cond("Ready", "False", "PodCompleted"), cond("ContainersReady", "False", "PodCompleted"),
                           cond("PodScheduled", "True")],
            "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}], "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}], "startTime": ts,
            "containerStatuses": [{"name": "main", "state": {"terminated": term}, "lastState": {}, "ready": False,
                                   "restartCount": 0, "image": "local", "imageID": "", "started": False,
                                   "containerID": term["containerID"]}]}


async def create_pods(srv, n: int, conc: int = 50, finished: bool = False) -> float:
    """N bare pods (no agent runs them; they stay Pending), for the list-only check; with
    ``finished``, each then gets a Succeeded status through ``pods/status`` (as a node would)."""
    t = time.perf_counter()
    async with srv.session(limit=conc) as api:
        sem = asyncio.Semaphore(conc)

        async def one(i: int) -> None:
            body = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"p-{i}", "labels": {"app": "scale"}},
                    "spec": {"restartPolicy": "Never",
                             "containers": [{"name": "main", "image": "local", "command": ["true"]}]}}
            async with sem:
                async with api.post("/api/v1/namespaces/default/pods", json=body) as r:
                    if r.status != 201:
                        raise RuntimeError(f"create p-{i}: {r.status} {await r.text()}")
                if not finished:
                    return
                ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                async with api.patch(f"/api/v1/namespaces/default/pods/p-{i}/status",
                                     json={"status": finished_status(i, ts)},
                                     headers={"Content-Type": "application/merge-patch+json"}) as r:
                    if r.status != 200:
                        raise RuntimeError(f"status p-{i}: {r.status} {await r.text()}")

        await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - t)


def list_rows(srv, n: int) -> list[list]:
    k_default = time_kubectl(srv, ["get", "pods", "-n", "default"])
    k_nochunk = time_kubectl(srv, ["get", "pods", "-n", "default", "--chunk-size=0"])
    table = asyncio.run(time_table_list(srv))
    fl_wall, fl_cpu, fl_rows, fl_bytes = kubectl_floor.floor(srv)
    target = f"<= {LIST_TARGET_S:g} s"
    return [["kubectl get pods (default --chunk-size=500)", k_default[0], k_default[1], target,
             "PASS" if k_default[0] <= LIST_TARGET_S else "FAIL"],
            ["kubectl get pods --chunk-size=0", k_nochunk[0], k_nochunk[1], target,
             "PASS" if k_nochunk[0] <= LIST_TARGET_S else "FAIL"],
            ["GET pods as=Table (server-side Table, aiohttp)", table[0], table[1], target,
             "PASS" if table[0] <= LIST_TARGET_S else "FAIL"],
            [f"kubectl's floor: --chunk-size=0 against a static replay of the same {fl_bytes / 2**20:.1f} MiB "
             f"(kubectl CPU {fl_cpu:.2f} s)", fl_wall, fl_rows, "same-run baseline", "-"]]


def list_only(n: int, finished: bool, baseline: str | None = None) -> None:
    """The kubectl check alone: N Pending (or Succeeded) pods created over HTTPS (server without agent).
    ``baseline``: first the same with the server running that checkout's ``src`` (same run)."""
    if baseline:
        list_only_once(n, finished, {"PYTHONPATH": str(Path(baseline).resolve() / "src")}, f"baseline {baseline}")
    list_only_once(n, finished, None, "this checkout")


def list_only_once(n: int, finished: bool, env: dict[str, str] | None, label: str) -> None:
    srv = start_server(agent=False, env=env)
    try:
        rate = asyncio.run(create_pods(srv, n, finished=finished))
        print(f"created {n:,} pods ({rate:.0f}/s)")
        time.sleep(1.0)
        rows = list_rows(srv, n)
        rss = srv.peak_rss_mb()
    finally:
        srv.stop()
    print_table(f"Listing {n:,} {'Succeeded' if finished else 'Pending'} pods (server --no-agent, {label}, "
                f"load {os.getloadavg()[0]:.1f})", ["command", "seconds", "rows", "target", "result"],
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
    p.add_argument("--finished", action="store_true",
                   help="with --list-only: give each pod a Succeeded status first (as PodGC's kept pods)")
    p.add_argument("--baseline", default=None, metavar="CHECKOUT",
                   help="with --list-only: first run the same against a server from CHECKOUT/src (same run); "
                        "without: run the Job on a server from CHECKOUT/src instead of this checkout")
    args = p.parse_args()
    print_machine()
    if args.list_only:
        list_only(args.list_only, args.finished, args.baseline)
        return
    load_start = os.getloadavg()
    env = {"PYTHONPATH": str(Path(args.baseline).resolve() / "src")} if args.baseline else None
    print(f"server code: {args.baseline + '/src' if args.baseline else 'this checkout'}")
    srv = start_server(agent=True, env=env)
    try:
        time.sleep(1.0)
        with RssSampler(srv.pid, srv.data_dir) as rss, PySpy(srv.pid, args.profile, rate=20):
            elapsed, job = asyncio.run(run_job(srv, args.completions, args.parallelism, args.timeout,
                                               args.progress, rss))
        job_peak, job_hwm, who = rss.peak_sum_mb, rss.sum_hwm_mb, rss.describe()
        job_with_waiters, waiters_seen = rss.peak_with_waiters_mb, rss.peak_waiters
        time.sleep(2.0)
        with RssSampler(srv.pid, srv.data_dir) as rss_lists:
            rows = list_rows(srv, args.completions)
        pods_left = rows[0][2]
    finally:
        srv.stop()
    load_end = os.getloadavg()
    st = job.get("status") or {}
    ok = "PASS" if job_peak <= RSS_TARGET_MB else "FAIL"
    # The rate no control plane can beat here: 2,000 sandboxed `true` at the same parallelism.
    floor = floors.sandbox_xargs(2000, args.parallelism)
    floor_rate = 2000 / floor[0] if floor else None
    print_table(f"Indexed Job, {args.completions:,} completions of `true`, parallelism {args.parallelism}",
                ["metric", "value", "target", "result"],
                [["succeeded / failed", f"{st.get('succeeded', 0):,} / {st.get('failed', 0):,}",
                  f"{args.completions:,} / 0", "PASS" if st.get("succeeded") == args.completions else "FAIL"],
                 ["wall time create -> Complete (s)", elapsed, "-", "-"],
                 ["completions/s", args.completions / elapsed, ">= 1,000", "-"],
                 [f"floor: 2,000 × `true` in the pod sandbox by xargs -P {args.parallelism}, per s",
                  floor_rate if floor_rate else "no bwrap", "-", "-"],
                 ["peak of the RSS sum during the job (MiB, sampled)", job_peak, f"<= {RSS_TARGET_MB} MiB", ok],
                 ["sum of per-process peaks during the job (MiB, upper bound)", job_hwm, "-", "-"],
                 [f"peak of the RSS sum + the waiters' PSS (MiB; up to {waiters_seen} waiters, the runtime's "
                  "per-container shims)", job_with_waiters, "-", "-"],
                 ["peak of the RSS sum during the lists (MiB)", rss_lists.peak_sum_mb, "-", "-"],
                 ["sum of per-process peaks incl. the lists (MiB)", rss_lists.sum_hwm_mb, "-", "-"]])
    record_summary("scale", completions=args.completions, succeeded=st.get("succeeded", 0),
                   rate=args.completions / elapsed, sandbox_floor=floor_rate, rss_peak_mb=job_peak, rss_lists_mb=rss_lists.peak_sum_mb,
                   rss_with_waiters_mb=job_with_waiters,
                   kubectl_s=rows[0][1], kubectl_nochunk_s=rows[1][1], table_s=rows[2][1],
                   kubectl_floor_s=rows[3][1], pods_left=pods_left)
    print(who)
    print_table(f"Listing the pods left ({pods_left:,} after PodGC)",
                ["command", "seconds", "rows", "target", "result"], rows)
    print(f"load average start {load_start[0]:.2f} {load_start[1]:.2f}, end {load_end[0]:.2f} {load_end[1]:.2f}")


if __name__ == "__main__":
    main()
