"""CronJob controller (upstream's cronjob controller v2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext


async def run(ctx: ControllerContext) -> None:
    from jobplane.controllers.cronjob.controller import CronJobController

    await CronJobController(ctx).run()
