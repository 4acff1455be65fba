"""Local-path provisioner and claim binder for the ``jobplane.io/local-path`` StorageClass
(the parts of upstream's PV controller and of the local-path provisioner a single class
needs).

* A claim of the class waits for its first consumer (``WaitForFirstConsumer`` event, as
  upstream) until a pod using it is scheduled; then a PersistentVolume ``pvc-<claim uid>``
  is made on that pod's node: a ``hostPath`` directory under the node agent's data dir
  (``<data dir>/volumes/<pv>``; the agent says where through the node annotation
  ``jobplane.io/data-dir``), with node affinity to that node, bound to the claim both ways
  (``Bound`` phases, upstream's annotations, ``ProvisioningSucceeded`` event).
* When the claim is gone its volume is ``Released``; with reclaim policy ``Delete`` the
  volume is deleted, and the agent of its node removes the directory before the volume's
  ``jobplane.io/local-path-cleanup`` finalizer lets it go. ``Retain`` keeps both.
``Immediate`` claims are provisioned like ``WaitForFirstConsumer`` ones, at first use.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from jobplane.api.errors import StatusError
from jobplane.api.meta import rfc3339
from jobplane.client.base import Client
from jobplane.client.events import EventRecorder
from jobplane.client.informer import SharedInformerFactory
from jobplane.client.workqueue import WorkQueue
from jobplane.clock import Clock
from jobplane.controllers.base import run_workers, update_with_retry

if TYPE_CHECKING:
    from jobplane.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PROVISIONER = "jobplane.io/local-path"
CLEANUP_FINALIZER = "jobplane.io/local-path-cleanup"
DATA_DIR_ANNOTATION = "jobplane.io/data-dir"
NODE_ANNOTATION = "jobplane.io/node"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
WAIT_MESSAGE = "waiting for first consumer to be created before binding"


def claim_names(pod: Obj) -> list[str]:
    return [v["persistentVolumeClaim"].get("claimName") or "" for v in (pod.get("spec") or {}).get("volumes") or ()
            if v.get("persistentVolumeClaim")]


def volume_for(claim: Obj, node: str, data_dir: str, reclaim: str, now: str) -> Obj:
    """The PersistentVolume provisioned for ``claim`` on ``node``, already bound to it."""
    md, spec = claim["metadata"], claim.get("spec") or {}
    name = f"pvc-{md['uid']}"
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "finalizers": [CLEANUP_FINALIZER],
                     "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER, NODE_ANNOTATION: node}},
        "spec": {"capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage")},
                 "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                 "persistentVolumeReclaimPolicy": reclaim, "storageClassName": spec.get("storageClassName"),
                 "volumeMode": spec.get("volumeMode") or "Filesystem",
                 "hostPath": {"path": os.path.join(data_dir, "volumes", name), "type": "DirectoryOrCreate"},
                 "claimRef": {"kind": "PersistentVolumeClaim", "namespace": md["namespace"], "name": md["name"],
                              "uid": md["uid"], "apiVersion": "v1"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
    }


class LocalPathController:
    def __init__(self, client: Client, clock: Clock, informers: SharedInformerFactory, recorder: EventRecorder,
                 default_data_dir: str) -> None:
        self.client = client
        self.clock = clock
        self.recorder = recorder
        self.default_data_dir = default_data_dir
        self.claims = informers.informer("persistentvolumeclaims")
        self.volumes = informers.informer("persistentvolumes")
        self.classes = informers.informer("storageclasses")
        self.pods = informers.informer("pods")
        self.nodes = informers.informer("nodes")
        self.queue = WorkQueue(clock, name="local-path")
        self.pods.add_index("claim", lambda p: [f"{p['metadata'].get('namespace')}/{c}" for c in claim_names(p)])
        self.claims.add_handler(on_add=self._claim, on_update=lambda _o, n: self._claim(n), on_delete=self._claim)
        self.pods.add_handler(on_add=self._pod, on_update=lambda _o, n: self._pod(n))
        self.volumes.add_handler(on_add=self._volume, on_update=lambda _o, n: self._volume(n))

    def _claim(self, claim: Obj) -> None:
        md = claim["metadata"]
        self.queue.add(f"claim:{md.get('namespace')}/{md['name']}")
        for pv in self.volumes.list():  # a deleted claim releases its volume
            ref = (pv.get("spec") or {}).get("claimRef") or {}
            if ref.get("uid") == md.get("uid"):
                self._volume(pv)

    def _volume(self, pv: Obj) -> None:
        self.queue.add("volume:" + pv["metadata"]["name"])

    def _pod(self, pod: Obj) -> None:
        ns = pod["metadata"].get("namespace")
        for name in claim_names(pod):
            self.queue.add(f"claim:{ns}/{name}")

    def _ours(self, claim: Obj) -> Obj | None:
        sc = self.classes.get(None, (claim.get("spec") or {}).get("storageClassName") or "")
        return sc if sc is not None and sc.get("provisioner") == PROVISIONER else None

    def _data_dir(self, node: str) -> str:
        obj = self.nodes.get(None, node) or {}
        return ((obj.get("metadata") or {}).get("annotations") or {}).get(DATA_DIR_ANNOTATION) or self.default_data_dir

    async def reconcile(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if kind == "volume":
            await self._reconcile_volume(name)
        else:
            await self._reconcile_claim(name)

    async def _reconcile_claim(self, key: str) -> None:
        claim = self.claims.get_key(key)
        if claim is None or claim["metadata"].get("deletionTimestamp") or (claim.get("spec") or {}).get("volumeName"):
            return
        sc = self._ours(claim)
        if sc is None:
            return
        users = [p for p in self.pods.by_index("claim", key) if (p.get("spec") or {}).get("nodeName")]
        if not users:
            if not self.pods.by_index("claim", key) or sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                self.recorder.event(claim, "Normal", "WaitForFirstConsumer", WAIT_MESSAGE)
            return
        node = users[0]["spec"]["nodeName"]
        pv = volume_for(claim, node, self._data_dir(node), sc.get("reclaimPolicy") or "Delete",
                        rfc3339(self.clock.now()))
        try:
            pv = await self.client.create("persistentvolumes", pv)
        except StatusError as exc:
            if exc.code != 409:
                raise
            pv = await self.client.get("persistentvolumes", pv["metadata"]["name"])
        pv["status"] = {"phase": "Bound", "lastPhaseTransitionTime": rfc3339(self.clock.now())}
        await self.client.update("persistentvolumes", pv, subresource="status")
        ns, name = claim["metadata"]["namespace"], claim["metadata"]["name"]
        pv_name = pv["metadata"]["name"]

        def bind(obj: Obj) -> bool:
            if (obj.get("spec") or {}).get("volumeName"):
                return False
            ann = obj["metadata"].setdefault("annotations", {})
            ann.update({"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                        SELECTED_NODE: node, "volume.kubernetes.io/storage-provisioner": PROVISIONER,
                        "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER})
            obj["spec"]["volumeName"] = pv_name
            return True

        bound = await update_with_retry(self.client, "persistentvolumeclaims", ns, name, bind,
                                        uid=claim["metadata"]["uid"])
        if bound is None:
            return
        bound["status"] = {"phase": "Bound", "accessModes": pv["spec"]["accessModes"],
                           "capacity": dict(pv["spec"]["capacity"])}
        await self.client.update("persistentvolumeclaims", bound, ns, subresource="status")
        self.recorder.event(claim, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")
        log.debug("claim %s: bound to %s on node %s", key, pv_name, node)

    async def _reconcile_volume(self, name: str) -> None:
        pv = self.volumes.get(None, name)
        if pv is None or (pv.get("metadata") or {}).get("annotations", {}).get(
                "pv.kubernetes.io/provisioned-by") != PROVISIONER or pv["metadata"].get("deletionTimestamp"):
            return
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        claim = self.claims.get(ref.get("namespace"), ref.get("name") or "")
        if claim is not None and claim["metadata"].get("uid") == ref.get("uid"):
            return
        try:  # the cache may lag: ask the API before releasing
            live = await self.client.get("persistentvolumeclaims", ref.get("name") or "", ref.get("namespace"))
            if live["metadata"].get("uid") == ref.get("uid"):
                return
        except StatusError as exc:
            if exc.code != 404:
                raise
        if (pv.get("status") or {}).get("phase") != "Released":
            pv = dict(pv, status={"phase": "Released", "lastPhaseTransitionTime": rfc3339(self.clock.now())})
            pv = await self.client.update("persistentvolumes", pv, subresource="status")
        if pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            try:
                await self.client.delete("persistentvolumes", name)
            except StatusError as exc:
                if exc.code != 404:
                    raise

    async def run(self, workers: int = 1) -> None:
        for informer in (self.classes, self.nodes, self.claims, self.volumes, self.pods):
            await informer.start()
        await run_workers(self.queue, self.reconcile, workers, "local-path")


async def run(ctx: ControllerContext) -> None:

    recorder = EventRecorder(ctx.client, "persistentvolume-controller", ctx.clock)
    try:
        await LocalPathController(ctx.client, ctx.clock, ctx.informers, recorder, str(ctx.settings.data_dir)).run()
    finally:
        await recorder.close()
