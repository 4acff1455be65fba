"""CertificateSigningRequests, as kube-controller-manager's ``csrapproving`` and
``csrsigning`` controllers handle them (``pkg/controller/certificates``), plus kubeadm's
``tokencleaner`` for expired bootstrap tokens.

- approving: a request for ``kubernetes.io/kube-apiserver-client-kubelet`` whose subject is
  ``O=system:nodes, CN=system:node:<name>`` with client usages and no subject alternative
  names is approved (``AutoApproved``) when a SubjectAccessReview says its requester may
  ``create certificatesigningrequests/nodeclient`` (a bootstrap token's group is bound to
  that) or, for its own name, ``certificatesigningrequests/selfnodeclient``. Nothing else
  is ever auto-approved (``kubectl certificate approve`` does it by hand).
- signing: an approved request for either client signer gets a certificate from the
  server's CA (``DIR/pki``), valid ``spec.expirationSeconds`` or at most a year
  (``--cluster-signing-duration``'s default).
- token cleaner: a ``bootstrap.kubernetes.io/token`` Secret past its expiration is deleted.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
from pathlib import Path
from typing import Any

from jobplane.api import certificates, meta
from jobplane.api.errors import StatusError
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.base import enqueue_handlers, run_workers

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RESOURCE = "certificatesigningrequests.certificates.k8s.io"
MAX_DURATION = 365 * 24 * 3600
NODE_CLIENT_USAGES = {"digital signature", "key encipherment", "client auth"}


def node_client_subject(request: Any) -> str | None:
    """The node name when ``request`` (an x509 CSR) is a kubelet client request
    (upstream's ``IsKubeletClientCSR``), else None."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    orgs = [a.value for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    cns = [a.value for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if orgs != ["system:nodes"] or len(cns) != 1 or not str(cns[0]).startswith("system:node:"):
        return None
    try:
        request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return None  # no DNS names, IPs, emails or URIs in a client certificate
    except x509.ExtensionNotFound:
        pass
    return str(cns[0])[len("system:node:"):] or None


def _usages_ok(csr: Obj) -> bool:
    usages = set((csr.get("spec") or {}).get("usages") or ())
    return "client auth" in usages and usages <= NODE_CLIENT_USAGES


class CertificateController:
    def __init__(self, client: Any, clock: Clock, informers: Any, pki_dir: Path) -> None:
        self.client = client
        self.clock = clock
        self.pki_dir = pki_dir
        self.csrs = informers.informer(RESOURCE)
        self.queue = WorkQueue(clock, name="csr")
        self.csrs.add_handler(**enqueue_handlers(self.queue, lambda o: o["metadata"]["name"]))

    async def reconcile(self, name: str) -> float | None:
        csr = self.csrs.get(None, name)
        if csr is None:
            return None
        approved = certificates.has_condition(csr, "Approved")
        if certificates.has_condition(csr, "Denied") or certificates.has_condition(csr, "Failed"):
            return None
        if not approved:
            await self._maybe_approve(csr)
            return None
        if not (csr.get("status") or {}).get("certificate"):
            await self._sign(csr)
        return None

    async def _allowed(self, csr: Obj, subresource: str) -> bool:
        spec = csr.get("spec") or {}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": spec.get("username") or "", "uid": spec.get("uid") or "", "groups": spec.get("groups") or [],
            "extra": spec.get("extra") or {},
            "resourceAttributes": {"group": certificates.GROUP, "resource": "certificatesigningrequests",
                                   "verb": "create", "subresource": subresource}}}
        result = await self.client.create("subjectaccessreviews.authorization.k8s.io", review)
        return bool((result.get("status") or {}).get("allowed"))

    async def _maybe_approve(self, csr: Obj) -> None:
        spec = csr.get("spec") or {}
        if spec.get("signerName") != certificates.KUBELET_CLIENT_SIGNER or not _usages_ok(csr):
            return
        request = certificates.parse_request(csr)
        node = node_client_subject(request) if request is not None else None
        if node is None:
            return
        own = spec.get("username") == f"system:node:{node}"
        if not (own and await self._allowed(csr, "selfnodeclient")) and not await self._allowed(csr, "nodeclient"):
            return
        now = meta.rfc3339(self.clock.now())
        body = {**csr, "status": {**(csr.get("status") or {}), "conditions": [
            *((csr.get("status") or {}).get("conditions") or ()),
            {"type": "Approved", "status": "True", "reason": "AutoApproved",
             "message": "Auto approving kubelet client certificate after SubjectAccessReview.",
             "lastUpdateTime": now, "lastTransitionTime": now}]}}
        try:
            await self.client.update(RESOURCE, body, subresource="approval")
            log.info("certificatesigningrequest %s: approved for node %s", csr["metadata"]["name"], node)
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def _sign(self, csr: Obj) -> None:
        from jobplane.apiserver import usercerts

        spec = csr.get("spec") or {}
        if spec.get("signerName") not in (certificates.KUBELET_CLIENT_SIGNER, certificates.APISERVER_CLIENT_SIGNER):
            return
        if not (self.pki_dir / "ca.key").exists():
            return  # this server cannot sign (no CA key): another one will
        request = certificates.parse_request(csr)
        status = dict(csr.get("status") or {})
        if request is None:
            now = meta.rfc3339(self.clock.now())
            status["conditions"] = [*(status.get("conditions") or ()), {
                "type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                "message": "unable to parse csr", "lastUpdateTime": now, "lastTransitionTime": now}]
        else:
            seconds = min(int(spec.get("expirationSeconds") or MAX_DURATION), MAX_DURATION)
            pem, serial = await asyncio.to_thread(usercerts.sign_request, self.pki_dir, request,
                                                  list(spec.get("usages") or ()), datetime.timedelta(seconds=seconds))
            status["certificate"] = base64.b64encode(pem).decode()
            log.info("certificatesigningrequest %s: signed (serial %s)", csr["metadata"]["name"], serial)
        try:
            await self.client.update(RESOURCE, {**csr, "status": status}, subresource="status")
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def run(self) -> None:
        await self.csrs.start()
        await run_workers(self.queue, self.reconcile, 1, "csr")


class TokenCleaner:
    """Deletes bootstrap-token Secrets once expired (checked on change and every minute)."""

    def __init__(self, client: Any, clock: Clock) -> None:
        self.client = client
        self.clock = clock

    async def sweep(self) -> None:
        from jobplane.apiserver import bootstraptokens as bt

        listed = await self.client.list("secrets", bt.NAMESPACE)
        now = self.clock.now()
        for secret in listed.get("items") or ():
            if secret.get("type") == bt.SECRET_TYPE and bt.is_expired(secret, now):
                try:
                    await self.client.delete("secrets", secret["metadata"]["name"], bt.NAMESPACE)
                    log.info("bootstrap token %s expired: deleted", secret["metadata"]["name"])
                except StatusError as exc:
                    if exc.code != 404:
                        raise

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - try again at the next sweep
                log.warning("bootstrap token cleaner: %s", exc)
            await self.clock.sleep(60)


async def run(ctx: Any) -> None:
    await CertificateController(ctx.client, ctx.clock, ctx.informers, ctx.settings.pki_dir).run()


async def run_token_cleaner(ctx: Any) -> None:
    await TokenCleaner(ctx.client, ctx.clock).run()
