"""A YAML alias bomb (the issue's 551-byte document shape) against a real server, while
``/version`` is polled: how long the bomb's answer takes and the slowest ``/version``.

    .venv/bin/python bench/bench_input_bomb.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from benchlib import start_server  # noqa: E402

LEVELS = "abcdefghij"
BOMB = ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: bomb}\n"
        + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + "".join(f"{x}: &{x} [{','.join(['*' + p] * 9)}]\n" for p, x in zip(LEVELS, LEVELS[1:], strict=False))
        ).encode()


async def main() -> None:
    server = start_server(agent=False)
    try:
        async with server.session() as http:
            await (await http.get("/version")).read()
            version_times: list[float] = []
            stop = asyncio.Event()

            async def poll() -> None:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    await (await http.get("/version")).read()
                    version_times.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.005)

            poller = asyncio.create_task(poll())
            await asyncio.sleep(0.2)
            results = []
            for _ in range(5):
                t0 = time.perf_counter()
                resp = await http.post("/apis/batch/v1/namespaces/default/jobs", data=BOMB,
                                       headers={"Content-Type": "application/yaml"})
                body = await resp.json()
                results.append((resp.status, time.perf_counter() - t0, body.get("message")))
                await asyncio.sleep(0.1)
            stop.set()
            await poller
        print(f"bomb: {len(BOMB)} bytes")
        for status, secs, message in results:
            print(f"  {status} in {secs * 1000:.1f} ms: {message}")
        print(f"/version while bombed: {len(version_times)} requests, max {max(version_times) * 1000:.1f} ms, "
              f"median {sorted(version_times)[len(version_times) // 2] * 1000:.1f} ms")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
