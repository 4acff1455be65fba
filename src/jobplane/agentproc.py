"""The server's side of its agent process (``--processes 2``): the API on a unix socket for
it, its credential, and its supervision.

Why a unix socket and a per-boot token rather than a node certificate over TLS: the socket
sits in a 0700 directory of the server's (DIR/run, hidden from sandboxed pods like the rest
of the data dir), so only this user can connect at all; the token is random per server
start, travels to the child on its stdin pipe (never on disk, never in argv or the
environment) and is accepted on unix-socket connections only (``Authenticator.local_tokens``)
as ``system:node:<name>`` in ``system:nodes``, so the Node authorizer and NodeRestriction
judge the agent exactly as they judge the in-process one. No TLS handshake or record layer
costs CPU on a connection that never leaves the machine; keep-alive keeps one connection
per request stream."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from jobplane.agent.child import ChildConfig
from jobplane.apiserver.authn import Authenticator
from jobplane.apiserver.identity import node_user
from jobplane.children import SupervisedChild
from jobplane.settings import Settings

log = logging.getLogger(__name__)

SOCKET_NAME = "api.sock"
RUN_DIR = "run"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes, NUL included
# the server says ready once its agent registered the Node (or after this long), as the
# in-process agent has by the first request
READY_TIMEOUT = 30.0


def socket_dir(data_dir: Path) -> tuple[Path, bool]:
    """Where the socket goes: DIR/run when the path fits a unix socket address, else a
    private temporary directory (True: remove it at stop). Both are 0700."""
    preferred = data_dir.resolve() / RUN_DIR
    if len(str(preferred / SOCKET_NAME)) <= MAX_SOCKET_PATH:
        preferred.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(preferred, 0o700)
        return preferred, False
    return Path(tempfile.mkdtemp(prefix="jobplane-")), True  # mkdtemp makes it 0700


class AgentProcess:
    """The API's unix socket and the supervised agent child, started and stopped together."""

    def __init__(self, settings: Settings, node_name: str) -> None:
        self.settings = settings
        self.node_name = node_name
        self.dir: Path | None = None
        self._owns_dir = False
        self.site: web.UnixSite | None = None
        self.child: SupervisedChild | None = None

    @property
    def socket_path(self) -> Path:
        assert self.dir is not None
        return self.dir / SOCKET_NAME

    async def start(self, runner: web.AppRunner, authenticator: Authenticator, *, api_host: str, api_port: int,
                    admin_token: str, typed_after: int | None = None) -> None:
        s = self.settings
        self.dir, self._owns_dir = socket_dir(s.data_dir)
        path = self.socket_path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a server that was killed
        self.site = web.UnixSite(runner, str(path))
        await self.site.start()
        os.chmod(path, 0o600)
        token = secrets.token_urlsafe(32)
        authenticator.add_local_token(token, node_user(self.node_name))
        hidden = [str(s.data_dir.resolve()), str(s.pki_dir.resolve()), str(self.dir)]
        cfg = ChildConfig(socket=str(path), token=token, node_name=self.node_name, data_dir=str(s.data_dir),
                          log_token=admin_token, hidden=list(dict.fromkeys(hidden)),
                          ca_file=str(s.pki_dir / "ca.crt"), api_host=api_host, api_port=api_port,
                          sandbox=s.sandbox, runtime=s.runtime, allow_privileged=s.allow_privileged, runtime_dir=s.runtime_dir,
                          log_level=s.log_level, typed_after=typed_after)
        self.child = SupervisedChild("agent", [sys.executable, "-m", "jobplane.agent.child"], cfg.encode(),
                                     ready_timeout=READY_TIMEOUT)
        await self.child.start()

    async def stop(self) -> None:
        """The child first (it detaches from its pods, which keep running, and may still talk
        to the API on its way out), then the socket."""
        if self.child is not None:
            await self.child.stop()
        if self.site is not None:
            await self.site.stop()
        if self.dir is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            if self._owns_dir:
                shutil.rmtree(self.dir, ignore_errors=True)
