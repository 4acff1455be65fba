"""The pod's hostname and its kubelet-managed ``/etc/hosts``.

Pure, except ``write_in_place``: the file is bind-mounted into the pod's sandboxes, so an
update rewrites the same inode (a rename would leave the pods reading the old file).
Upstream: ``pkg/kubelet/kubelet_pods.go`` (managedHostsFileContent, GeneratePodHostNameAndDomain).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
CLUSTER_DOMAIN = "cluster.local"
HEADER = "# Kubernetes-managed hosts file.\n"
_BASE = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
         "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")


def hostname_and_domain(pod: Obj) -> tuple[str, str]:
    """``spec.hostname`` (else the pod name, cut to 63 characters) and, with ``spec.subdomain``,
    the domain ``<subdomain>.<namespace>.svc.cluster.local``."""
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    name = spec.get("hostname") or meta.get("name", "")
    if len(name) > 63:
        name = name[:63].rstrip("-.")
    sub = spec.get("subdomain")
    domain = f"{sub}.{meta.get('namespace') or 'default'}.svc.{CLUSTER_DOMAIN}" if sub else ""
    return name, domain


def pod_hostname(pod: Obj) -> str:
    """What ``hostname`` prints in the pod (the FQDN with ``setHostnameAsFQDN``)."""
    name, domain = hostname_and_domain(pod)
    if domain and (pod.get("spec") or {}).get("setHostnameAsFQDN"):
        return f"{name}.{domain}"[:64]
    return name


def hosts_file(pod: Obj, pod_ip: str, extra: list[tuple[str, list[str]]] | None = None,
               host_lines: str = "") -> str:
    """The pod's own entry, its ``hostAliases``, then ``extra`` (service and pod names), then the
    host's own entries (every pod uses the node's network, so the host's names still apply)."""
    name, domain = hostname_and_domain(pod)
    out = [HEADER, _BASE]
    out.append(f"{pod_ip}\t{name}.{domain}\t{name}\n" if domain else f"{pod_ip}\t{name}\n")
    aliases = (pod.get("spec") or {}).get("hostAliases") or ()
    if aliases:
        out.append("\n# Entries added by HostAliases.\n")
        for alias in aliases:
            out.append(f"{alias.get('ip')}\t" + "\t".join(alias.get("hostnames") or ()) + "\n")
    if extra:
        out.append("\n# Pod and Service names (jobplane).\n")
        for ip, names in extra:
            out.append(f"{ip}\t" + " ".join(names) + "\n")
    if host_lines:
        out.append("\n# The node's /etc/hosts.\n")
        out.append(host_lines)
    return "".join(out)


def host_entries(path: str = "/etc/hosts") -> str:
    """The host's entries, comments and blank lines dropped."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return ""
    return "".join(line + "\n" for line in lines if line.strip() and not line.lstrip().startswith("#"))


def write_in_place(path: Path, text: str, new: bool = False) -> bool:
    """Rewrite ``path`` keeping its inode (one write); False when it already holds ``text``.
    ``new``: the caller has just created its directory (the file cannot exist yet)."""
    data = text.encode()
    if new:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return True
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
    return True
