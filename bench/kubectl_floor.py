"""kubectl's own floor for a list: the same response bytes served by a server that does no work.

``kubectl get pods`` over ~12,500 pods spends most of its wall time in kubectl itself (decoding the
Table's rows, each with the pod's whole metadata as kube-apiserver sends it, and printing them).
To tell that cost from the server's, this captures what jobplane answered (the discovery documents
and the whole Table, as kubectl asks for it) and replays those bytes from a plain HTTP server on
127.0.0.1 that only copies them out; kubectl run against it with ``--chunk-size=0`` is the same-run
baseline for jobplane's ``kubectl get pods --chunk-size=0``: no server can answer faster than that.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

# What kubectl 1.32 sends for `get` (printed with -v=8): a Table, else the plain list.
KUBECTL_TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")


async def capture(srv: Any, list_path: str) -> dict[str, bytes]:
    """Path -> response body for everything kubectl reads to list ``list_path``: /api, /apis, every
    group version's resource list (discovery, so kubectl's cache fills without errors) and the list."""
    out: dict[str, bytes] = {}
    async with srv.session() as api:
        async def get(path: str, accept: str = "application/json") -> bytes:
            async with api.get(path, headers={"Accept": accept}) as r:
                r.raise_for_status()
                return await r.read()

        for path in ("/api", "/apis", "/api/v1"):
            out[path] = await get(path)
        for group in orjson.loads(out["/apis"]).get("groups") or ():
            for version in group.get("versions") or ():
                path = f"/apis/{version['groupVersion']}"
                out[path] = await get(path)
        out[list_path] = await get(list_path, KUBECTL_TABLE_ACCEPT)
    return out


class _Replay(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.bodies.get(self.path.split("?", 1)[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def time_replay(bodies: dict[str, bytes], kubectl_args: list[str], repeat: int = 3) -> tuple[float, float, int]:
    """Serve ``bodies`` and run ``kubectl <args> --chunk-size=0`` against them: once to fill the
    discovery cache, then ``repeat`` times. Returns (best wall s, that run's kubectl CPU s, rows)."""
    handler = type("Replay", (_Replay,), {"bodies": bodies})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory(prefix="jp-kubectl-floor-") as home:
            env = dict(os.environ, HOME=home, KUBECONFIG=str(Path(home) / "none"))
            cmd = ["kubectl", f"--server={url}", *kubectl_args, "--chunk-size=0"]
            subprocess.run(cmd, capture_output=True, env=env, check=True)
            best = (float("inf"), 0.0, 0)
            for _ in range(repeat):
                before = os.times()
                t = time.perf_counter()
                out = subprocess.run(cmd, capture_output=True, env=env, check=True).stdout
                wall = time.perf_counter() - t
                after = os.times()
                cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
                if wall < best[0]:
                    best = (wall, cpu, max(0, out.count(b"\n") - 1))
            return best
    finally:
        httpd.shutdown()
        httpd.server_close()


def floor(srv: Any, namespace: str = "default") -> tuple[float, float, int, int]:
    """(wall s, kubectl CPU s, rows, bytes of the Table) of ``kubectl get pods -n NS --chunk-size=0``
    against a replay of what ``srv`` answers now."""
    list_path = f"/api/v1/namespaces/{namespace}/pods"
    bodies = asyncio.run(capture(srv, list_path))
    wall, cpu, rows = time_replay(bodies, ["get", "pods", "-n", namespace])
    return wall, cpu, rows, len(bodies[list_path])
