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
    informers (created over ``client`` unless passed in)."""

    def __init__(self, client: Client, clock: Clock, settings: Settings,
                 informers: SharedInformerFactory | None = None) -> None:
        self.client = client
        self.clock = clock
        self.settings = settings
        self.informers = informers if informers is not None else SharedInformerFactory(client, clock)


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


async def start_controllers(ctx: ControllerContext,
                            only: tuple[str, ...] | None = None) -> list[asyncio.Task[None]]:
    """Start each controller (``only``: a subset, by module name; an unknown name is a KeyError)."""
    return [asyncio.create_task(CONTROLLERS[name](ctx), name=name) for name in only or CONTROLLERS]
