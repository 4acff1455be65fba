"""The deletion rules of a DELETE, as pure functions of the stored object (the service does
the reads and writes): which finalizers the propagation policy adds or drops, the grace
period a bound pod gets, namespace Terminating, and whether the object can go at once."""

from __future__ import annotations

from typing import Any

from jobplane.api import errors, meta, pods
from jobplane.api.registry import JOBS, NAMESPACES, PODS, ResourceInfo

Obj = dict[str, Any]

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
PROPAGATION_POLICIES = ("Orphan", "Background", "Foreground")
DEFAULT_GRACE_SECONDS = 30


def check_policy(propagation_policy: str | None) -> None:
    """422 for a propagationPolicy upstream does not know."""
    if propagation_policy not in (None, "", *PROPAGATION_POLICIES):
        raise errors.invalid_object("DeleteOptions", "", "", [errors.not_supported(
            "propagationPolicy", propagation_policy, ["Foreground", "Background", "Orphan", "nil"])])


def check_deletable(info: ResourceInfo, name: str) -> None:
    """403 for the namespaces the apiserver keeps (upstream's namespace lifecycle admission)."""
    if info is NAMESPACES and name in DEFAULT_NAMESPACES:
        raise errors.StatusError(403, "Forbidden",
                                 f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                 {"name": name, "kind": "namespaces"})


def pod_grace(obj: Obj, grace_period_seconds: int | None) -> int:
    """A bound, running pod's grace: the option, else ``terminationGracePeriodSeconds``, else
    30, never longer than a grace already running. Unbound or terminal pods go at once (0)."""
    md, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    if not spec.get("nodeName") or pods.is_terminal(obj):
        return 0
    grace = grace_period_seconds if grace_period_seconds is not None else \
        spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    if grace is None:
        grace = DEFAULT_GRACE_SECONDS
    prev = md.get("deletionGracePeriodSeconds")
    if prev is not None and prev <= grace and md.get("deletionTimestamp"):
        grace = prev
    return int(grace)


def marked_for_deletion(info: ResourceInfo, obj: Obj, *, propagation_policy: str | None,
                        grace_period_seconds: int | None, now: float) -> Obj:
    """``obj`` as a DELETE leaves it (a new dict): Orphan (the default for batch/v1 Jobs) adds
    the ``orphan`` finalizer, Foreground ``foregroundDeletion`` (both only on the first
    delete); an explicit other policy drops ``orphan``; namespaces turn Terminating; the first
    delete (or a pod's shorter grace) sets deletionTimestamp = now + grace.

    Only the metadata (and a namespace's status) change, so only those are copied: the rest
    is shared with ``obj``, which is left as it was. (A deep copy was 1.9 % of the event loop
    once PodGC deleted pods as fast as they finished, bench/RESULTS.md §17c.)"""
    md = obj["metadata"]
    new = dict(obj)
    nmd = new["metadata"] = dict(md)
    finalizers = list(nmd.get("finalizers") or [])
    policy = propagation_policy or ("Orphan" if info is JOBS else "Background")
    if policy == "Orphan" and ORPHAN_FINALIZER not in finalizers and not md.get("deletionTimestamp"):
        finalizers.append(ORPHAN_FINALIZER)
    elif policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers and not md.get("deletionTimestamp"):
        finalizers.append(FOREGROUND_FINALIZER)
    if policy != "Orphan" and ORPHAN_FINALIZER in finalizers and propagation_policy:
        finalizers.remove(ORPHAN_FINALIZER)
    grace = pod_grace(obj, grace_period_seconds) if info is PODS else 0
    if info is NAMESPACES:
        new["status"] = {**(obj.get("status") or {}), "phase": "Terminating"}
    if finalizers:
        nmd["finalizers"] = finalizers
    else:
        nmd.pop("finalizers", None)
    if not md.get("deletionTimestamp") or (info is PODS and grace < (md.get("deletionGracePeriodSeconds") or 0)):
        nmd["deletionTimestamp"] = meta.rfc3339(now + grace)
        nmd["deletionGracePeriodSeconds"] = grace
    return new


def deletable_now(info: ResourceInfo, obj: Obj) -> bool:
    """A deletionTimestamp and nothing holding it: no finalizers, no namespace spec
    finalizers, and not a pod in its grace period (its agent finishes that)."""
    md = obj.get("metadata", {})
    if not md.get("deletionTimestamp") or md.get("finalizers"):
        return False
    if info is NAMESPACES and (obj.get("spec") or {}).get("finalizers"):
        return False
    if info is PODS and md.get("deletionGracePeriodSeconds"):
        return False
    return True
