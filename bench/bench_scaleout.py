"""Scale-out benchmark, all in one run: the throughput Job (an Indexed Job of N completions of
``true`` at parallelism P) on

1. SQLite, one server with its embedded agent (the baseline every other row is compared to);
2. PostgreSQL, one server with its embedded agent;
3. PostgreSQL, one server ``--no-agent`` and two standalone ``jobplane agent`` processes, each
   on its own test-made host: a network namespace with its own address, joined to the
   server by a bridge and veth pairs (as ``tests/e2e/test_e2e_pod_network_hosts.py``).

beside ``seq N | xargs -P P -n 1 true`` and with the load average at the start and end.
Each mode reports create -> Complete, pods/s, its ratio to xargs and to the SQLite row, how
the pods were spread over the nodes, and the peak of the RSS sum over its jobplane
processes (server, agents, node supervisors; pods not counted).

Needs root and ``ip`` (iproute2) for mode 3, and a PostgreSQL at ``--postgres``
(default ``$JOBPLANE_TEST_POSTGRES`` or ``postgresql://postgres@127.0.0.1:5432/test``, the
tests' one) for modes 2 and 3; each PostgreSQL mode gets a fresh schema, dropped afterwards.
Namespaces, bridge, agents, supervisors and their pods are removed at the end whatever happens.

Usage: .venv/bin/python bench/bench_scaleout.py [--completions 2000] [--parallelism 50]
                                                [--modes sqlite,pg,pg-2hosts] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
from benchlib import (
    ROOT,
    RssSampler,
    indexed_job,
    kill_node,
    print_machine,
    print_table,
    start_server,
    wait_job_finished,
)

sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from netns_hosts import netns_hosts as _netns_hosts  # noqa: E402 - the e2e tests' helper

PG_DEFAULT = os.environ.get("JOBPLANE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MODES = ("sqlite", "pg", "pg-2hosts")


def xargs_baseline(n: int, parallelism: int) -> float:
    t = time.perf_counter()
    subprocess.run(f"seq {n} | xargs -P {int(parallelism)} -n 1 true", shell=True, check=True)
    return time.perf_counter() - t


# ------------------------------------------------------------------ PostgreSQL schema


@contextlib.contextmanager
def pg_schema(dsn: str) -> Iterator[str]:
    """A ``--database`` URL naming a fresh schema of ``dsn``; the schema is dropped afterwards."""
    import psycopg

    name = f"jp_bench_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in dsn else "?"
    try:
        yield f"{dsn}{sep}schema={name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# ------------------------------------------------------------------ hosts (network namespaces)


def netns_hosts(count: int) -> contextlib.AbstractContextManager[tuple[str, list[tuple[str, str]]]]:
    """``count`` network-namespace hosts on a bridge (tests/e2e/netns_hosts.py), named apart
    from the e2e tests' so both can run at once."""
    return _netns_hosts(count, prefix="jpb", octet=212)


# ------------------------------------------------------------------ agents


class Agent:
    """A standalone ``jobplane agent`` in a network namespace, with its own data dir."""

    def __init__(self, srv, ns: str, name: str, data_dir: Path) -> None:
        pki = srv.data_dir / "pki"
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}.agent.log"
        data_dir.mkdir(parents=True)
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "jobplane", "agent", "--server", srv.url,
               "--token-file", str(pki / "token"), "--ca-file", str(pki / "ca.crt"), "--name", name,
               "--port", "0", "--data-dir", str(data_dir), "--log-level", "warning"]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the agent
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        kill_node(self.data_dir)


# ------------------------------------------------------------------ one mode


async def run_job(srv, n: int, parallelism: int, timeout: float) -> tuple[float, dict, dict[str, int]]:
    async with srv.session() as api:
        body = indexed_job("scaleout", n, parallelism, ["true"])
        t = time.perf_counter()
        async with api.post("/apis/batch/v1/namespaces/default/jobs", json=body) as r:
            assert r.status == 201, await r.text()
        job = await wait_job_finished(api, "default", "scaleout", timeout, poll=0.05)
        elapsed = time.perf_counter() - t
        async with api.get("/api/v1/namespaces/default/pods?labelSelector=job-name%3Dscaleout") as r:
            pods = (await r.json(loads=orjson.loads))["items"]
        spread = collections.Counter((p.get("spec") or {}).get("nodeName") or "-" for p in pods)
        return elapsed, job, dict(spread)


async def wait_nodes(srv, names: list[str], timeout: float = 60.0) -> None:
    async with srv.session() as api:
        deadline = time.monotonic() + timeout
        while True:
            async with api.get("/api/v1/nodes") as r:
                nodes = (await r.json(loads=orjson.loads))["items"]
            ready = {n["metadata"]["name"] for n in nodes
                     if any(c["type"] == "Ready" and c["status"] == "True"
                            for c in (n.get("status") or {}).get("conditions") or ())}
            if set(names) <= ready:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes {names} not Ready after {timeout}s (ready: {sorted(ready)})")
            await asyncio.sleep(0.2)


def run_mode(mode: str, args: argparse.Namespace) -> dict:
    parent = Path(tempfile.mkdtemp(prefix=f"jp-scaleout-{mode}-", dir=args.data_dir_parent))
    data_dir = parent / "server"
    data_dir.mkdir()
    agents: list[Agent] = []
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, parent, True)
        flags: list[str] = []
        if mode != "sqlite":
            flags += ["--database", stack.enter_context(pg_schema(args.postgres))]
        if mode == "pg-2hosts":
            bridge_ip, hosts = stack.enter_context(netns_hosts(2))
            flags += ["--no-agent", "--host", bridge_ip]
        srv = start_server(agent=mode != "pg-2hosts", data_dir=data_dir, extra=flags)
        stack.callback(kill_node, data_dir)
        stack.callback(srv.stop)
        if mode == "pg-2hosts":
            for i, (ns, _) in enumerate(hosts):
                agent = Agent(srv, ns, f"host-{i + 1}", parent / f"agent{i + 1}")
                agents.append(agent)
                stack.callback(agent.stop)
            asyncio.run(wait_nodes(srv, [f"host-{i + 1}" for i in range(len(hosts))]))
        else:
            time.sleep(1.0)  # let the embedded agent register its node
        with RssSampler(srv.pid, data_dir, more=[(a.proc.pid, a.data_dir) for a in agents]) as rss:
            elapsed, job, spread = asyncio.run(run_job(srv, args.completions, args.parallelism, args.timeout))
    st = job.get("status") or {}
    if st.get("succeeded") != args.completions:
        print("WARNING: job status", orjson.dumps(st).decode())
    return {"mode": mode, "elapsed": elapsed, "succeeded": st.get("succeeded", 0), "failed": st.get("failed", 0),
            "spread": spread, "rss_peak": rss.peak_sum_mb, "rss_hwm": rss.sum_hwm_mb,
            "load": os.getloadavg()[0]}


LABELS = {"sqlite": "SQLite, one server + embedded agent",
          "pg": "PostgreSQL, one server + embedded agent",
          "pg-2hosts": "PostgreSQL, server --no-agent + 2 agents on 2 netns hosts"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--completions", type=int, default=2000)
    p.add_argument("--parallelism", type=int, default=50)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    p.add_argument("--rounds", type=int, default=1, help="run the modes this many times, alternating")
    p.add_argument("--postgres", default=PG_DEFAULT, help="PostgreSQL URL (a fresh schema per mode)")
    p.add_argument("--data-dir-parent", default=None, help="where the data dirs go (default: the temp dir)")
    args = p.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            p.error(f"unknown mode {m!r}")
    if "pg-2hosts" in modes and (os.geteuid() != 0 or not shutil.which("ip")):
        p.error("pg-2hosts needs root and ip (iproute2)")
    print_machine()
    load_start = os.getloadavg()
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    base = args.completions / xargs_baseline(args.completions, args.parallelism)
    results = []
    for round_no in range(args.rounds):
        for mode in modes:
            r = run_mode(mode, args)
            r["round"] = round_no + 1
            results.append(r)
            print(f"  round {r['round']} {mode}: {r['elapsed']:.2f}s, {args.completions / r['elapsed']:.1f} pods/s, "
                  f"nodes {r['spread']}, load {r['load']:.1f}", flush=True)
    base_end = args.completions / xargs_baseline(args.completions, args.parallelism)
    load_end = os.getloadavg()
    sqlite_rates = [args.completions / r["elapsed"] for r in results if r["mode"] == "sqlite"]
    sqlite_rate = sum(sqlite_rates) / len(sqlite_rates) if sqlite_rates else None
    rows: list[list] = [[f"xargs -P {args.parallelism} (start / end of run)", "-", f"{base:,.0f} / {base_end:,.0f}",
                         "1.00x", "-", "-", "-", "-"]]
    for r in results:
        rate = args.completions / r["elapsed"]
        nodes = ", ".join(f"{k} {v}" for k, v in sorted(r["spread"].items()))
        rows.append([f"{LABELS[r['mode']]}" + (f" #{r['round']}" if args.rounds > 1 else ""),
                     r["elapsed"], rate, f"{rate / base:.3f}x",
                     f"{rate / sqlite_rate:.2f}x" if sqlite_rate else "-",
                     f"{r['succeeded']} / {r['failed']}", nodes, f"{r['rss_peak']:.0f} ({r['rss_hwm']:.0f})"])
    print_table(f"Indexed Job, {args.completions:,} completions of `true`, parallelism {args.parallelism}",
                ["run", "create->Complete s", "pods/s", "vs xargs (start)", "vs SQLite", "succeeded / failed",
                 "pods per node", "RSS sum peak MiB (sum of HWM)"], rows)
    print(f"load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
