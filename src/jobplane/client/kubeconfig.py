"""Kubeconfig loading, as kubectl finds and reads it.

Where: an explicit path, else the first file named by ``KUBECONFIG``, else jobplane's
own ``<data dir>/kubeconfig`` (written by ``jobplane server``), else ``~/.kube/config``.
What: the current context (or the one asked for) -> server URL, bearer token (``token``
or ``tokenFile``), cluster CA (``certificate-authority-data`` or a file path, relative
to the kubeconfig's directory), client certificate, namespace (default ``default``).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jobplane.settings import default_data_dir


class KubeconfigError(Exception):
    """No kubeconfig, or one that does not name a usable cluster/context."""


@dataclass
class KubeConfig:
    server: str
    token: str | None = None
    ca_data: bytes | None = None
    ca_file: str | None = None
    namespace: str = "default"
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    context: str = ""
    path: str = ""


def find_kubeconfig(path: str | os.PathLike[str] | None = None) -> Path:
    """The kubeconfig file to use (see module doc); raises KubeconfigError if none exists."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise KubeconfigError(f"stat {p}: no such file or directory")
        return p
    env = os.environ.get("KUBECONFIG")
    if env:
        for part in env.split(os.pathsep):
            if part and Path(part).expanduser().is_file():
                return Path(part).expanduser()
    candidates = [default_data_dir() / "kubeconfig", Path.home() / ".kube" / "config"]
    for p in candidates:
        if p.is_file():
            return p
    raise KubeconfigError("no kubeconfig found (tried KUBECONFIG, " + ", ".join(map(str, candidates)) +
                          "); is `jobplane server` running?")


def _named(entries: list[dict[str, Any]] | None, name: str, what: str) -> dict[str, Any]:
    for entry in entries or []:
        if entry.get("name") == name:
            return entry.get(what) or {}
    raise KubeconfigError(f"{what} {name!r} not found in kubeconfig")


def _b64(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value else None


def parse_kubeconfig(data: dict[str, Any], context: str | None = None, base_dir: Path | None = None) -> KubeConfig:
    """The connection settings of ``context`` (default: current-context) in a parsed kubeconfig."""
    base = base_dir or Path.cwd()

    def rel(p: str | None) -> str | None:
        if not p:
            return None
        path = Path(p).expanduser()
        return str(path if path.is_absolute() else base / path)

    ctx_name = context or data.get("current-context") or ""
    if not ctx_name:
        raise KubeconfigError("current-context is not set in kubeconfig")
    ctx = _named(data.get("contexts"), ctx_name, "context")
    cluster = _named(data.get("clusters"), ctx.get("cluster", ""), "cluster")
    user = _named(data.get("users"), ctx["user"], "user") if ctx.get("user") else {}
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"cluster {ctx.get('cluster')!r} has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(rel(user["tokenFile"]) or "").read_text().strip()
    return KubeConfig(
        server=server,
        token=token or None,
        ca_data=_b64(cluster.get("certificate-authority-data")),
        ca_file=rel(cluster.get("certificate-authority")),
        namespace=ctx.get("namespace") or "default",
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=rel(user.get("client-certificate")),
        key_file=rel(user.get("client-key")),
        cert_data=_b64(user.get("client-certificate-data")),
        key_data=_b64(user.get("client-key-data")),
        context=ctx_name,
    )


def load_kubeconfig(path: str | os.PathLike[str] | None = None, context: str | None = None) -> KubeConfig:
    file = find_kubeconfig(path)
    data = yaml.safe_load(file.read_text()) or {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"{file}: not a kubeconfig")
    cfg = parse_kubeconfig(data, context, file.parent)
    cfg.path = str(file)
    return cfg
