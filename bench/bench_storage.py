"""Storage micro-benchmark: creates/s, gets/s, and a labelled list of 100 out of 10,000 objects.

Usage: python bench/bench_storage.py [sqlite|memory|postgresql://...] [N]
Prints results; writes nothing but a temporary database.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from jobplane.storage import open_store
from jobplane.storage.base import Store


def pod(i: int) -> dict:
    """A realistically sized Job pod (~1.5 KB of JSON)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"job-{i}-abcde", "namespace": "default", "uid": str(uuid.uuid4()),
                     "labels": {"batch.kubernetes.io/job-name": f"job-{i // 100}",
                                "batch.kubernetes.io/controller-uid": str(uuid.uuid4()),
                                "bucket": "hot" if i % 100 == 0 else "cold"},
                     "creationTimestamp": "2024-01-01T00:00:00Z",
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": f"job-{i // 100}",
                                          "uid": str(uuid.uuid4()), "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "echo hello; sleep 1"],
            "env": [{"name": f"E{j}", "value": "v" * 20} for j in range(5)],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]},
    }


async def run(database: str, n: int, data_dir: Path) -> None:
    store: Store = open_store(database, data_dir)
    if database.startswith("postgres"):
        from jobplane.storage.postgres import PostgresStore

        store = PostgresStore(database, schema=f"jp_bench_{uuid.uuid4().hex[:8]}")
    await store.start()
    objs = [pod(i) for i in range(n)]
    keys = [f"pods/default/job-{i}-abcde" for i in range(n)]

    t = time.perf_counter()
    await store.create(keys[0], objs[0])
    for k, o in zip(keys[1:200], objs[1:200], strict=True):
        await store.create(k, o)
    seq = 199 / (time.perf_counter() - t)

    t = time.perf_counter()
    conc = 256
    for i in range(200, n, conc):
        await asyncio.gather(*[store.create(keys[j], objs[j]) for j in range(i, min(n, i + conc))])
    creates = (n - 200) / (time.perf_counter() - t)

    t = time.perf_counter()
    for k in keys:
        await store.get(k)
    gets = n / (time.perf_counter() - t)

    t = time.perf_counter()
    for k in keys:
        await store.get_bytes(k)
    get_bytes = n / (time.perf_counter() - t)

    t = time.perf_counter()
    await asyncio.gather(*[store.update(k, objs[i] | {"status": {"phase": "Running"}})
                           for i, k in enumerate(keys[:2000])])
    updates = 2000 / (time.perf_counter() - t)

    def hot(o: dict) -> bool:
        return o["metadata"]["labels"].get("bucket") == "hot"

    await store.list("pods/default/", hot)  # warm caches
    reps = 20
    t = time.perf_counter()
    for _ in range(reps):
        res = await store.list("pods/default/", hot)
    list_ms = (time.perf_counter() - t) / reps * 1000

    t = time.perf_counter()
    full = await store.list("pods/default/")
    full_ms = (time.perf_counter() - t) * 1000

    print(f"backend            {database}")
    print(f"objects            {n}")
    print(f"creates/s (seq)    {seq:,.0f}")
    print(f"creates/s (x{conc})  {creates:,.0f}")
    print(f"updates/s (x2000)  {updates:,.0f}")
    print(f"gets/s             {gets:,.0f}")
    print(f"get_bytes/s        {get_bytes:,.0f}")
    print(f"list {len(res.items)} of {n} by label: {list_ms:.2f} ms")
    print(f"list all {len(full.items)}:     {full_ms:.1f} ms")
    await store.close()
    if database.startswith("postgres"):
        import psycopg

        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA "{store.schema}" CASCADE')  # type: ignore[attr-defined]


def main() -> None:
    database = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    with tempfile.TemporaryDirectory() as d:
        asyncio.run(run(database, n, Path(d)))


if __name__ == "__main__":
    main()
