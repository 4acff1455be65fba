"""The node's half of the local-path provisioner: a provisioned volume of this node that is
being deleted (reclaim policy ``Delete``) has its directory removed here, on the machine that
holds it, and then its cleanup finalizer dropped so the PersistentVolume goes away.

Only directories under this agent's ``<data dir>/volumes/`` are ever removed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

from jobplane.api.errors import StatusError
from jobplane.clock import Clock

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CLEANUP_FINALIZER = "jobplane.io/local-path-cleanup"
NODE_ANNOTATION = "jobplane.io/node"


def removable_path(pv: Obj, node: str, volumes_root: Path) -> Path | None:
    """The directory to remove for ``pv``, or None when it is not this node's to clean."""
    md = pv.get("metadata") or {}
    if not md.get("deletionTimestamp") or CLEANUP_FINALIZER not in (md.get("finalizers") or ()):
        return None
    if (md.get("annotations") or {}).get(NODE_ANNOTATION) != node:
        return None
    raw = ((pv.get("spec") or {}).get("hostPath") or {}).get("path") or ""
    path = Path(raw).resolve()
    root = volumes_root.resolve()
    if path.parent != root:
        log.warning("volume %s: %s is outside %s; not removing it", md.get("name"), raw, root)
        return None
    return path


class VolumeCleaner:
    def __init__(self, client: Any, node: str, data_dir: Path, clock: Clock) -> None:
        self.client = client
        self.node = node
        self.root = Path(data_dir) / "volumes"
        self.clock = clock
        self.informer: Any = None

    async def clean(self, pv: Obj) -> None:
        path = removable_path(pv, self.node, self.root)
        if path is None:
            return
        shutil.rmtree(path, ignore_errors=True)
        name = pv["metadata"]["name"]
        log.info("volume %s: removed %s", name, path)
        finalizers = [f for f in pv["metadata"].get("finalizers") or () if f != CLEANUP_FINALIZER]
        try:
            await self.client.patch("persistentvolumes", name, {"metadata": {
                "finalizers": finalizers, "resourceVersion": pv["metadata"].get("resourceVersion")}})
        except StatusError as exc:
            if exc.code not in (404, 409):  # gone, or changed: the next event retries
                raise

    def _spawn(self, pv: Obj) -> None:
        asyncio.get_running_loop().create_task(self.clean(pv))

    async def run(self) -> None:
        from jobplane.client.informer import Informer

        self.informer = Informer(self.client, "persistentvolumes", clock=self.clock)
        self.informer.add_handler(on_add=self._spawn, on_update=lambda _o, n: self._spawn(n))
        try:
            await self.informer.start()
            await asyncio.Event().wait()
        finally:
            await self.informer.stop()
