"""CronJob controller (upstream's cronjob controller v2)."""

from __future__ import annotations

from typing import Any


async def run(ctx: Any) -> None:
    from jobplane.controllers.cronjob.controller import CronJobController

    await CronJobController(ctx).run()
