"""ServiceAccount controller and root-CA publisher (``pkg/controller/serviceaccount`` and
``pkg/controller/certificates/rootcacertpublisher``), one queue keyed by namespace.

Every active namespace gets the ``default`` ServiceAccount (made again if deleted) and the
``kube-root-ca.crt`` ConfigMap holding the server's CA (made again if deleted, put back if
edited). A namespace being deleted is left alone, as upstream.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.client.base import Client
from jobplane.client.informer import SharedInformerFactory
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.base import enqueue_handlers, run_workers

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_SA = "default"
ROOT_CA = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
               "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
               "guaranteed across distributions of Kubernetes clusters.")


def _namespace_of(obj: Obj) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def root_ca_configmap(namespace: str, ca_pem: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": ROOT_CA, "namespace": namespace,
                         "annotations": {"kubernetes.io/description": DESCRIPTION}},
            "data": {ROOT_CA_KEY: ca_pem}}


class ServiceAccountsController:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory, ca_pem: str | None,
                 ca_client: Client | None = None) -> None:
        self.client = client  # upstream's service-account-controller
        self.ca_client = ca_client or client  # upstream's root-ca-cert-publisher
        self.ca_pem = ca_pem
        self.namespaces = informers.informer("namespaces")
        self.accounts = informers.informer("serviceaccounts")
        self.configmaps = informers.informer("configmaps")
        self.queue = WorkQueue(clock, name="serviceaccount")
        self.namespaces.add_handler(**enqueue_handlers(self.queue, key_fn=lambda ns: ns["metadata"]["name"]))
        self.accounts.add_handler(**enqueue_handlers(
            self.queue, key_fn=_namespace_of, accept=lambda sa: sa["metadata"].get("name") == DEFAULT_SA))
        self.configmaps.add_handler(**enqueue_handlers(
            self.queue, key_fn=_namespace_of, accept=lambda cm: cm["metadata"].get("name") == ROOT_CA))

    async def _create(self, resource: str, body: Obj, namespace: str) -> None:
        client = self.ca_client if resource == "configmaps" else self.client
        try:
            await client.create(resource, body, namespace)
            log.debug("namespace %s: created %s %s", namespace, resource, body["metadata"]["name"])
        except StatusError as exc:
            if exc.code not in (409, 403, 404):  # exists, or the namespace is going away
                raise

    async def reconcile(self, namespace: str) -> None:
        ns = self.namespaces.get_key(namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp") or \
                (ns.get("status") or {}).get("phase") == "Terminating":
            return
        if self.accounts.get_key(f"{namespace}/{DEFAULT_SA}") is None:
            await self._create("serviceaccounts", {"metadata": {"name": DEFAULT_SA}}, namespace)
        if self.ca_pem is None:
            return
        current = self.configmaps.get_key(f"{namespace}/{ROOT_CA}")
        wanted = root_ca_configmap(namespace, self.ca_pem)
        if current is None:
            await self._create("configmaps", wanted, namespace)
        elif current.get("data") != wanted["data"]:
            updated = dict(current, data=wanted["data"])
            try:
                await self.ca_client.update("configmaps", updated, namespace)
            except StatusError as exc:
                if exc.code not in (404, 409):
                    raise

    async def run(self, workers: int = 1) -> None:
        for informer in (self.namespaces, self.accounts, self.configmaps):
            await informer.start()
        await run_workers(self.queue, self.reconcile, workers, "serviceaccount")


def _ca_pem(settings: Any) -> str | None:
    try:
        return str((settings.pki_dir / "ca.crt").read_text())
    except (OSError, AttributeError):
        return None


async def run(ctx: ControllerContext) -> None:
    await ServiceAccountsController(ctx.client, ctx.clock, ctx.informers, _ca_pem(ctx.settings),
                                   ctx.client_as("root-ca-cert-publisher")).run()
