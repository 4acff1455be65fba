"""The admin kubeconfig (``DIR/kubeconfig``, 0600) that kubectl and the client libraries use."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from jobplane.certs import write_private

CONTEXT = "jobplane"


def kubeconfig_dict(server_url: str, ca_pem: bytes, token: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {
            "server": server_url,
            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
        }}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT,
                                                    "namespace": "default"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server_url: str, ca_pem: bytes, token: str) -> None:
    """Write atomically with mode 0600 (it holds the admin token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig_dict(server_url, ca_pem, token), sort_keys=False)
    write_private(path, text.encode())
