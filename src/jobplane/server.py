"""``jobplane server``: assembles store, API service, HTTPS API, controllers and the
embedded agent in one asyncio process, and shuts them down in reverse order.

On a shared (PostgreSQL) store several servers may run at once; they elect one leader
over the ``kube-system/jobplane-controller-manager`` Lease (``controllers.leader``) and only
the leader runs the controllers. A lone server takes the free lease at once."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from jobplane import gcpolicy, metrics, storage
from jobplane.agent.agent import Agent
from jobplane.agent.embedded import run_embedded
from jobplane.aio import cancel_and_wait
from jobplane.apiserver import auth, connguard, kubeconfig, metrics_routes, pki
from jobplane.apiserver.authn import Authenticator
from jobplane.apiserver.connguard import ConnectionGuard
from jobplane.apiserver.http import HANDLER_KEY, create_app
from jobplane.apiserver.openapi_routes import load_default
from jobplane.apiserver.service import ApiService
from jobplane.client import events
from jobplane.client.base import Client
from jobplane.client.events import EventRecorder
from jobplane.client.inproc import InProcessClient
from jobplane.clock import Clock
from jobplane.controllers.leader import LeaderElector, new_identity
from jobplane.controllers.manager import ControllerContext, start_controllers
from jobplane.settings import Settings
from jobplane.storage.base import Store

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 2.0


def open_store(settings: Settings) -> Store:
    """The store ``--database`` names, with the configured history bounds."""
    return storage.open_store(settings.database, settings.data_dir, history=settings.store_history,
                              history_bytes=settings.store_history_bytes)


IDENTITY_FILE = "leader-identity"


def leader_identity(data_dir: Path) -> tuple[str, int | None]:
    """This server's leader-election identity and the descriptor that holds it.

    Upstream's ``<hostname>_<uuid>`` is new in every process, so a controller manager
    restarted after a crash waits out its own old lease (15 s). A server keeps its identity
    in ``DIR/leader-identity`` and holds an exclusive ``flock`` on it while it runs: the
    lock proves the process that last used the identity is gone, so a server restarted on
    the same directory renews its own lease at once (client-go's ``IsLeader`` path) instead
    of waiting for it to expire. A second server on a directory in use gets a fresh identity."""
    path = data_dir / IDENTITY_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        log.warning("leader identity: cannot open %s (%s); using a new one", path, exc)
        return new_identity(), None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return new_identity(), None
    try:
        identity = os.pread(fd, 512, 0).decode().strip()
        if not identity.startswith(f"{socket.gethostname()}_"):  # new, or a directory copied from elsewhere
            identity = new_identity()
            os.ftruncate(fd, 0)
            os.pwrite(fd, identity.encode() + b"\n", 0)
            os.fsync(fd)
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("leader identity: cannot use %s (%s); using a new one", path, exc)
        os.close(fd)
        return new_identity(), None
    return identity, fd


def url_host(host: str) -> str:
    """The host to put in URLs: a wildcard bind address is reached via loopback."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _log_task_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception(), exc_info=task.exception())


@dataclass
class Server:
    """The running pieces, so ``stop`` can take them down in reverse order."""

    settings: Settings
    clock: Clock = field(default_factory=Clock)
    store: Store | None = None
    service: ApiService | None = None
    runner: web.AppRunner | None = None
    url: str = ""
    port: int = 0
    token: str = ""
    controller_ctx: ControllerContext | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    agent_task: asyncio.Task[None] | None = None
    agent_process: Any = None  # agentproc.AgentProcess: the agent in its own process (--processes 2)
    client: Client | None = None
    elector: LeaderElector | None = None  # on a shared store
    election_task: asyncio.Task[None] | None = None
    _identity_fd: int | None = None  # holds DIR/leader-identity while the server runs
    metrics: metrics.Metrics = field(default_factory=metrics.Metrics)
    history_task: asyncio.Task | None = None
    guard: ConnectionGuard | None = None
    rbac: Any = None  # apiserver.rbac_authorizer.RbacAuthorizer
    node_graph: Any = None  # apiserver.node_authorizer.NodeGraph
    audit: Any = None  # apiserver.audit.AuditLog
    authenticator: Authenticator | None = None

    async def start(self) -> None:
        s = self.settings
        metrics.use(self.metrics)  # the controllers, queues and agent started below count here
        s.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(s.data_dir, 0o700)
        self.store = open_store(s)
        await self.store.start()
        self.service = ApiService(self.store, self.clock, service_cidr=s.service_cidr)
        from jobplane.apiserver.serviceaccount_admission import ServiceAccountAdmission

        self.service.admission_plugins.append(ServiceAccountAdmission(self.store))
        await self.service.ensure_default_namespaces()
        await self.service.ensure_default_storage_class()

        material = pki.ensure_pki(s.pki_dir, s.host)
        self.token = auth.ensure_token(s.pki_dir)
        from jobplane.apiserver.satokens import ServiceAccountTokens, ensure_signing_key

        self.service.tokens = ServiceAccountTokens(ensure_signing_key(s.pki_dir))
        self.guard = ConnectionGuard(
            max_unauthenticated=connguard.effective_limit(s.max_unauthenticated_connections),
            header_timeout=s.request_header_timeout)
        self.authenticator = authenticator = await self._secure(s, self.service)
        app = create_app(self.service, token=self.token, pods_dir=s.pods_dir, openapi=load_default(),
                         server_address=f"{url_host(s.host)}:{s.port}", clock=self.clock,
                         authenticator=authenticator, guard=self.guard, request_timeout=s.request_timeout)
        metrics_routes.install(app[HANDLER_KEY], self.metrics, self.store)
        if s.audit_log_path:
            from jobplane.apiserver import audit

            self.audit = audit.AuditLog(s.audit_log_path, audit.load_policy(s.audit_policy_file or None), self.clock,
                                        max_size_mb=s.audit_log_maxsize, max_backups=s.audit_log_maxbackup,
                                        max_age_days=s.audit_log_maxage)
            app[HANDLER_KEY].audit = self.audit
            self.service.audit = self.audit  # the in-process callers (controllers, embedded agent) too
        from jobplane.apiserver import history

        archiver = history.install(app[HANDLER_KEY], self.store, s.data_dir, s.pods_dir, self.token, self.clock,
                                   retention=s.history_retention, max_bytes=s.history_max_bytes)
        self.history_task = asyncio.create_task(archiver.run(), name="history-archiver")
        from jobplane.apiserver import dashboard
        from jobplane.controllers.state_metrics import next_schedule_time

        dashboard.install(app[HANDLER_KEY], self.service, self.clock).next_run = next_schedule_time
        self.history_task.add_done_callback(_log_task_failure)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                    shutdown_timeout=SHUTDOWN_TIMEOUT, keepalive_timeout=s.idle_timeout)
        await self.runner.setup()
        site = web.SockSite(self.runner, connguard.listen_socket(s.host, s.port, self.guard),
                            ssl_context=material.ssl_context(), backlog=1024)
        await site.start()
        self.guard.start(asyncio.get_running_loop())
        self.port = self._bound_port(site)
        self.url = f"https://{url_host(s.host)}:{self.port}"
        app[HANDLER_KEY].set_server_address(f"{url_host(s.host)}:{self.port}")
        if not s.shared_store:  # servers sharing a database would each claim the slice
            await self.service.ensure_kubernetes_service(url_host(s.host).strip("[]"), self.port)

        from jobplane.apiserver.identity import authenticated

        # the controller manager's own identity: leader election and the shared informers;
        # each controller then acts as its own service account (controllers.manager)
        self.client = client = InProcessClient(self.service, authenticated("system:kube-controller-manager"),
                                               field_manager="kube-controller-manager")
        if s.shared_store:
            await self._start_election(client)
        else:
            await self._start_controllers(client)
        if s.agent:
            from jobplane.agent.embedded import default_node_name
            from jobplane.apiserver.identity import node_user

            node_name = s.node_name or default_node_name()
            if s.processes >= 2:
                await self._start_agent_process(node_name)
            else:
                # the embedded agent acts as its node, as a standalone one does with its certificate
                self.agent_task = self._start_agent(client.as_user(node_user(node_name)).as_manager("kubelet"))

        kubeconfig.write_kubeconfig(s.kubeconfig_path, self.url, material.ca_pem(), self.token)

    async def _secure(self, s: Settings, service: ApiService) -> Authenticator:
        """Authentication chain, authorizers, reviews and escalation checks, with upstream's
        default roles reconciled first."""
        from jobplane.apiserver import authn, authz, bootstrappolicy, usercerts
        from jobplane.apiserver.node_authorizer import NodeAuthorizer, NodeGraph, NodeRestriction
        from jobplane.apiserver.rbac_admission import RbacEscalationCheck
        from jobplane.apiserver.rbac_authorizer import RbacAuthorizer
        from jobplane.apiserver.reviews import Reviews

        static = authn.load_token_file(s.token_auth_file) if s.token_auth_file else None
        authenticator = authn.Authenticator(self.token, static_tokens=static,
                                            deny_list=authn.CertDenyList(s.pki_dir / usercerts.REVOKED))
        authenticator.add_token_authenticator(service.authenticate_service_account)
        from jobplane.apiserver import bootstraptokens

        authenticator.add_token_authenticator(bootstraptokens.authenticator(service))
        await bootstrappolicy.reconcile(service)
        self.rbac = RbacAuthorizer()
        await self.rbac.start(service)
        self.node_graph = NodeGraph()
        await self.node_graph.start(service)
        modes = [m.strip() for m in s.authorization_mode.split(",") if m.strip()]
        members: list[Any] = [NodeAuthorizer(self.node_graph, service)] if "Node" in modes else []
        chain: Any = authz.AlwaysAllow() if modes == ["AlwaysAllow"] else authz.Chain([*members, self.rbac])
        service.reviews = Reviews(chain, self.rbac, authenticator)
        if "RBAC" in modes or "Node" in modes:
            service.authorizer = chain
        if "Node" in modes:
            service.admission_plugins.append(NodeRestriction())
        if "RBAC" in modes:
            service.admission_plugins.append(RbacEscalationCheck(chain, self.rbac))
        if service.authorizer is not None:
            from jobplane.apiserver.certificates_admission import CertificateSignerCheck

            service.admission_plugins.append(CertificateSignerCheck(chain))
        return authenticator

    async def _start_controllers(self, client: Client) -> None:
        """Start every controller with fresh informers (again after a lost and regained lease)."""
        if self.tasks:
            return
        self.controller_ctx = ControllerContext(client=client, clock=self.clock, settings=self.settings)
        self.tasks = await start_controllers(self.controller_ctx)
        for task in self.tasks:
            task.add_done_callback(_log_task_failure)

    async def _stop_controllers(self) -> None:
        tasks, self.tasks = self.tasks, []
        await cancel_and_wait(tasks)
        if self.controller_ctx is not None:
            with contextlib.suppress(Exception):
                await self.controller_ctx.informers.stop_all()
        self.controller_ctx = None

    async def _start_election(self, client: Client) -> None:
        """Try the lease once now, so a lone server has its controllers when it says ready;
        then keep standing for election in the background."""
        recorder = EventRecorder(client, "jobplane-controller-manager", self.clock)
        identity, self._identity_fd = leader_identity(self.settings.data_dir)
        self.elector = elector = LeaderElector(client, self.clock, identity, recorder=recorder)
        if await elector.try_acquire_or_renew():
            log.info("leader lease acquired as %s: starting controllers", elector.identity)
            await self._start_controllers(client)
        else:
            log.info("controllers on standby: lease held by %s", elector.leader())
        self.election_task = asyncio.create_task(self._elect(client, elector), name="leader-election")
        self.election_task.add_done_callback(_log_task_failure)

    async def _elect(self, client: Client, elector: LeaderElector) -> None:
        async def started() -> None:
            if not self.tasks:
                log.info("became leader as %s: starting controllers", elector.identity)
            await self._start_controllers(client)

        async def stopped() -> None:
            log.info("stopped leading: stopping controllers")
            await self._stop_controllers()

        while True:
            try:
                await elector.run(started, stopped)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep standing for election whatever a term's end threw
                log.exception("leader election term failed")
                await self._stop_controllers()
                await self.clock.sleep(elector.retry_period)

    @staticmethod
    def _bound_port(site: web.BaseSite) -> int:
        server = site._server  # aiohttp keeps the asyncio server here
        for sock in getattr(server, "sockets", None) or ():
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                return sock.getsockname()[1]
        raise RuntimeError("the API server is not listening")

    def _start_agent(self, client: Client) -> asyncio.Task[None]:
        handler = self.runner.app[HANDLER_KEY] if self.runner is not None else None

        def on_start(agent: Agent) -> None:
            if handler is not None:
                handler.set_local_node(agent.node_name, agent.open_stream, agent.resource_usage)

        task = asyncio.create_task(run_embedded(client, self.settings, self.clock, api_port=self.port,
                                                on_start=on_start), name="agent")
        task.add_done_callback(_log_task_failure)
        return task

    async def _start_agent_process(self, node_name: str) -> None:
        """The agent as a child process on the API's unix socket (``agentproc``). Its pods'
        exec, attach, port-forward and usage figures are reached through its log endpoint,
        as a standalone agent's; their log files are in this server's pods dir as before."""
        from jobplane.agent.embedded import api_host
        from jobplane.agentproc import AgentProcess

        assert self.runner is not None and self.authenticator is not None
        handler = self.runner.app[HANDLER_KEY]
        handler.set_local_node(node_name, None)  # port-forward dials the loopback, as for the in-process agent
        self.agent_process = AgentProcess(self.settings, node_name)
        await self.agent_process.start(self.runner, self.authenticator, api_host=api_host(self.settings),
                                       api_port=self.port, admin_token=self.token,
                                       typed_after=self.service.typed_after if self.service is not None else None)

    async def stop(self) -> None:
        """Agent first (it detaches from its pods, which keep running), then controllers, event
        recorders, HTTP, and the store last."""
        if self.agent_task is not None:
            await cancel_and_wait([self.agent_task])
        if self.agent_process is not None:
            await self.agent_process.stop()  # SIGTERM, its grace, SIGKILL: before the API it talks to closes
        if self.election_task is not None:
            await cancel_and_wait([self.election_task])  # stops the controllers and releases the lease
        await self._stop_controllers()
        if self.elector is not None:
            with contextlib.suppress(Exception):
                await self.elector.release()
        await events.close_all()  # pending events would only meet a closed store
        if self.history_task is not None:
            await cancel_and_wait([self.history_task])
        if self.guard is not None:
            await self.guard.stop()
        if self.runner is not None:
            self.runner.app[HANDLER_KEY].close_streams()
            await self.runner.cleanup()
        if self.rbac is not None:
            await self.rbac.stop()
        if self.node_graph is not None:
            await self.node_graph.stop()
        if self.audit is not None:
            self.audit.close()
        if self.store is not None:
            await self.store.close()
        if self._identity_fd is not None:
            os.close(self._identity_fd)  # a server started on this directory may now be us again
            self._identity_fd = None


async def serve(settings: Settings, announce: Callable[[str], None] = print) -> None:
    """Run until SIGTERM/SIGINT, then shut down cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = Server(settings)
    restore_gc: Callable[[], None] | None = None
    try:
        await server.start()
        restore_gc = gcpolicy.install()
        announce(f"jobplane server ready at {server.url} (kubeconfig: {settings.kubeconfig_path})")
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.stop()
        if restore_gc is not None:
            restore_gc()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiohttp's access log would cost a line per request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
