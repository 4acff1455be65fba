"""Memory at PodGC's plateau, modelled in minutes: what a server holds with 12,500 finished pods.

A 100,000-completion run keeps, from ~13,000 completions on, PodGC's 12,500 finished pods plus
a full watch history. This starts the whole server (SQLite store, API, controllers, embedded
agent, one process), creates a suspended Indexed Job, writes N finished pods of it straight into
the store (the JSON the agent leaves on a finished ``true`` pod, made distinct per pod), then
fills the history with Events (``--history-fill`` MiB, default the shipped 64) so the pods'
bytes are no longer shared with it, as at the plateau. It then prints the RSS and what holds
it (tracemalloc by file:line; with ``--frames N`` the largest tracebacks).

With ``--table N`` it then times N pod Tables (the server side of ``kubectl get pods``, in
process); ``--no-pack`` keeps cold pods plain, as the mirror did before, for a same-run
comparison.

Usage: .venv/bin/python bench/mem_plateau.py [--pods 12500] [--frames 1] [--no-trace] [--table 3] [--no-pack]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import orjson
from benchlib import indexed_job

HERE = Path(__file__).parent


def rss_mib() -> float:
    status = Path(f"/proc/{os.getpid()}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024


def finished_pod(template: dict[str, Any], job: dict[str, Any], i: int, node: str) -> dict[str, Any]:
    """A copy of the template pod as pod ``i`` of ``job``: its own name, uid, index, times."""
    pod = orjson.loads(orjson.dumps(template))
    md = pod["metadata"]
    juid = job["metadata"]["uid"]
    name = f"{job['metadata']['name']}-{i}-{uuid.uuid4().hex[:5]}"
    md.update(name=name, generateName=f"{job['metadata']['name']}-{i}-", uid=str(uuid.uuid4()))
    md.pop("resourceVersion", None)
    for k in ("controller-uid", "batch.kubernetes.io/controller-uid"):
        md["labels"][k] = juid
    md["labels"]["batch.kubernetes.io/job-completion-index"] = str(i)
    md["annotations"]["batch.kubernetes.io/job-completion-index"] = str(i)
    md["ownerReferences"][0].update(uid=juid, name=job["metadata"]["name"])
    md["finalizers"] = []
    sec = 10 + i // 70  # ~70 completions a second
    stamp = f"2026-12-04T19:{(sec // 60) % 60:02d}:{sec % 60:02d}Z"
    md["creationTimestamp"] = stamp
    for mf in md.get("managedFields") or []:
        mf["time"] = stamp
    spec = pod["spec"]
    spec["nodeName"] = node
    spec["hostname"] = f"{job['metadata']['name']}-{i}"
    st = pod["status"]
    st["startTime"] = stamp
    for c in st["conditions"]:
        c["lastTransitionTime"] = stamp
    for cs in st["containerStatuses"]:
        cs["containerID"] = f"jobplane://{100000 + i}"
        term = cs["state"]["terminated"]
        term.update(startedAt=stamp, finishedAt=stamp, containerID=cs["containerID"])
    return pod


def event_of(pod: dict[str, Any], n: int) -> dict[str, Any]:
    """An Event about ``pod``, stamped now: within the Event TTL, so that it stays (as in a run)
    rather than being deleted by the TTL controller at once, as older stamps were."""
    md = pod["metadata"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{md['name']}.{n:016x}", "namespace": md["namespace"], "uid": str(uuid.uuid4()),
                         "creationTimestamp": now},
            "involvedObject": {"kind": "Pod", "namespace": md["namespace"], "name": md["name"], "uid": md["uid"],
                               "apiVersion": "v1", "resourceVersion": "1"},
            "reason": "Started", "message": "Started container main", "source": {"component": "kubelet", "host": "vm"},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "type": "Normal", "eventTime": None, "reportingComponent": "kubelet", "reportingInstance": "vm",
            "x-pad": "p" * 600}


async def gather_chunked(coros: list[Any], size: int = 500) -> None:
    for i in range(0, len(coros), size):
        await asyncio.gather(*coros[i:i + size])


async def time_tables(srv: Any, rounds: int) -> None:
    """The server side of ``kubectl get pods`` (rows streamed as decoded), in process."""
    from jobplane.api import printers
    from jobplane.api.registry import PODS

    for _ in range(rounds):
        t = time.perf_counter()
        cpu = time.process_time()
        meta, items = await srv.service.list_lazily(PODS, "default")
        n = sum(1 for _ in printers.table_rows(PODS, items, now=time.time()))
        print(f"pod Table of {n} rows: {time.perf_counter() - t:.2f} s ({time.process_time() - cpu:.2f} s CPU)")


async def main_async(args: argparse.Namespace) -> None:
    from jobplane import gcpolicy
    from jobplane.client.inproc import InProcessClient
    from jobplane.server import Server
    from jobplane.settings import Settings

    if args.no_pack:  # the mirror as before: only Events kept compressed
        from jobplane.storage import mirror

        mirror.PACKED_PREFIXES = ("events/",)
    tmp = Path(tempfile.mkdtemp(prefix="jp-plateau-"))
    settings = Settings(data_dir=tmp, port=0, agent=True, log_level="warning")
    srv = Server(settings)
    await srv.start()
    gcpolicy.install()
    client = InProcessClient(srv.service)
    spec = indexed_job("mem", 100000, 100, ["true"])
    spec["spec"]["suspend"] = True
    job = await client.create("jobs", spec, "default")
    await asyncio.sleep(1.0)
    gc.collect()
    base = rss_mib()
    if args.trace:
        tracemalloc.start(args.frames)
    template = orjson.loads((HERE / "data" / "finished_pod.json").read_bytes())
    from jobplane.agent.embedded import default_node_name

    node = settings.node_name or default_node_name()
    t = time.perf_counter()
    store = srv.store
    pods = [finished_pod(template, job, i, node) for i in range(args.pods)]
    await gather_chunked([store.create(f"pods/default/{p['metadata']['name']}", p) for p in pods])
    fill = args.history_fill * 2**20
    n = 0
    while fill > 0:
        evs = [event_of(pods[(n + j) % len(pods)], n + j) for j in range(500)]
        await gather_chunked([store.create(f"events/default/{e['metadata']['name']}", e) for e in evs])
        fill -= sum(len(orjson.dumps(e)) for e in evs)
        n += 500
    del pods
    await asyncio.sleep(3.0)
    gc.collect()
    print(f"{args.pods} finished pods + {n} Events written in {time.perf_counter() - t:.1f}s; "
          f"RSS {base:.0f} -> {rss_mib():.0f} MiB (+{rss_mib() - base:.0f})")
    m = store._mirror
    print(f"mirror: {m.stats()}")
    for name, inf in srv.controller_ctx.informers._informers.items():
        print(f"informer {name}: {len(inf.keys())} cached")
    if args.table:
        await time_tables(srv, args.table)
    if args.trace:
        snap = tracemalloc.take_snapshot()
        total = sum(s.size for s in snap.statistics("filename"))
        print(f"traced: {total / 2**20:.1f} MiB")
        for s in snap.statistics("lineno")[:args.top]:
            print(f"  {s.size / 2**20:7.1f} MiB {s.count:>8} blocks  {s.traceback[0]}")
        if args.frames > 1:
            for s in snap.statistics("traceback")[:args.tracebacks]:
                print(f"  {s.size / 2**20:7.1f} MiB in {s.count} blocks")
                for line in s.traceback.format(limit=args.frames):
                    print("    " + line)
    await srv.stop()
    shutil.rmtree(tmp, ignore_errors=True)  # ~365 MB of database and WAL


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pods", type=int, default=12500)
    p.add_argument("--history-fill", type=int, default=64, help="MiB of Events written after the pods")
    p.add_argument("--no-trace", dest="trace", action="store_false")
    p.add_argument("--table", type=int, default=0, metavar="N", help="then time N pod Tables (server side)")
    p.add_argument("--no-pack", action="store_true", help="keep cold pods plain (the mirror before packing)")
    p.add_argument("--frames", type=int, default=1)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--tracebacks", type=int, default=12)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
