"""What the API server decides from the store while it creates an object: a Service's
cluster IP (upstream's ClusterIP allocator over ``--service-cluster-ip-range``) and a
claim's default StorageClass (the ``DefaultStorageClass`` admission plugin).

Each allocated address is one store key (``serviceipallocations.jobplane.io//<ip>``) that
names its Service, so two servers on one database never hand out the same address: the
store's create is the lock.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from jobplane.api import errors
from jobplane.api.errors import RawValue
from jobplane.api.registry import STORAGECLASSES
from jobplane.api.validation.storage import is_default_class
from jobplane.storage.base import KeyExists, KeyNotFound, Store

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"  # kubeadm's and kind's default service subnet
_PREFIX = "serviceipallocations.jobplane.io//"
_RANDOM_TRIES = 16


def _alloc_error(name: str, ip: str, detail: str) -> errors.StatusError:
    value = RawValue(f'[]string{{"{ip}"}}')
    return errors.invalid_object("Service", "", name, [
        errors.invalid("spec.clusterIPs", value, f"failed to allocate IP {ip}: {detail}")])


class ClusterIPAllocator:
    """Hands out addresses of one IPv4 or IPv6 range; the first usable address is the
    ``kubernetes`` Service's, as upstream."""

    def __init__(self, store: Store, cidr: str = DEFAULT_SERVICE_CIDR) -> None:
        self.store = store
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.cidr = str(self.network)
        self.size = self.network.num_addresses

    def first(self) -> str:
        return str(self.network[1])

    def _usable(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return ip in self.network and ip != self.network.network_address and (
            self.network.version == 6 or ip != self.network.broadcast_address)

    async def _claim(self, ip: str, owner: str) -> bool:
        """Take ``ip`` for ``owner``; False when it is taken. (An address whose Service write
        never happened, e.g. a crash in between, stays taken: no sweep, as the range is large.)"""
        try:
            await self.store.create(_PREFIX + ip, {"metadata": {"name": ip}, "service": owner})
            return True
        except KeyExists:
            return False

    async def allocate(self, namespace: str, name: str, requested: str | None) -> str:
        owner = f"{namespace}/{name}"
        if requested:
            try:
                ip = ipaddress.ip_address(requested)
            except ValueError:
                raise _alloc_error(name, requested, "not a valid IP") from None
            if not self._usable(ip):
                raise _alloc_error(name, requested, f"the provided IP ({requested}) is not in the valid range. "
                                                    f"The range of valid IPs is {self.cidr}")
            if not await self._claim(str(ip), owner):
                raise _alloc_error(name, requested, "provided IP is already allocated")
            return str(ip)
        last = min(self.size - 2, 2**24)
        for _ in range(_RANDOM_TRIES):
            candidate = str(self.network[random.randint(2, last)])
            if await self._claim(candidate, owner):
                return candidate
        taken = {k["metadata"]["name"] for k in (await self.store.list(_PREFIX)).items}
        for offset in range(2, last + 1):
            candidate = str(self.network[offset])
            if candidate not in taken and await self._claim(candidate, owner):
                return candidate
        raise errors.StatusError(500, "InternalError",
                                 "Internal error occurred: failed to allocate a serviceIP: range is full")

    async def release(self, ip: str | None) -> None:
        if not ip or ip == "None":
            return
        try:
            await self.store.delete(_PREFIX + ip)
        except KeyNotFound:
            pass


async def allocate_service_ips(alloc: ClusterIPAllocator, svc: dict[str, Any]) -> str | None:
    """Fill ``clusterIP(s)``, ``ipFamilies`` and ``ipFamilyPolicy`` as the Service REST
    create does; returns the address allocated (to release if the write fails)."""
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return None
    family = "IPv6" if alloc.network.version == 6 else "IPv4"
    if spec.get("clusterIP") == "None":
        spec["clusterIPs"] = ["None"]
        spec.setdefault("ipFamilyPolicy", "SingleStack" if spec.get("selector") else "RequireDualStack")
        spec.setdefault("ipFamilies", [family])
        return None
    md = svc.get("metadata") or {}
    requested = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
    ip = await alloc.allocate(md.get("namespace") or "", md.get("name") or "", requested)
    spec["clusterIP"] = ip
    spec["clusterIPs"] = [ip]
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("ipFamilies", [family])
    return ip


async def default_storage_class(store: Store, pvc: dict[str, Any]) -> None:
    """A claim that names no class (field absent, not ``""``) gets the default one; with
    several defaults the newest wins, as upstream's ``GetDefaultClass``."""
    spec = pvc.get("spec")
    if not isinstance(spec, dict) or spec.get("storageClassName") is not None:
        return
    defaults = [sc for sc in (await store.list(STORAGECLASSES.storage_prefix(None))).items if is_default_class(sc)]
    if defaults:
        newest = max(defaults, key=lambda sc: ((sc.get("metadata") or {}).get("creationTimestamp") or "",
                                               (sc.get("metadata") or {}).get("name") or ""))
        spec["storageClassName"] = newest["metadata"]["name"]
