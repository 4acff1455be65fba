"""Keeping an in-memory index of one kind current from the store: list, then follow the
watch; when the watch ends (e.g. 410 Gone) list again, reset the index and re-add. The
RBAC index and the Node authorizer's graph are both fed this way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from jobplane.api.registry import ResourceInfo

log = logging.getLogger(__name__)

Apply = Callable[[str, dict], None]


async def mirror(service: Any, info: ResourceInfo, apply: Apply, reset: Callable[[], None],
                 name: str) -> asyncio.Task[None]:
    """Lists ``info`` into ``apply`` (as ADDED) and returns the task that follows its changes."""
    rv = await _relist(service, info, apply)
    return asyncio.create_task(_follow(service, info, apply, reset, rv, name), name=name)


async def _relist(service: Any, info: ResourceInfo, apply: Apply, reset: Callable[[], None] | None = None) -> str | None:
    listed = await service.list(info, None)
    if reset is not None:
        reset()
    for obj in listed["items"]:
        apply("ADDED", obj)
    return (listed.get("metadata") or {}).get("resourceVersion")


async def _follow(service: Any, info: ResourceInfo, apply: Apply, reset: Callable[[], None],
                  rv: str | None, name: str) -> None:
    while True:
        try:
            async for event, obj in service.watch(info, None, resource_version=rv):
                if event == "BOOKMARK":
                    continue
                apply(event, obj)
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. 410 Gone: relist
            log.warning("%s: watch ended (%s): relisting", name, exc)
            rv = await _relist(service, info, apply, reset)
            await asyncio.sleep(0.1)
