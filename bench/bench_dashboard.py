"""Dashboard benchmark: how long the Job page of a 10,000-pod Job takes to render in
headless Chromium (Debian's, through Selenium and chromedriver).

Usage: .venv/bin/python bench/bench_dashboard.py [--pods 10000] [--runs 5]

A server without an agent; an Indexed Job of ``--pods`` completions and parallelism
creates its pods, and each pod's status is then written as a finished container (a few
failed) so the timeline has real bars. Measured per run, in a fresh page load:
``first render`` = performance.now() when the timeline first drew its rows (from the
navigation start: HTML, modules, the aggregation endpoint, JSON parse, layout), and the
wall time around it from Python. Target (DESIGN/issue): under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from benchlib import print_machine, start_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))
from browser_helpers import Browser, available  # noqa: E402

NS = "default"


def job(n: int) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "big"},
            "spec": {"completions": n, "parallelism": n, "completionMode": "Indexed", "backoffLimit": n,
                     "template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}}


def finished_status(pod: dict, i: int, base: float) -> dict:
    start = base + (i % 500) * 0.4 + (i // 500) * 2.0
    end = start + 1.0 + (i % 7) * 0.3
    code = 1 if i % 97 == 0 else 0
    ts = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    pod["status"] = {
        "phase": "Failed" if code else "Succeeded", "startTime": ts(start),
        "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0,
                               "state": {"terminated": {"exitCode": code, "reason": "Error" if code else "Completed",
                                                        "startedAt": ts(start), "finishedAt": ts(end)}}}]}
    return pod


async def populate(srv, n: int) -> None:
    async with srv.session(limit=50) as s:
        async with s.post(f"/apis/batch/v1/namespaces/{NS}/jobs", json=job(n)) as r:
            assert r.status == 201, await r.text()
        t0 = time.monotonic()
        while True:
            async with s.get(f"/api/v1/namespaces/{NS}/pods", params={"limit": "1"}) as r:
                body = await r.json()
            if body["metadata"].get("remainingItemCount", 0) + len(body["items"]) >= n:
                break
            await asyncio.sleep(0.5)
        print(f"{n} pods created in {time.monotonic() - t0:.1f} s")
        async with s.get(f"/api/v1/namespaces/{NS}/pods") as r:
            pods = (await r.json())["items"]
        base = time.time() - 3600
        sem = asyncio.Semaphore(50)

        async def finish(i: int, pod: dict) -> None:
            async with sem:
                name = pod["metadata"]["name"]
                path = f"/api/v1/namespaces/{NS}/pods/{name}"
                for _ in range(20):  # the scheduler and job controller write these pods too
                    async with s.put(path + "/status", json=finished_status(pod, i, base)) as r:
                        if r.status == 200:
                            return
                        assert r.status == 409, await r.text()
                    async with s.get(path) as r:
                        pod = await r.json()
                raise AssertionError(f"{name}: too many conflicts")

        t0 = time.monotonic()
        await asyncio.gather(*(finish(i, p) for i, p in enumerate(pods)))
        print(f"{len(pods)} pod statuses written in {time.monotonic() - t0:.1f} s")


def measure(srv, runs: int) -> list[tuple[float, float, int]]:
    """Each run in a fresh browser (profile, connections, caches): a person opening the page."""
    out = []
    for _ in range(runs):
        browser = Browser()
        try:
            d = browser.driver
            d.get(srv.url + "/ui/")
            browser.js("sessionStorage.setItem('jobplane-token', arguments[0])", srv.token)
            d.get("about:blank")
            t0 = time.monotonic()
            d.get(srv.url + f"/ui/#/ns/{NS}/jobs/big")
            browser.wait(lambda d: d.execute_script("return window.__jpFirstRender || 0") > 0, 120)
            wall = time.monotonic() - t0
            first = browser.js("return window.__jpFirstRender") / 1000
            fetched = browser.js("const e = performance.getEntriesByType('resource').find("
                                 "(r) => r.name.includes('/ui/api/timeline/')); return e ? e.duration : 0") / 1000
            rows = int(browser.js("return document.getElementById('timeline').dataset.rows || 0"))
            out.append((first, wall, rows))
            print(f"first render {first:.3f} s (wall {wall:.3f} s; timeline request {fetched:.3f} s), "
                  f"{rows} timeline rows")
        finally:
            browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not available():
        sys.exit("needs Debian's chromium and chromium-driver, and selenium")
    print_machine()
    srv = start_server(agent=False)
    try:
        asyncio.run(populate(srv, args.pods))
        results = measure(srv, args.runs)
    finally:
        srv.stop()
    firsts = [r[0] for r in results]
    walls = [r[1] for r in results]
    print(f"\nJob page of a {args.pods:,}-pod Job: first render median {statistics.median(firsts):.3f} s "
          f"(min {min(firsts):.3f}, max {max(firsts):.3f}); wall median {statistics.median(walls):.3f} s; "
          f"target < 2 s")


if __name__ == "__main__":
    main()
