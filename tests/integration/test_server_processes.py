"""``jobplane server --processes 2`` in-process: the agent runs as a supervised child on the
API's unix socket, as its node; it is restarted when it dies and stopped before the store."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from jobplane.apiserver.identity import ADMIN, node_user
from jobplane.server import Server
from jobplane.settings import Settings
from proctools import alive

pytestmark = pytest.mark.timeout(120)


async def _node(server: Server, name: str, port_not: int | None = None, timeout: float = 30.0) -> dict:
    """The Node once its agent registered it with a log endpoint (other than ``port_not``)."""
    assert server.client is not None
    client = server.client.as_user(ADMIN)
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            node = await client.get("nodes", name)
            port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            if port and port != port_not:
                return node
        except Exception as exc:  # noqa: BLE001 - not registered yet
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"node {name} did not register: {last!r}")




async def test_agent_child_is_supervised_and_stopped_before_the_store(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", port=0, node_name="split-node", processes=2, sandbox=False)
    server = Server(settings)
    await server.start()
    stopped_first: list[bool] = []
    try:
        proc = server.agent_process
        assert proc is not None and server.agent_task is None
        sock = proc.socket_path
        assert sock.exists() and oct(sock.stat().st_mode & 0o777) == "0o600"
        assert oct(sock.parent.stat().st_mode & 0o777) == "0o700"
        node = await _node(server, "split-node")
        # written by the child as its node (NodeRestriction would refuse anyone else)
        assert any(m["manager"] == "kubelet" for m in node["metadata"].get("managedFields") or [])
        first = proc.child.pid
        assert first is not None and first != os.getpid()

        os.kill(first, signal.SIGKILL)  # a crash: noticed, restarted
        port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        await _node(server, "split-node", port_not=port)
        assert proc.child.restarts == 1 and proc.child.pid not in (None, first)
        second = proc.child.pid

        store = server.store
        assert store is not None
        close = store.close

        async def close_after_child() -> None:
            stopped_first.append(not alive(second) or proc.child.proc.returncode is not None)
            await close()

        store.close = close_after_child  # type: ignore[method-assign]
    finally:
        await server.stop()
    assert stopped_first == [True]
    assert not sock.exists()


async def test_unix_socket_token_is_refused_over_tcp(tmp_path):
    """The agent's per-boot token is a socket credential: over TCP nobody is it."""
    from jobplane.apiserver.authn import Authenticator

    auth = Authenticator("admin")
    auth.add_local_token("boot", node_user("n"))

    class Transport:
        def __init__(self, family: int) -> None:
            import socket

            self.sock = socket.socket(family, socket.SOCK_STREAM)

        def get_extra_info(self, key: str):
            return self.sock if key == "socket" else None

    import socket

    unix, tcp = Transport(socket.AF_UNIX), Transport(socket.AF_INET)
    try:
        assert (await auth.authenticate("Bearer boot", unix)).name == "system:node:n"
        with pytest.raises(Exception) as err:
            await auth.authenticate("Bearer boot", tcp)
        assert getattr(err.value, "code", None) == 401
        assert await auth.authenticate_token("boot") is None  # TokenReview does not vouch for it
    finally:
        unix.sock.close()
        tcp.sock.close()
