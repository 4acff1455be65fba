"""Starts every controller of the control plane in one process.

Each controller module exposes ``async def run(ctx: ControllerContext) -> None`` that runs
until cancelled. Controllers share informers through ``ctx.informers``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from jobplane.client.base import Client
from jobplane.client.informer import SharedInformerFactory
from jobplane.clock import Clock
from jobplane.controllers import (
    certificates,
    clusterrole_aggregation,
    cronjob,
    endpointslice,
    event_ttl,
    garbage_collector,
    localpath,
    namespace,
    node_lifecycle,
    podgc,
    scheduler,
    serviceaccounts,
    state_metrics,
    ttl_after_finished,
)
from jobplane.controllers.job import controller as job_controller
from jobplane.settings import Settings

log = logging.getLogger(__name__)


class ControllerContext:
    """What every controller is given: the client, the clock, the settings and the shared
    informers (created over ``client`` unless passed in).

    ``for_controller(name)`` is the context of one controller: the same informers (read as
    the controller manager, whose role lists and watches everything), and a client acting as
    the controller's own service account ``system:serviceaccount:kube-system:<name>``, which
    upstream's bootstrap policy binds to the role ``system:controller:<name>``
    (kube-controller-manager's ``--use-service-account-credentials``). A client that cannot
    act as another user (HTTP) is used as it is."""

    def __init__(self, client: Client, clock: Clock, settings: Settings,
                 informers: SharedInformerFactory | None = None) -> None:
        self.client = client
        self.clock = clock
        self.settings = settings
        self.informers = informers if informers is not None else SharedInformerFactory(client, clock)

    def client_as(self, identity: str) -> Client:
        """A client acting as ``identity``: a controller's service-account name in kube-system,
        or a user name (``system:kube-scheduler``)."""
        as_user = getattr(self.client, "as_user", None)
        if as_user is None or getattr(self.client, "user", None) is None:
            return self.client  # a trusted caller (unit tests) or a transport without identities
        from jobplane.apiserver.identity import authenticated, service_account_user

        user = authenticated(identity) if identity.startswith("system:") else \
            service_account_user("kube-system", identity)
        return as_user(user)  # type: ignore[no-any-return]

    def for_controller(self, identity: str) -> ControllerContext:
        return ControllerContext(self.client_as(identity), self.clock, self.settings, self.informers)


Controller = Callable[[ControllerContext], Coroutine[Any, Any, None]]

# module name -> entry point, in start order
CONTROLLERS: dict[str, Controller] = {
    "jobplane.controllers.garbage_collector": garbage_collector.run,
    "jobplane.controllers.namespace": namespace.run,
    "jobplane.controllers.ttl_after_finished": ttl_after_finished.run,
    "jobplane.controllers.scheduler": scheduler.run,
    "jobplane.controllers.job.controller": job_controller.run,
    "jobplane.controllers.cronjob": cronjob.run,
    "jobplane.controllers.node_lifecycle": node_lifecycle.run,
    "jobplane.controllers.podgc": podgc.run,
    "jobplane.controllers.event_ttl": event_ttl.run,
    "jobplane.controllers.serviceaccounts": serviceaccounts.run,
    "jobplane.controllers.endpointslice": endpointslice.run,
    "jobplane.controllers.localpath": localpath.run,
    "jobplane.controllers.state_metrics": state_metrics.run,
    "jobplane.controllers.clusterrole_aggregation": clusterrole_aggregation.run,
    "jobplane.controllers.certificates": certificates.run,
    "jobplane.controllers.certificates.tokencleaner": certificates.run_token_cleaner,
}


# module name -> the identity it acts as (upstream's controller service accounts; the
# scheduler is its own component, system:kube-scheduler)
IDENTITIES: dict[str, str] = {
    "jobplane.controllers.garbage_collector": "generic-garbage-collector",
    "jobplane.controllers.namespace": "namespace-controller",
    "jobplane.controllers.ttl_after_finished": "ttl-after-finished-controller",
    "jobplane.controllers.scheduler": "system:kube-scheduler",
    "jobplane.controllers.job.controller": "job-controller",
    "jobplane.controllers.cronjob": "cronjob-controller",
    "jobplane.controllers.node_lifecycle": "node-controller",
    "jobplane.controllers.podgc": "pod-garbage-collector",
    "jobplane.controllers.event_ttl": "event-ttl-controller",
    "jobplane.controllers.serviceaccounts": "service-account-controller",
    "jobplane.controllers.endpointslice": "endpointslice-controller",
    "jobplane.controllers.localpath": "local-path-provisioner",
    "jobplane.controllers.state_metrics": "state-metrics",
    "jobplane.controllers.clusterrole_aggregation": "clusterrole-aggregation-controller",
    "jobplane.controllers.certificates": "certificate-controller",
    "jobplane.controllers.certificates.tokencleaner": "token-cleaner",
}


async def start_controllers(ctx: ControllerContext,
                            only: tuple[str, ...] | None = None) -> list[asyncio.Task[None]]:
    """Start each controller (``only``: a subset, by module name; an unknown name is a KeyError),
    each with its own identity (``IDENTITIES``)."""
    return [asyncio.create_task(CONTROLLERS[name](ctx.for_controller(IDENTITIES[name])), name=name)
            for name in only or CONTROLLERS]
