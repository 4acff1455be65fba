"""The admin kubeconfig (``DIR/kubeconfig``, 0600) that kubectl and the client libraries use."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from jobplane.certs import write_private

CONTEXT = "jobplane"


def _config(server_url: str, ca_pem: bytes, user: str, credentials: dict[str, str], context: str,
            namespace: str) -> dict:
    """One cluster (the server and its CA), one user, one context in ``namespace``, current."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {
            "server": server_url,
            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
        }}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": CONTEXT, "user": user, "namespace": namespace}}],
        "current-context": context,
        "preferences": {},
    }


def kubeconfig_dict(server_url: str, ca_pem: bytes, token: str) -> dict:
    return _config(server_url, ca_pem, CONTEXT, {"token": token}, CONTEXT, "default")


def write_kubeconfig(path: Path, server_url: str, ca_pem: bytes, token: str) -> None:
    """Write atomically with mode 0600 (it holds the admin token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig_dict(server_url, ca_pem, token), sort_keys=False)
    write_private(path, text.encode())


def user_kubeconfig_dict(server_url: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes,
                         namespace: str = "default") -> dict:
    """A kubeconfig for one person: the cluster, their client certificate and key, a
    context ``USER@jobplane`` in ``namespace`` (as ``kubeadm kubeconfig user`` writes it)."""
    return _config(server_url, ca_pem, user, {
        "client-certificate-data": base64.b64encode(cert_pem).decode(),
        "client-key-data": base64.b64encode(key_pem).decode(),
    }, f"{user}@{CONTEXT}", namespace)
