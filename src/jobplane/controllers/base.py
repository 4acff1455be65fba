"""Small pieces every controller shares: workers over a WorkQueue, informer handlers that
enqueue keys, and read-modify-write against the API with conflict retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from jobplane.api.errors import StatusError
from jobplane.client.base import Client
from jobplane.client.informer import object_key
from jobplane.client.workqueue import QueueShutDown, WorkQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# A reconcile returns None (done) or seconds after which to look at the key again.
Reconcile = Callable[[str], Awaitable[float | None]]


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, StatusError) and exc.code == 404


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, StatusError) and exc.code == 409


async def worker(queue: WorkQueue, reconcile: Reconcile, name: str = "") -> None:
    """Process keys until the queue shuts down: success forgets the key's back-off (and
    honours a requested re-check delay); an exception is logged and the key re-queued with
    rate-limited back-off."""
    while True:
        try:
            key = await queue.get()
        except QueueShutDown:
            return
        try:
            after = await reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bad key must not kill the worker
            if isinstance(exc, StatusError) and exc.code == 409:
                log.debug("%s: conflict syncing %r, retrying: %s", name, key, exc)
            else:
                log.warning("%s: error syncing %r (retry %d): %s", name, key, queue.num_requeues(key),
                            exc, exc_info=not isinstance(exc, StatusError))
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
            if after is not None:
                queue.add_after(key, after)
        finally:
            queue.done(key)


async def run_workers(queue: WorkQueue, reconcile: Reconcile, workers: int = 1, name: str = "") -> None:
    """Run ``workers`` workers until cancelled; shuts the queue down on the way out."""
    tasks = [asyncio.create_task(worker(queue, reconcile, name), name=f"{name}-worker-{i}")
             for i in range(workers)]
    try:
        await asyncio.gather(*tasks)
    finally:
        queue.shutdown()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def enqueue_handlers(queue: WorkQueue, key_fn: Callable[[Obj], str | None] = object_key,
                     accept: Callable[[Obj], bool] | None = None) -> dict[str, Callable[..., None]]:
    """Informer handlers (``informer.add_handler(**enqueue_handlers(q))``) that add the key
    of every added, updated or deleted object (``accept`` filters; None key skips)."""

    def add(obj: Obj) -> None:
        if accept is None or accept(obj):
            key = key_fn(obj)
            if key is not None:
                queue.add(key)

    def update(old: Obj, new: Obj) -> None:
        add(new)

    return {"on_add": add, "on_update": update, "on_delete": add}


async def update_with_retry(client: Client, resource: str, namespace: str | None, name: str,
                            mutate: Callable[[Obj], bool], *, uid: str | None = None,
                            subresource: str | None = None, attempts: int = 10) -> Obj | None:
    """GET the live object, let ``mutate`` change it in place (returning False for "nothing
    to do"), PUT it guarded by its resourceVersion; retry on 409. Returns the stored object,
    or None when the object is gone (or was replaced by another with a different uid) or
    there was nothing to change."""
    for _ in range(attempts):
        try:
            obj = await client.get(resource, name, namespace)
        except StatusError as exc:
            if exc.code == 404:
                return None
            raise
        if uid and obj.get("metadata", {}).get("uid") != uid:
            return None
        if not mutate(obj):
            return None
        try:
            return await client.update(resource, obj, namespace, subresource=subresource)
        except StatusError as exc:
            if exc.code == 404:
                return None
            if exc.code != 409:
                raise
    raise StatusError(409, "Conflict", f"too many conflicts updating {resource} {namespace}/{name}")


async def remove_finalizer(client: Client, resource: str, namespace: str | None, name: str, finalizer: str,
                           uid: str | None = None) -> Obj | None:
    """Drop ``finalizer`` from ``metadata.finalizers`` (which completes a pending deletion
    when it was the last)."""

    def mutate(obj: Obj) -> bool:
        finalizers = obj.get("metadata", {}).get("finalizers") or []
        if finalizer not in finalizers:
            return False
        obj["metadata"]["finalizers"] = [f for f in finalizers if f != finalizer]
        return True

    return await update_with_retry(client, resource, namespace, name, mutate, uid=uid)
