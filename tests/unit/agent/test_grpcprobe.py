"""gRPC probes against a real gRPC server (grpcio with its standard health service): each of
kubelet's outcomes and messages, and the two timeouts, on an injected clock."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from jobplane.agent import grpcprobe
from jobplane.agent import probes as pr
from jobplane.agent.prober import run_check
from jobplane.clock import Clock, FakeClock


class SlowHealth(health_pb2_grpc.HealthServicer):
    """Answers after an hour: a server that is up but never completes the call in time."""

    async def Check(self, request, context):  # noqa: N802 - gRPC's method name
        await asyncio.sleep(3600)


@pytest.fixture
async def server():
    """(port, health servicer, start(servicer)): a gRPC server on 127.0.0.1."""
    servers = []

    async def start(servicer=None) -> int:
        srv = grpc.aio.server()
        if servicer is not None:
            health_pb2_grpc.add_HealthServicer_to_server(servicer, srv)
        port = srv.add_insecure_port("127.0.0.1:0")
        await srv.start()
        servers.append(srv)
        return port

    yield start
    for srv in servers:
        await srv.stop(None)


def probe(port: int, service: str = "", timeout: int = 1) -> pr.ProbeSpec:
    action = {"port": port} if not service else {"port": port, "service": service}
    return pr.ProbeSpec.parse(pr.READINESS, {"grpc": action, "timeoutSeconds": timeout})


async def check(spec: pr.ProbeSpec, clock: Clock | None = None):
    async def no_exec(argv, timeout):  # a gRPC probe never runs a command
        raise AssertionError("exec called")

    return await run_check(spec, {"name": "c"}, "127.0.0.1", no_exec, clock or Clock())


async def test_serving_not_serving_and_unknown_services(server):
    servicer = health.aio.HealthServicer()
    port = await server(servicer)
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert await check(probe(port)) == (pr.Outcome.SUCCESS, "service healthy", None)
    assert await check(probe(port, "db")) == (
        pr.Outcome.FAILURE, 'service unhealthy (responded with "NOT_SERVING")', None)
    await servicer.set("db", health_pb2.HealthCheckResponse.SERVING)
    assert (await check(probe(port, "db")))[:2] == (pr.Outcome.SUCCESS, "service healthy")
    assert await check(probe(port, "nope")) == (
        pr.Outcome.FAILURE, "error: health rpc probe failed: rpc error: code = NotFound desc = ", None)


async def test_a_server_without_the_health_service(server):
    port = await server(None)
    outcome, output, _ = await check(probe(port))
    assert outcome == pr.Outcome.FAILURE
    assert output.startswith("error: this server does not implement the grpc health protocol "
                             "(grpc.health.v1.Health): "), output


async def _until(predicate, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


async def test_nothing_listening_fails_at_the_timeout_as_a_connect_timeout():
    with socket.socket() as s:  # a port with no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = FakeClock()
    task = asyncio.create_task(check(probe(port, timeout=2), clock))
    await _until(lambda: clock._sleepers and len(clock._sleepers) >= 2, "the retry and the timeout waiting")
    assert not task.done()  # refused: it dials again until the timeout, as grpc.WithBlock does
    await clock.advance(2)
    assert await asyncio.wait_for(task, 5) == (
        pr.Outcome.FAILURE, f'timeout: failed to connect service "127.0.0.1:{port}" within 2s: '
        "context deadline exceeded", None)


async def test_a_call_that_does_not_complete_fails_as_an_rpc_timeout(server):
    port = await server(SlowHealth())
    clock = FakeClock()
    progress = grpcprobe.Progress()
    task = asyncio.create_task(grpcprobe.health_check("127.0.0.1", port, "", progress, clock.sleep))
    await _until(lambda: progress.connected, "the HTTP/2 connection up")
    task.cancel()
    assert grpcprobe.timeout_message("127.0.0.1", port, 1, progress) == (
        "timeout: health rpc did not complete within 1s")
    # Go prints a time.Duration of a minute or more in minutes: 90 s is 1m30s
    assert grpcprobe.timeout_message("127.0.0.1", port, 90, progress) == (
        "timeout: health rpc did not complete within 1m30s")
    # and through the prober, with its timeout on the injected clock
    run = asyncio.create_task(check(probe(port), clock))
    await asyncio.sleep(0.2)
    await clock.advance(1)
    assert await asyncio.wait_for(run, 5) == (pr.Outcome.FAILURE, "timeout: health rpc did not complete within 1s",
                                              None)


def test_request_and_response_framing():
    assert grpcprobe.encode_request("") == b"\x00\x00\x00\x00\x00"
    assert grpcprobe.encode_request("db") == b"\x00\x00\x00\x00\x04\x0a\x02db"
    long = "s" * 200  # a two-byte length varint
    assert grpcprobe.encode_request(long)[5:8] == b"\x0a\xc8\x01"
    assert grpcprobe.decode_status(b"\x00\x00\x00\x00\x02\x08\x01") == 1
    assert grpcprobe.decode_status(b"\x00\x00\x00\x00\x00") == 0  # proto3: an unset enum is 0 (UNKNOWN)
    # a field this version does not know is skipped
    assert grpcprobe.decode_status(b"\x00\x00\x00\x00\x06\x12\x02hi\x08\x02") == 2
