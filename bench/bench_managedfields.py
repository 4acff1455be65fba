"""Cost of managedFields tracking on controllers' own writes: create and update throughput of
Jobs through ``ApiService`` (SQLite store, in process, as the embedded controllers write),
with tracking (``field_manager="kube-controller-manager"``) and without (``None``: the
previous behaviour), in alternating rounds of the same run.

    .venv/bin/python bench/bench_managedfields.py [--jobs 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from jobplane.api.registry import JOBS
from jobplane.apiserver.service import ApiService
from jobplane.storage.sqlite import SqliteStore

NS = "default"


def job(name: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"parallelism": 2, "completions": 4, "suspend": True, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "true"],
                                "env": [{"name": "A", "value": "1"}],
                                "resources": {"limits": {"cpu": "100m"}}}]}}}}


async def one_round(service: ApiService, manager: str | None, prefix: str, n: int) -> list[tuple[float, float]]:
    """(ops/s wall clock, CPU µs per op of this process) for create, status update, update."""
    marks = [(time.perf_counter(), time.process_time())]
    for i in range(n):
        await service.create(JOBS, NS, job(f"{prefix}-{i}"), field_manager=manager)
    marks.append((time.perf_counter(), time.process_time()))
    # status writes, as the job controller makes them (a few fields change each time)
    for i in range(n):
        cur = await service.get(JOBS, NS, f"{prefix}-{i}")
        body = orjson.loads(orjson.dumps(cur))  # as controllers copy (client.inproc.copy_obj)
        body["status"] = {"active": 2, "ready": 1, "terminating": 0, "startTime": "2026-01-01T00:00:00Z",
                          "uncountedTerminatedPods": {"succeeded": [f"uid-{i}"]}}
        await service.update(JOBS, NS, f"{prefix}-{i}", body, "status", field_manager=manager)
    marks.append((time.perf_counter(), time.process_time()))
    # main-resource writes (a label and a spec field), as kubectl label / a controller would
    for i in range(n):
        cur = await service.get(JOBS, NS, f"{prefix}-{i}")
        body = orjson.loads(orjson.dumps(cur))  # as controllers copy (client.inproc.copy_obj)
        body["metadata"]["labels"]["round"] = prefix
        body["spec"]["suspend"] = False
        await service.update(JOBS, NS, f"{prefix}-{i}", body, field_manager=manager)
    marks.append((time.perf_counter(), time.process_time()))
    return [(n / (b[0] - a[0]), (b[1] - a[1]) / n * 1e6) for a, b in zip(marks, marks[1:], strict=False)]


async def main(args: argparse.Namespace) -> None:
    results: dict[str, list[list[tuple[float, float]]]] = {"off": [], "on": []}
    tmp = Path(tempfile.mkdtemp(prefix="jp-bench-mf-"))
    for r in range(args.rounds):
        for label, manager in (("off", None), ("on", "kube-controller-manager")) if r % 2 == 0 else \
                (("on", "kube-controller-manager"), ("off", None)):
            store = SqliteStore(tmp / f"{label}-{r}.db")
            await store.start()
            service = ApiService(store)
            await service.ensure_default_namespaces()
            results[label].append(await one_round(service, manager, f"r{r}", args.jobs))
            await store.close()
    print(f"{args.jobs} Jobs per round, {args.rounds} rounds each, median of rounds:")
    print("| operation | without managedFields: ops/s, CPU µs/op | with managedFields: ops/s, CPU µs/op "
          "| throughput ratio | CPU ratio |")
    print("|---|---|---|---|---|")
    for idx, name in enumerate(("create Job", "update Job status (PUT status)", "update Job (PUT)")):
        off = [statistics.median(x[idx][k] for x in results["off"]) for k in (0, 1)]
        on = [statistics.median(x[idx][k] for x in results["on"]) for k in (0, 1)]
        print(f"| {name} | {off[0]:,.0f}, {off[1]:,.0f} | {on[0]:,.0f}, {on[1]:,.0f} | {on[0] / off[0]:.2f}x "
              f"| {on[1] / off[1]:.2f}x |")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(p.parse_args()))
