"""Test-made network-namespace hosts: a bridge in this namespace (the server's side) and
namespaces on it, each with one veth and its own address. Used by the e2e tests and the
scale-out benchmark (``bench/bench_scaleout.py``), so every machine in them is on this host."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def netns_hosts(count: int, prefix: str = "jp", octet: int = 213) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Yield (bridge address, [(namespace, address)]) for ``count`` hosts on 10.<octet>.x.0/24;
    ``prefix`` keeps the interface and namespace names of concurrent users apart. Everything
    made is removed on exit."""
    tag = secrets.token_hex(2)
    subnet = f"10.{octet}.{int(tag, 16) % 150 + 100}"
    bridge = f"{prefix}b{tag}"
    made: list[str] = []
    ip("link", "add", bridge, "type", "bridge")
    try:
        ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        hosts = []
        for i in range(1, count + 1):
            ns, outer, inner = f"{prefix}h{tag}{i}", f"{prefix}v{tag}{i}", f"{prefix}p{tag}{i}"
            ip("netns", "add", ns)
            made.append(ns)
            ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            ip("link", "set", inner, "netns", ns)
            ip("link", "set", outer, "master", bridge, "up")
            ip("-n", ns, "addr", "add", f"{subnet}.{10 + i}/24", "dev", inner)
            ip("-n", ns, "link", "set", inner, "up")
            ip("-n", ns, "link", "set", "lo", "up")
            hosts.append((ns, f"{subnet}.{10 + i}"))
        yield f"{subnet}.1", hosts
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
