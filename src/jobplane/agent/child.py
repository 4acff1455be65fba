"""The server's node agent in a process of its own (``jobplane server --processes 2``):
``python -m jobplane.agent.child``, started and supervised by the server (``children.py``).

It is the embedded agent (same node name, data dir and pods dir, so logs, Job history and
the node supervisor see what they see today) with two differences: it reaches the API over
the server's unix socket as ``system:node:<name>`` (a per-boot token the server hands it on
stdin; no TLS, the socket's 0700 directory keeps other users out), and it serves exec,
attach, port-forward targets and ``kubectl top`` figures on a log endpoint at 127.0.0.1, as
a standalone agent does, since the API server can no longer call into it.

The configuration is one JSON line on stdin; stdin closing means the server is gone."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("jobplane.agent.child")  # not "__main__" when run with -m

LOCK_FILE = "agent.lock"
# kubelet's product in the User-Agent: the default field manager of what the agent writes,
# as the in-process agent's ("kubelet")
USER_AGENT = "kubelet/v1.32.0 (linux/amd64) jobplane"


@dataclass
class ChildConfig:
    """What the server tells its agent process (secrets included: it travels on a pipe)."""

    socket: str  # the API's unix socket
    token: str  # per-boot bearer token, valid on that socket only, for system:node:<node_name>
    node_name: str
    data_dir: str
    log_token: str  # what the API server presents to the log endpoint (its admin token)
    hidden: list[str] = field(default_factory=list)  # hidden from sandboxed pods
    ca_file: str = ""
    api_host: str = "127.0.0.1"  # where pods reach the API (KUBERNETES_SERVICE_HOST/PORT)
    api_port: int = 6443
    sandbox: bool = True
    runtime: str = "host"
    allow_privileged: bool = False
    runtime_dir: str = ""  # the server's --runtime-dir
    log_level: str = "info"
    typed_after: int | None = None  # the server's ApiService.typed_after (informers skip re-checks)

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self)) + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> ChildConfig:
        return cls(**orjson.loads(line))


async def hold_node_lock(data_dir: Path) -> int:
    """Wait until no other agent process runs on ``data_dir`` (one left by a server that was
    killed stops within a second or two of noticing): two agents on one node would both
    start its pods. The lock is held until this process exits."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    waited = 0.0
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if waited == 0.0:
                log.info("waiting for the previous agent process on %s to stop", data_dir)
            await asyncio.sleep(0.1)
            waited += 0.1


async def run(cfg: ChildConfig) -> None:
    from jobplane import gcpolicy
    from jobplane.agent.agent import Agent, private_dir
    from jobplane.agent.logserver import LogEndpoint
    from jobplane.children import signal_ready, watch_parent
    from jobplane.client.http import HttpClient
    from jobplane.clock import Clock

    data_dir = Path(cfg.data_dir)
    private_dir(data_dir)
    lock = await hold_node_lock(data_dir)
    client = HttpClient("http://localhost", token=cfg.token, unix_socket=cfg.socket, user_agent=USER_AGENT,
                        typed_after=cfg.typed_after)
    agent = Agent(client, cfg.node_name, data_dir, Clock(), sandbox=cfg.sandbox,
                  hidden=tuple(Path(p) for p in cfg.hidden), api_host=cfg.api_host, api_port=cfg.api_port,
                  ca_file=Path(cfg.ca_file) if cfg.ca_file else None, runtime_choice=cfg.runtime,
                  allow_privileged=cfg.allow_privileged, runtime_dir=cfg.runtime_dir,
                  log_endpoint=LogEndpoint(token=cfg.log_token, address="127.0.0.1", host="127.0.0.1", port=0))
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(agent.run(), name="agent")
    parent = asyncio.create_task(watch_parent(), name="parent-watch")
    def registered() -> None:
        gcpolicy.install()  # it caches every pod of its node: keep its full collections short too
        signal_ready()

    ready = asyncio.create_task(_when_registered(agent, registered), name="ready")
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        done, _ = await asyncio.wait({task, parent}, return_when=asyncio.FIRST_COMPLETED)
        if parent in done:
            log.warning("the server is gone: agent process stopping")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # an agent that failed raises here: exit non-zero, the server restarts us
    finally:
        parent.cancel()
        ready.cancel()
        await client.close()
        os.close(lock)


async def _when_registered(agent: Any, then: Callable[[], None]) -> None:
    """Call ``then`` once the Node is registered and the pod informer synced: what the server
    waits for before it says ready, as the in-process agent gets there before the first
    request in practice."""
    while not (agent.heartbeat is None or agent.heartbeat.node is not None) or \
            agent.informer is None or not agent.informer.has_synced:
        await asyncio.sleep(0.02)
    then()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C reaches the server, which stops us
    line = sys.stdin.buffer.readline()
    if not line.strip():
        sys.exit(2)  # started by hand, or the server died before it wrote the configuration
    cfg = ChildConfig.decode(line)
    logging.basicConfig(level=getattr(logging, cfg.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(cfg))


if __name__ == "__main__":
    main()
