"""ClusterRole aggregation controller (pkg/controller/clusterroleaggregation): a ClusterRole
with an ``aggregationRule`` gets the rules of every ClusterRole its selectors match, kept
current as those change (so a new role labelled ``rbac.authorization.k8s.io/aggregate-to-edit:
"true"`` extends ``edit`` and, through it, ``admin``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.rbac import aggregated_rules
from jobplane.client.base import Client
from jobplane.client.informer import SharedInformerFactory
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.base import run_workers

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RESOURCE = "clusterroles.rbac.authorization.k8s.io"


class ClusterRoleAggregationController:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory) -> None:
        self.client = client
        self.roles = informers.informer(RESOURCE)
        self.queue = WorkQueue(clock, name="clusterrole-aggregation")

        def enqueue_aggregated(*_: Obj) -> None:
            # any role may be selected by any aggregated role: re-check those (few)
            for role in self.roles.list():
                if role.get("aggregationRule"):
                    self.queue.add(role["metadata"]["name"])

        self.roles.add_handler(on_add=enqueue_aggregated, on_update=enqueue_aggregated,
                               on_delete=enqueue_aggregated)

    async def reconcile(self, name: str) -> float | None:
        role = self.roles.get(None, name)
        if role is None or not role.get("aggregationRule"):
            return None
        rules = aggregated_rules(role, self.roles.list())
        if rules == (role.get("rules") or []):
            return None
        log.debug("clusterrole %s: %d aggregated rules", name, len(rules))
        try:
            await self.client.patch(RESOURCE, name, {"rules": rules})
        except StatusError as exc:
            if exc.code != 404:
                raise
        return None

    async def run(self) -> None:
        await self.roles.start()
        await run_workers(self.queue, self.reconcile, 1, "clusterrole-aggregation")


async def run(ctx: ControllerContext) -> None:
    await ClusterRoleAggregationController(ctx.client, ctx.clock, ctx.informers).run()
