"""Registry strategies (``PrepareForCreate``/``PrepareForUpdate`` of each kind's REST
strategy): what the server resets or generates regardless of what the client sent.

Values carried over from ``old`` are shared, not copied: stored objects are read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobplane.api import pods
from jobplane.api.validation.job import CONTROLLER_UID, JOB_NAME, LEGACY_CONTROLLER_UID, LEGACY_JOB_NAME

Obj = dict[str, Any]


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def keep_status(new: Obj, old: Mapping[str, Any]) -> None:
    if "status" in old:
        new["status"] = old["status"]
    else:
        new.pop("status", None)


def keep_spec(new: Obj, old: Mapping[str, Any]) -> None:
    if "spec" in old:
        new["spec"] = old["spec"]
    else:
        new.pop("spec", None)


def bump_generation(new: Obj, old: Mapping[str, Any]) -> None:
    """Any spec change increments ``metadata.generation`` (the service keeps the old one)."""
    old_gen = (old.get("metadata") or {}).get("generation")
    if old_gen is None:
        return
    meta = _meta(new)
    meta["generation"] = old_gen + 1 if new.get("spec") != old.get("spec") else old_gen


# ---------------------------------------------------------------- jobs


def generate_selector(job: Obj) -> None:
    """``generateSelector``: job-name/controller-uid template labels (user keys win) and a
    ``batch.kubernetes.io/controller-uid`` matchLabel."""
    meta = _meta(job)
    name, uid = meta.get("name") or "", meta.get("uid") or ""
    spec = job.setdefault("spec", {})
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    tmeta = template.get("metadata")
    if not isinstance(tmeta, dict):
        tmeta = template["metadata"] = {}
    labels = tmeta.get("labels")
    if labels is None:
        labels = tmeta["labels"] = {}
    for key in (LEGACY_JOB_NAME, JOB_NAME):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID, CONTROLLER_UID):
        labels.setdefault(key, uid)
    selector = spec.get("selector")
    if selector is None:
        selector = spec["selector"] = {}
    match = selector.get("matchLabels")
    if match is None:
        match = selector["matchLabels"] = {}
    match.setdefault(CONTROLLER_UID, uid)


def job_prepare_for_create(job: Obj) -> None:
    if not (job.get("spec") or {}).get("manualSelector"):
        generate_selector(job)
    job["status"] = {}
    _meta(job)["generation"] = 1


def finish_job_labels(job: Obj) -> None:
    """Job labels as a client reads them back: a copy of the template labels when the job
    has none (Go shares the defaulted map, and defaulting runs again on every read)."""
    meta = _meta(job)
    tmpl_labels = (((job.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")
    labels = meta.get("labels")
    if tmpl_labels is not None and (labels is tmpl_labels or not labels):
        meta["labels"] = dict(tmpl_labels)


def status_only_prepare(new: Obj, old: Mapping[str, Any]) -> None:
    keep_spec(new, old)


def spec_prepare(new: Obj, old: Mapping[str, Any]) -> None:
    """Job and CronJob ``PrepareForUpdate``: status is the server's, spec changes bump generation."""
    keep_status(new, old)
    bump_generation(new, old)


# ---------------------------------------------------------------- pods


def pod_prepare_for_create(pod: Obj) -> None:
    spec = pod.get("spec") or {}
    status: Obj = {"phase": "Pending", "qosClass": pods.qos_class(pod)}
    if spec.get("schedulingGates"):
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                                 "message": "Scheduling is blocked due to non-empty scheduling gates"}]
    pod["status"] = status


def pod_prepare_for_update(new: Obj, old: Mapping[str, Any]) -> None:
    """Status is the kubelet's; generation bumps on spec changes other than binding an
    unbound pod (upstream binds through pods/binding, which leaves generation alone)."""
    keep_status(new, old)
    old_spec = old.get("spec") or {}
    new_spec = new.get("spec") or {}
    if not old_spec.get("nodeName") and new_spec.get("nodeName"):
        unbound = {k: v for k, v in new_spec.items() if k != "nodeName"}
        if unbound == {k: v for k, v in old_spec.items() if k != "nodeName"}:
            old_gen = (old.get("metadata") or {}).get("generation")
            if old_gen is not None:
                _meta(new)["generation"] = old_gen
            return
    bump_generation(new, old)


def pod_prepare_for_status_update(new: Obj, old: Mapping[str, Any]) -> None:
    keep_spec(new, old)
    old_meta = old.get("metadata") or {}
    meta = _meta(new)
    if "ownerReferences" in old_meta:
        meta["ownerReferences"] = old_meta["ownerReferences"]
    else:
        meta.pop("ownerReferences", None)
    status = new.get("status")
    old_qos = (old.get("status") or {}).get("qosClass")
    if isinstance(status, dict) and not status.get("qosClass") and old_qos:
        status["qosClass"] = old_qos


# ---------------------------------------------------------------- namespaces and nodes


def namespace_prepare_for_create(ns: Obj) -> None:
    ns["status"] = {"phase": "Active"}
    spec = ns.get("spec")
    if not isinstance(spec, dict):
        spec = ns["spec"] = {}
    finalizers = spec.get("finalizers") or []
    if "kubernetes" not in finalizers:
        spec["finalizers"] = [*finalizers, "kubernetes"]


def namespace_prepare_for_update(new: Obj, old: Mapping[str, Any]) -> None:
    old_finalizers = (old.get("spec") or {}).get("finalizers")
    spec = new.get("spec")
    if not isinstance(spec, dict):
        spec = new["spec"] = {}
    if old_finalizers is None:
        spec.pop("finalizers", None)
    else:
        spec["finalizers"] = old_finalizers
    keep_status(new, old)


def namespace_prepare_for_finalize(new: Obj, old: Mapping[str, Any]) -> None:
    keep_status(new, old)


def node_prepare_for_update(new: Obj, old: Mapping[str, Any]) -> None:
    keep_status(new, old)
