"""The node's own credential, as kubelet's TLS bootstrap gets it
(``pkg/kubelet/certificate/bootstrap``).

With a bootstrap token the agent makes a key, sends a CertificateSigningRequest for
``CN=system:node:<name>, O=system:nodes`` (signer ``kubernetes.io/kube-apiserver-client-kubelet``,
usages ``digital signature`` and ``client auth``), waits for the controller manager to
approve and sign it, and keeps key and certificate in ``<data dir>/pki/node-client.{key,crt}``
(0600). Later starts reuse them while they are valid for the same node; a certificate in
its last fifth of life is renewed at start with a CSR signed by the certificate itself
(``selfnodeclient``), one for another name needs a bootstrap token again. (Unlike kubelet, a
running agent does not rotate its certificate; the signer issues it for a year.)
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from jobplane.api.errors import StatusError
from jobplane.certs import key_pem, new_key, utcnow, write_private

log = logging.getLogger(__name__)

CERT_FILE = "node-client.crt"
KEY_FILE = "node-client.key"
SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
WAIT_SECONDS = 300.0


class BootstrapError(Exception):
    pass


def paths(data_dir: Path) -> tuple[Path, Path]:
    pki = data_dir / "pki"
    return pki / CERT_FILE, pki / KEY_FILE


def current(data_dir: Path, node: str, now: datetime.datetime | None = None, *,
            renew: bool = True) -> tuple[Path, Path] | None:
    """The kept certificate and key when they are for ``node`` and not near expiry (``renew``
    False: merely not expired)."""
    cert_path, key_path = paths(data_dir)
    if not cert_path.exists() or not key_path.exists():
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return None
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns or cns[0].value != f"system:node:{node}":
        return None
    now = now or utcnow()
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now >= (end - (end - start) / 5 if renew else end):
        return None
    return cert_path, key_path


def csr_pem(node: str, key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


async def request_certificate(client: Any, node: str, data_dir: Path, *, wait: float = WAIT_SECONDS,
                              poll: float = 1.0) -> tuple[Path, Path]:
    """Send the CSR with ``client`` (authenticated by the bootstrap token), wait for the
    certificate and keep it. Raises ``BootstrapError`` when refused or not signed in time."""
    key = new_key()
    name = f"node-csr-{node[:40]}-{secrets.token_hex(4)}"
    body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": base64.b64encode(csr_pem(node, key)).decode(), "signerName": SIGNER,
                     "usages": ["digital signature", "client auth"]}}
    try:
        await client.create("certificatesigningrequests", body)
    except StatusError as exc:
        raise BootstrapError(f"the certificate request was refused: {exc}") from None
    log.info("node %s: certificate requested (%s); waiting for approval", node, name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        csr = await client.get("certificatesigningrequests", name)
        status = csr.get("status") or {}
        for cond in status.get("conditions") or ():
            if cond.get("type") in ("Denied", "Failed"):
                raise BootstrapError(f"certificate request {name} {cond['type'].lower()}: "
                                     f"{cond.get('reason', '')} {cond.get('message', '')}".strip())
        if status.get("certificate"):
            break
        if loop.time() > deadline:
            raise BootstrapError(f"certificate request {name} was not signed within {wait:.0f}s "
                                 "(is the controller manager running?)")
        await asyncio.sleep(poll)
    cert = base64.b64decode(status["certificate"])
    cert_path, key_path = paths(data_dir)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(cert_path.parent, 0o700)
    write_private(key_path, key_pem(key))
    write_private(cert_path, cert)
    log.info("node %s: client certificate kept in %s", node, cert_path)
    return cert_path, key_path


async def node_credentials(servers: Sequence[str], ca_file: Path | None, data_dir: Path, node: str,
                           bootstrap_token: str | None) -> tuple[Path, Path]:
    """The node's certificate and key: the kept ones, else new ones through ``bootstrap_token``."""
    from jobplane.client.failover import FailoverHttpClient

    found = current(data_dir, node)
    if found is not None:
        return found
    still_valid = current(data_dir, node, renew=False)
    if still_valid is not None:
        # kubelet's rotation: the node asks for its next certificate with the current one
        # (auto-approved through certificatesigningrequests/selfnodeclient for system:nodes)
        cert, key = still_valid
        client = FailoverHttpClient(servers, ca_file=str(ca_file) if ca_file else None, cert_file=str(cert),
                                    key_file=str(key), user_agent="jobplane-agent-rotation")
        try:
            return await request_certificate(client, node, data_dir)
        except (BootstrapError, StatusError, OSError) as exc:
            log.warning("node %s: could not renew the client certificate (%s); using the current one", node, exc)
            return still_valid
        finally:
            await client.close()
    if not bootstrap_token:
        raise BootstrapError(f"no valid node certificate in {paths(data_dir)[0]}: pass --bootstrap-token "
                             "(made on the server with `jobplane token create`)")
    client = FailoverHttpClient(servers, token=bootstrap_token, ca_file=str(ca_file) if ca_file else None,
                                user_agent="jobplane-agent-bootstrap")
    try:
        return await request_certificate(client, node, data_dir)
    finally:
        await client.close()
