"""The shared pod informer's transform (client-go ``SetTransform``): keep terminal pods small.

PodGC keeps up to 12,500 Succeeded/Failed pods, and every one of them sat in the shared
informer fully decoded (about 19.5 KB of Python objects each). Nothing that reads that
informer needs most of a *finished* pod, so ``compact_terminal_pod`` keeps only what its
readers use (checked against every reader, 2026-11-22):

* Job controller (``controllers/job/``): metadata (labels, annotations such as the
  completion index and failure counts, ownerReferences, finalizers for the JSON patch that
  removes the tracking finalizer, uid, deletionTimestamp, creationTimestamp), the whole
  ``status`` (phase, conditions: Ready / DisruptionTarget, container and init container
  statuses: exit codes, finishedAt), ``spec.nodeName`` and ``spec.initContainers[*]``
  name + restartPolicy (``pods.finished_time``: sidecars).
* Scheduler: ``spec.nodeName`` and the phase (terminal pods hold no resources and are never
  scheduled); PodGC: phase, creationTimestamp, metadata; garbage collector: metadata
  (uid, ownerReferences, finalizers); node lifecycle: ``spec.nodeName`` index, phase,
  deletionTimestamp; namespace controller: keys only.
* Agent (its own node-filtered informer, ``agent.agent``): a pod with a live worker passes
  through whole (the worker builds status and QoS from the spec); without one, the agent
  reads only metadata, the phase and ``spec.terminationGracePeriodSeconds`` (deletion).
* Writers never PUT a cached pod: finalizers go by JSON patch (or GET + PUT of the live
  object), status by merge patch, so a compact cache entry is never written back.

Dropped from terminal pods: ``metadata.managedFields``, the
``kubectl.kubernetes.io/last-applied-configuration`` annotation, and every ``spec`` field
but ``nodeName``, ``restartPolicy``, ``schedulerName``, ``priority``,
``terminationGracePeriodSeconds``, ``activeDeadlineSeconds`` and the container names (``initContainers`` keep ``restartPolicy``): images, commands, args, env, volume
mounts, resources, volumes, tolerations, affinity, security contexts. Running and pending
pods pass through unchanged (the scheduler reads their requests, tolerations and affinity;
the job controller their spec).

Short strings of the kept parts are interned, and the parts that repeat from pod to pod are
hash-consed (``_shared_copy``: one object per content, found by its JSON in a bounded
table): the thousands of pods of a Job share their compact spec, owner references,
finalizer list, host and pod IPs and the conditions of every pod that finished in the same
second. A compact finished pod cost ~5.2 KB of Python objects, ~3 KB with this. This relies on
the informer contract already in force (cached objects are never mutated: they are shared
between informers and handlers).

Pure and non-mutating: watch events are shared between watchers, so the input is never
changed; a new dict is returned.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Any

import orjson

from jobplane.api.pods import is_terminal

Obj = dict[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_KEPT_SPEC = ("nodeName", "restartPolicy", "schedulerName", "priority", "terminationGracePeriodSeconds",
              "activeDeadlineSeconds")
_INTERN_MAX = 64


# JSON of a kept part -> the one shared copy of it (see module doc); cleared whole when full.
_SHARED_MAX = 4096
_shared: dict[bytes, Any] = {}
_SHARED_METADATA = ("ownerReferences", "finalizers")
_SHARED_STATUS = ("conditions", "hostIPs", "podIPs")


def _interned(value: Any) -> Any:
    """A copy of a JSON value whose short strings are interned (shared between pods)."""
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= _INTERN_MAX else value
    if isinstance(value, dict):
        return {k: _interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interned(v) for v in value]
    return value


def _shared_copy(value: Any) -> Any:
    """The one shared copy of a JSON value of this content (orjson's text is the content:
    ``true``, ``1`` and ``1.0`` differ)."""
    try:
        key = orjson.dumps(value)
    except TypeError:  # not JSON (an in-process caller's object): kept as is, not shared
        return _interned(value)
    hit = _shared.get(key)
    if hit is None:
        if len(_shared) >= _SHARED_MAX:
            _shared.clear()
        hit = _shared[key] = _interned(value)
    return hit


def _compact_part(obj: Obj, shared: tuple[str, ...]) -> Obj:
    """A copy of ``obj`` with the ``shared`` fields hash-consed and the rest interned."""
    return {k: _shared_copy(v) if k in shared else _interned(v) for k, v in obj.items()}


def _compact_metadata(md: Obj) -> Obj:
    out = {k: v for k, v in md.items() if k != "managedFields"}
    annotations = md.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        out["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return _compact_part(out, _SHARED_METADATA)


def _compact_spec(spec: Obj) -> Obj:
    out = {k: spec[k] for k in _KEPT_SPEC if k in spec}
    out["containers"] = [{"name": c.get("name")} for c in spec.get("containers") or ()]
    if spec.get("initContainers"):
        out["initContainers"] = [{k: c[k] for k in ("name", "restartPolicy") if k in c}
                                 for c in spec["initContainers"]]
    return _shared_copy(out)


def compact_terminal_pod(pod: Obj) -> Obj:
    """``pod`` itself when it is not Succeeded/Failed, else a compact copy (see module doc).

    The same revision of a pod gives the same compact object (a small memo keyed by uid and
    resourceVersion): every informer of that watch event then shares one copy, as they shared
    the event's object before the transform."""
    if not isinstance(pod, dict) or not is_terminal(pod):
        return pod
    md = pod.get("metadata") or {}
    memo_key = (str(md.get("uid") or ""), str(md.get("resourceVersion") or ""))
    if memo_key[0] and memo_key[1]:
        hit = _recent.get(memo_key)
        if hit is not None:
            return hit
    out = dict(pod)
    out["metadata"] = _compact_metadata(md)
    out["spec"] = _compact_spec(pod.get("spec") or {})
    out["status"] = _compact_part(pod["status"], _SHARED_STATUS)
    if memo_key[0] and memo_key[1]:
        _recent[memo_key] = out
        if len(_recent) > _RECENT_MAX:
            _recent.popitem(last=False)
    return out


# (uid, resourceVersion) -> compact pod, for the informers that see the same event right after.
_RECENT_MAX = 1024
_recent: OrderedDict[tuple[str, str], Obj] = OrderedDict()
