"""Pods of a Job: state predicates, finish times, construction from the template,
upstream's ActivePods deletion order, finalizer/ownership patches, and the
expectations that keep the controller from acting on a cache that lags its own writes."""

from __future__ import annotations

from typing import Any

import orjson

from jobplane.api.meta import controller_ref, parse_time
from jobplane.api.pods import FAILED, SUCCEEDED, is_terminal, phase
from jobplane.clock import Clock
from jobplane.controllers.job import jobspec

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
MAX_GENERATED_NAME = 58

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


# --- predicates -------------------------------------------------------------------------

def meta(pod: Obj) -> Obj:
    return pod.get("metadata") or {}


def pod_uid(pod: Obj) -> str:
    return str(meta(pod).get("uid", ""))


def has_tracking_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (meta(pod).get("finalizers") or ())


def is_active(pod: Obj) -> bool:
    """Not Succeeded/Failed and not being deleted (controller.FilterActivePods)."""
    return not is_terminal(pod) and not meta(pod).get("deletionTimestamp")


def is_terminating(pod: Obj) -> bool:
    return bool(meta(pod).get("deletionTimestamp")) and not is_terminal(pod)


def ready_condition(pod: Obj) -> Obj | None:
    conditions: list[Obj] = (pod.get("status") or {}).get("conditions") or []
    for c in conditions:
        if c.get("type") == "Ready":
            return c
    return None


def is_ready(pod: Obj) -> bool:
    c = ready_condition(pod)
    return bool(c and c.get("status") == "True")


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """Phase Failed; or, unless the job only replaces Failed pods, deleted and not Succeeded."""
    p = phase(pod)
    if p == FAILED:
        return True
    if jobspec.only_replace_failed_pods(job):
        return False
    return bool(meta(pod).get("deletionTimestamp")) and p != SUCCEEDED


def controller_uid(pod: Obj) -> str | None:
    ref = controller_ref(pod)
    return None if ref is None else ref.get("uid")


def finished_time(pod: Obj) -> float:
    """When the pod finished: latest container finishedAt if all containers terminated,
    else Ready=False transition, else deletionTimestamp - grace, else creation."""
    status = pod.get("status") or {}
    statuses = list(status.get("containerStatuses") or ())
    spec_init = {c.get("name") for c in ((pod.get("spec") or {}).get("initContainers") or ())
                 if c.get("restartPolicy") == "Always"}
    statuses += [s for s in status.get("initContainerStatuses") or () if s.get("name") in spec_init]
    latest: float | None = None
    if statuses:
        for s in statuses:
            term = (s.get("state") or {}).get("terminated")
            finished = parse_time(term.get("finishedAt")) if term else None
            if finished is None:
                latest = None
                break
            latest = finished if latest is None else max(latest, finished)
        if latest is not None:
            return latest
    ready = ready_condition(pod)
    if ready and ready.get("status") == "False" and ready.get("lastTransitionTime"):
        return parse_time(ready["lastTransitionTime"]) or 0.0
    m = meta(pod)
    if m.get("deletionTimestamp"):
        return (parse_time(m["deletionTimestamp"]) or 0.0) - float(m.get("deletionGracePeriodSeconds") or 0)
    return parse_time(m.get("creationTimestamp")) or 0.0


# --- deletion order (controller.ActivePods) ----------------------------------------------

def _ready_since(pod: Obj) -> float:
    c = ready_condition(pod)
    t = parse_time(c.get("lastTransitionTime")) if c else None
    return t if t is not None else float("inf")


def _max_restarts(pod: Obj) -> int:
    return max((int(s.get("restartCount") or 0)
                for s in (pod.get("status") or {}).get("containerStatuses") or ()), default=0)


def active_pods_key(pod: Obj) -> tuple[Any, ...]:
    """Sort key: smaller sorts first = deleted first. Unscheduled < scheduled; Pending <
    Unknown < Running; not ready < ready; ready more recently < longer; more restarts <
    fewer; newer < older."""
    ready = is_ready(pod)
    created = parse_time(meta(pod).get("creationTimestamp"))
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        _PHASE_ORDINAL.get(phase(pod), 0),
        1 if ready else 0,
        -_ready_since(pod) if ready else 0.0,
        -_max_restarts(pod),
        -(created if created is not None else float("inf")),
    )


def sort_for_deletion(pods: list[Obj]) -> list[Obj]:
    return sorted(pods, key=active_pods_key)


# --- construction ------------------------------------------------------------------------

def owner_reference(job: Obj) -> Obj:
    m = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": m["name"], "uid": m["uid"],
            "controller": True, "blockOwnerDeletion": True}


class PodTemplate:
    """A Job's pod template prepared once per sync (finalizer, ownerReference, index env),
    stamped cheaply per pod."""

    def __init__(self, job: Obj, extra_env: Any = None) -> None:
        template = (jobspec.spec(job).get("template")) or {}
        tmeta = template.get("metadata") or {}
        pod_spec = template.get("spec") or {}
        if extra_env is not None:
            pod_spec = extra_env(orjson.loads(orjson.dumps(pod_spec)))
        finalizers = list(tmeta.get("finalizers") or ())
        if TRACKING_FINALIZER not in finalizers:
            finalizers.append(TRACKING_FINALIZER)
        self._meta: dict[str, Any] = {
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": dict(tmeta.get("annotations") or {}),
            "finalizers": finalizers,
            "ownerReferences": [owner_reference(job)],
        }
        self._spec_bytes = orjson.dumps(pod_spec)
        self.job_name = job["metadata"]["name"]
        self.namespace = job["metadata"].get("namespace")

    def pod(self, *, generate_name: str | None = None, labels: dict[str, str] | None = None,
            annotations: dict[str, str] | None = None, hostname: str | None = None) -> Obj:
        m = self._meta
        metadata: Obj = {
            "generateName": generate_name or (self.job_name + "-"),
            "namespace": self.namespace,
            "labels": {**m["labels"], **(labels or {})},
            "finalizers": list(m["finalizers"]),
            "ownerReferences": [dict(r) for r in m["ownerReferences"]],
        }
        ann = {**m["annotations"], **(annotations or {})}
        if ann:
            metadata["annotations"] = ann
        pod_spec = orjson.loads(self._spec_bytes)
        if hostname is not None:
            pod_spec["hostname"] = hostname
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}


# --- patches (JSON patch, guarded by ``test`` so concurrent edits are never lost) --------

def remove_finalizer_patch(pod: Obj) -> list[Obj] | None:
    finalizers = meta(pod).get("finalizers") or []
    if TRACKING_FINALIZER not in finalizers:
        return None
    i = finalizers.index(TRACKING_FINALIZER)
    path = f"/metadata/finalizers/{i}"
    return [{"op": "test", "path": path, "value": TRACKING_FINALIZER}, {"op": "remove", "path": path}]


def adopt_patch(pod: Obj, job: Obj) -> list[Obj]:
    m = meta(pod)
    ops: list[Obj] = [{"op": "test", "path": "/metadata/uid", "value": m.get("uid")}]
    ref = owner_reference(job)
    if m.get("ownerReferences"):
        ops.append({"op": "add", "path": "/metadata/ownerReferences/-", "value": ref})
    else:
        ops.append({"op": "add", "path": "/metadata/ownerReferences", "value": [ref]})
    if TRACKING_FINALIZER not in (m.get("finalizers") or ()):
        if m.get("finalizers"):
            ops.append({"op": "add", "path": "/metadata/finalizers/-", "value": TRACKING_FINALIZER})
        else:
            ops.append({"op": "add", "path": "/metadata/finalizers", "value": [TRACKING_FINALIZER]})
    return ops


def release_patch(pod: Obj, job_uid: str) -> list[Obj] | None:
    refs = meta(pod).get("ownerReferences") or []
    ops: list[Obj] = []
    for i, ref in enumerate(refs):
        if ref.get("uid") == job_uid:
            ops += [{"op": "test", "path": f"/metadata/ownerReferences/{i}/uid", "value": job_uid},
                    {"op": "remove", "path": f"/metadata/ownerReferences/{i}"}]
            break
    if not ops:
        return None
    ops += remove_finalizer_patch(pod) or []
    return ops


# --- expectations ------------------------------------------------------------------------

EXPECTATIONS_TTL = 300.0


class Expectations:
    """Creations/deletions this controller issued and has not yet seen in the informer
    (upstream ControllerExpectations: set, not added; expire after 5 minutes)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._items: dict[str, list[float]] = {}  # key -> [adds, dels, timestamp]

    def satisfied(self, key: str) -> bool:
        e = self._items.get(key)
        if e is None:
            return True
        if e[0] <= 0 and e[1] <= 0:
            return True
        return self.clock.now() - e[2] > EXPECTATIONS_TTL

    def expect_creations(self, key: str, n: int) -> None:
        self._items[key] = [n, 0, self.clock.now()]

    def expect_deletions(self, key: str, n: int) -> None:
        self._items[key] = [0, n, self.clock.now()]

    def creation_observed(self, key: str) -> None:
        e = self._items.get(key)
        if e is not None:
            e[0] -= 1

    def deletion_observed(self, key: str) -> None:
        e = self._items.get(key)
        if e is not None:
            e[1] -= 1

    def delete(self, key: str) -> None:
        self._items.pop(key, None)


class FinalizerExpectations:
    """Pod UIDs whose tracking finalizer this controller removed but the informer still
    shows: such pods are treated as already accounted for."""

    def __init__(self) -> None:
        self._items: dict[str, set[str]] = {}

    def expected(self, key: str) -> frozenset[str] | set[str]:
        return self._items.get(key) or frozenset()

    def expect_removal(self, key: str, uids: list[str]) -> None:
        if uids:
            self._items.setdefault(key, set()).update(uids)

    def observed(self, key: str, uid: str) -> None:
        s = self._items.get(key)
        if s is not None:
            s.discard(uid)
            if not s:
                del self._items[key]

    def delete(self, key: str) -> None:
        self._items.pop(key, None)
