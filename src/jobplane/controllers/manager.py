"""Starts every controller of the control plane in one process.

Each controller module exposes ``async def run(ctx: ControllerContext) -> None`` that runs
until cancelled. Controllers share informers through ``ctx.informers``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from jobplane.clock import Clock
from jobplane.settings import Settings

log = logging.getLogger(__name__)

CONTROLLERS = (
    "jobplane.controllers.garbage_collector",
    "jobplane.controllers.namespace",
    "jobplane.controllers.ttl_after_finished",
    "jobplane.controllers.scheduler",
    "jobplane.controllers.job.controller",
    "jobplane.controllers.cronjob",
    "jobplane.controllers.node_lifecycle",
    "jobplane.controllers.podgc",
    "jobplane.controllers.event_ttl",
    "jobplane.controllers.state_metrics",
)


@dataclass
class ControllerContext:
    client: Any  # jobplane.client.base.Client
    clock: Clock
    settings: Settings
    informers: Any = None  # jobplane.client.informer.SharedInformerFactory
    extra: dict[str, Any] = field(default_factory=dict)


async def start_controllers(ctx: ControllerContext, only: tuple[str, ...] | None = None) -> list[asyncio.Task]:
    """Import and start each controller; a module that does not exist yet is skipped."""
    if ctx.informers is None:
        from jobplane.client.informer import SharedInformerFactory

        ctx.informers = SharedInformerFactory(ctx.client, ctx.clock)
    tasks = []
    for name in only or CONTROLLERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                log.debug("controller %s not available", name)
                continue
            raise
        tasks.append(asyncio.create_task(module.run(ctx), name=name))
    return tasks
