"""The three generic controllers together under the manager: TTL -> Foreground -> GC."""

import asyncio
import contextlib

from ctrlgen_helpers import eventually, exists, make_job, make_pod

from jobplane.controllers.manager import ControllerContext, start_controllers
from jobplane.settings import Settings

GENERIC = ("jobplane.controllers.garbage_collector", "jobplane.controllers.namespace",
           "jobplane.controllers.ttl_after_finished")


async def test_ttl_expiry_cascades_to_pods_and_job_vanishes(client, clock, tmp_path):
    job = await make_job(client, "j", ttl=10, finished_at=clock.now())
    await make_pod(client, "p", owners=[job])
    ctx = ControllerContext(client=client, clock=clock, settings=Settings(data_dir=tmp_path))
    tasks = await start_controllers(ctx, only=GENERIC)
    try:
        await asyncio.sleep(0)
        await clock.advance(10)

        async def both_gone():
            return not await exists(client, "jobs", "j") and not await exists(client, "pods", "p")

        await eventually(both_gone)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await ctx.informers.stop_all()
