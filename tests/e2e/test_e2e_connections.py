"""Connection limits of a real server: a flood of idle unauthenticated connections against
``ulimit -n 1024`` (issue 9's done-when), the header read, idle keep-alive and slow-body
timeouts. Loopback only; every wait is bounded."""

from __future__ import annotations

import http.client
import json
import resource
import select
import socket
import ssl
import time
from urllib.parse import urlparse

import pytest
from tests.e2e.conftest import JobplaneServer

FLOOD = 1100


def _raise_own_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"this process may open only {hard} files; the flood needs {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def _https(srv: JobplaneServer, timeout: float = 10.0) -> http.client.HTTPSConnection:
    url = urlparse(srv.url)
    ctx = ssl.create_default_context(cafile=str(srv.ca_file()))
    return http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=timeout)


def _get(srv: JobplaneServer, path: str, conn: http.client.HTTPSConnection | None = None) -> tuple[int, bytes]:
    conn = conn or _https(srv)
    conn.request("GET", path, headers={"Authorization": f"Bearer {srv.token()}"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def _closed_by_peer(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _start(tmp_path, *flags: str, nofile: int | None = None) -> JobplaneServer:
    srv = JobplaneServer(tmp_path / "s", ("--no-agent", *flags))
    srv.nofile = nofile
    srv.start()
    return srv


def test_idle_unauthenticated_flood_leaves_authenticated_requests_answering(tmp_path):
    _raise_own_fd_limit(FLOOD + 256)
    srv = _start(tmp_path, nofile=1024)
    url = urlparse(srv.url)
    lines_before = len(srv.output)
    socks: list[socket.socket] = []
    try:
        t0 = time.monotonic()
        for _ in range(FLOOD):
            s = socket.socket()
            s.settimeout(5)
            s.connect((url.hostname, url.port))
            socks.append(s)
        flood_s = time.monotonic() - t0
        # Authenticated requests on fresh connections still answer, each within seconds.
        latencies = []
        for _ in range(5):
            t = time.monotonic()
            status, body = _get(srv, "/api/v1/namespaces/default")
            latencies.append(time.monotonic() - t)
            assert status == 200, body
            assert json.loads(body)["metadata"]["name"] == "default"
        closed = sum(_closed_by_peer(s, 0.01) for s in socks)
        log_lines = len(srv.output) - lines_before
        print(f"flood of {FLOOD} idle connections in {flood_s:.2f}s: {closed} closed by the server; "
              f"authenticated GET latencies {[round(x, 3) for x in latencies]} s; {log_lines} log lines")
        # The limit is half of 1024 descriptors: at least the excess was closed.
        assert closed >= FLOOD - 512
        assert log_lines < 100, "".join(srv.output[lines_before:][-40:])
        assert srv.proc is not None and srv.proc.poll() is None
    finally:
        for s in socks:
            s.close()
        srv.stop()


def test_header_idle_and_body_timeouts(tmp_path):
    srv = _start(tmp_path, "--request-header-timeout", "1", "--idle-timeout", "1", "--request-timeout", "1")
    url = urlparse(srv.url)
    try:
        # No TLS handshake, no request: closed after the header timeout (sweep once a second).
        raw = socket.create_connection((url.hostname, url.port))
        assert _closed_by_peer(raw, 15.0)
        raw.close()
        # A keep-alive connection idle after a response: closed after the idle timeout.
        conn = _https(srv)
        assert _get(srv, "/version", conn)[0] == 200
        assert _closed_by_peer(conn.sock, 15.0)
        conn.close()
        # A body sent one byte a second: 504 Timeout once the request timeout passes.
        conn = _https(srv, timeout=20)
        conn.putrequest("POST", "/api/v1/namespaces/default/pods")
        conn.putheader("Authorization", f"Bearer {srv.token()}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", "100")
        conn.endheaders()
        for ch in b'{"apiVersion"':
            try:
                conn.send(bytes([ch]))
            except OSError:
                break
            if select.select([conn.sock], [], [], 1.0)[0]:
                break  # the answer came
        resp = conn.getresponse()
        status = json.loads(resp.read())
        assert resp.status == 504 and status["reason"] == "Timeout", status
        # Nothing was stored.
        assert json.loads(_get(srv, "/api/v1/namespaces/default/pods")[1])["items"] == []
    finally:
        srv.stop()
