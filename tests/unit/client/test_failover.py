"""FailoverHttpClient: an agent keeps working when the API server it used goes away."""

from __future__ import annotations

import socket

from aiohttp import web

from jobplane.client.failover import FailoverHttpClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def serve(name: str) -> tuple[web.AppRunner, str]:
    async def handler(request):
        return web.json_response({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def test_moves_to_the_next_server_when_one_is_down():
    dead = f"http://127.0.0.1:{free_port()}"
    runner, alive = await serve("b")
    client = FailoverHttpClient([dead, alive], token="t")
    try:
        assert (await client.get("namespaces", "default"))["metadata"]["name"] == "b"
        assert client.server == alive  # stays there
        assert (await client.get("namespaces", "default"))["metadata"]["name"] == "b"
    finally:
        await client.close()
        await runner.cleanup()


async def test_switches_after_the_current_server_stops():
    runner_a, url_a = await serve("a")
    runner_b, url_b = await serve("b")
    client = FailoverHttpClient([url_a, url_b], token="t")
    try:
        assert (await client.get("namespaces", "default"))["metadata"]["name"] == "a"
        await runner_a.cleanup()
        assert (await client.get("namespaces", "default"))["metadata"]["name"] == "b"
    finally:
        await client.close()
        await runner_b.cleanup()
