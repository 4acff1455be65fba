"""Service and pod DNS names for the pods' ``/etc/hosts`` (no DNS server, no virtual IPs).

Every pod uses its node's network, so a name resolves to the address of the node its
endpoint runs on. From the EndpointSlices of every Service, as cluster DNS builds its
records (``kubernetes/dns`` specification, upstream's CoreDNS ``kubernetes`` plugin):

* ``<service>.<namespace>.svc.cluster.local`` (and ``.svc``, ``<service>.<namespace>``, and
  ``<service>`` in the pod's own namespace) -> the addresses of the ready endpoints (all of
  them with ``publishNotReadyAddresses``). A ClusterIP Service gets the same records: there
  is no virtual-IP routing, so the name leads straight to its endpoints.
* ``<hostname>.<service>.<namespace>.svc.cluster.local`` and the same short forms -> the
  endpoint's address, for endpoints with a ``hostname`` (pods whose ``subdomain`` names a
  headless Service).

``entries`` is pure; ``DnsView`` keeps the Services and EndpointSlices in informers and
counts changes (``version``) so pods rewrite their hosts files only when something changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from jobplane.client.base import Client
from jobplane.clock import Clock

if TYPE_CHECKING:
    from jobplane.client.informer import Informer

log = logging.getLogger(__name__)
Obj = dict[str, Any]
CLUSTER_DOMAIN = "cluster.local"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
RETRY_SECONDS = 30.0


def _forms(name: str, namespace: str, pod_namespace: str) -> list[str]:
    out = [f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}", f"{name}.{namespace}.svc", f"{name}.{namespace}"]
    if namespace == pod_namespace:
        out.append(name)
    return out


def _ready(endpoint: Obj, publish_not_ready: bool) -> bool:
    if publish_not_ready:
        return True
    return (endpoint.get("conditions") or {}).get("ready") is not False  # unset means ready


def entries(services: list[Obj], slices: list[Obj], pod_namespace: str) -> list[tuple[str, list[str]]]:
    """(address, names) lines for a pod in ``pod_namespace``; one line per address and Service."""
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc:
            by_service.setdefault((meta.get("namespace") or "default", svc), []).append(sl)
    out: list[tuple[str, list[str]]] = []
    for svc in sorted(services, key=lambda s: ((s.get("metadata") or {}).get("namespace", ""),
                                               (s.get("metadata") or {}).get("name", ""))):
        meta = svc.get("metadata") or {}
        ns, name = meta.get("namespace") or "default", meta.get("name", "")
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            continue
        publish = bool(spec.get("publishNotReadyAddresses"))
        addresses: list[str] = []
        hosts: dict[str, str] = {}
        for sl in by_service.get((ns, name), ()):
            for ep in sl.get("endpoints") or ():
                if not _ready(ep, publish):
                    continue
                for addr in (ep.get("addresses") or ())[:1]:
                    if addr not in addresses:
                        addresses.append(addr)
                    if ep.get("hostname") and ep.get("addresses"):
                        hosts.setdefault(ep["hostname"], addr)
        service_names = _forms(name, ns, pod_namespace)
        for addr in addresses:
            out.append((addr, service_names))
        for host, addr in sorted(hosts.items()):
            out.append((addr, _forms(f"{host}.{name}", ns, pod_namespace)))
    return out


Entry = tuple[str, list[str]]
EntryKey = tuple[str, tuple[str, ...]]


def with_lingering(current: list[Entry], seen: dict[EntryKey, float], now: float,
                   linger: float) -> tuple[list[Entry], dict[EntryKey, float], float | None]:
    """``current`` plus the entries that left it less than ``linger`` seconds ago, the new
    last-seen times, and when the next lingering entry expires (None: none lingers).

    Cluster DNS answers outlive their records: CoreDNS caches them (``cache 30`` in the
    default Corefile), so a pod that resolved a peer a moment before the peer finished still
    reaches it. A hosts file rewritten the instant an endpoint leaves would lose such a peer
    for good (the pod-to-pod example's last pod, pinging once a second, missed peers that had
    pinged everyone and finished within that second)."""
    fresh: dict[EntryKey, float] = {(addr, tuple(names)): now for addr, names in current}
    out = list(current)
    expiry: float | None = None
    for key, last in seen.items():
        if key in fresh or now - last >= linger:
            continue
        fresh[key] = last
        out.append((key[0], list(key[1])))
        expiry = last + linger if expiry is None else min(expiry, last + linger)
    return out, fresh, expiry


class DnsView:
    """Services and EndpointSlices of the whole cluster, watched once per agent."""

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.version = 0
        self._services: Informer | None = None
        self._slices: Informer | None = None
        self._cache: dict[str, tuple[int, list[tuple[str, list[str]]]]] = {}
        self._change = asyncio.Event()  # set (and replaced) at each change: wait_change

    @property
    def active(self) -> bool:
        return self._services is not None

    def entries_for(self, pod: Obj) -> list[tuple[str, list[str]]]:
        if self._services is None or self._slices is None:
            return []
        ns = (pod.get("metadata") or {}).get("namespace") or "default"
        cached = self._cache.get(ns)
        if cached is None or cached[0] != self.version:
            cached = (self.version, entries(self._services.list(), self._slices.list(), ns))
            self._cache[ns] = cached
        return cached[1]

    def _changed(self, *_args: object) -> None:
        self.version += 1
        self._change.set()
        self._change = asyncio.Event()

    async def wait_change(self, version: int, timeout: float) -> None:
        """Return once the view is newer than ``version``, or after ``timeout`` seconds."""
        if self.version != version:
            return
        change = asyncio.ensure_future(self._change.wait())
        timer = asyncio.ensure_future(self.clock.sleep(timeout))
        try:
            await asyncio.wait({change, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            change.cancel()
            timer.cancel()

    async def run(self) -> None:
        """Start the informers once the server serves both kinds (retrying until it does)."""
        from jobplane.client.informer import Informer

        while True:
            services = Informer(self.client, "services", clock=self.clock)
            slices = Informer(self.client, "endpointslices", clock=self.clock)
            for inf in (services, slices):
                inf.add_handler(on_add=self._changed, on_update=self._changed, on_delete=self._changed)
            try:
                await services.start()
                await slices.start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a server without these kinds yet
                log.info("pod DNS names: Services or EndpointSlices not available (%s); retrying", exc)
                for inf in (services, slices):
                    with contextlib.suppress(Exception):
                        await inf.stop()
                await self.clock.sleep(RETRY_SECONDS)
                continue
            self._services, self._slices = services, slices
            self._changed()
            try:
                await asyncio.Event().wait()
            finally:
                for inf in (services, slices):
                    with contextlib.suppress(Exception):
                        await inf.stop()
