"""Cost of typed decoding on the create path: in-process ``ApiService.create`` of Jobs on
the memory store, with the decoder on and (monkeypatched) off, and the checker alone.

    .venv/bin/python bench/bench_decode.py [N]
"""

from __future__ import annotations

import asyncio
import copy
import statistics
import sys
import time

from jobplane.api import decode
from jobplane.api.registry import JOBS
from jobplane.apiserver import service as service_mod
from jobplane.apiserver.service import ApiService
from jobplane.storage.memory import MemoryStore

JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "labels": {"app": "pi"}},
       "spec": {"parallelism": 5, "completions": 10, "backoffLimit": 4,
                "template": {"metadata": {"labels": {"app": "pi"}},
                             "spec": {"containers": [{"name": "pi", "image": "perl:5.34.0",
                                                      "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"],
                                                      "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                                                      "env": [{"name": "A", "value": "b"}]}],
                                      "restartPolicy": "Never"}}}}


async def creates_per_second(n: int) -> float:
    store = MemoryStore()
    await store.start()
    svc = ApiService(store)
    await svc.ensure_default_namespaces()
    bodies = []
    for i in range(n):
        body = copy.deepcopy(JOB)
        body["metadata"]["name"] = f"pi-{i}"
        bodies.append(body)
    start = time.perf_counter()
    for body in bodies:
        await svc.create(JOBS, "default", body)
    elapsed = time.perf_counter() - start
    await store.close()
    return n / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    decode.checker_for("batch", "v1", "Job")  # compile once, outside the timing
    real = service_mod.decode_body
    results: dict[bool, list[float]] = {False: [], True: []}
    for order in ((False, True), (True, False)) * 3:  # alternate, so drift hits both alike
        for enabled in order:
            service_mod.decode_body = real if enabled else (lambda info, body: None)
            results[enabled].append(asyncio.run(creates_per_second(n)))
    service_mod.decode_body = real
    off, on = statistics.median(results[False]), statistics.median(results[True])
    body = copy.deepcopy(JOB)
    start = time.perf_counter()
    for _ in range(n):
        decode.check("batch", "v1", "Job", body)
    per_check = (time.perf_counter() - start) / n * 1e6
    print(f"creates/s without typed decoding: {off:,.0f}")
    print(f"creates/s with typed decoding:    {on:,.0f} ({(on - off) / off:+.1%})")
    print(f"one Job check: {per_check:.1f} us")


if __name__ == "__main__":
    main()
