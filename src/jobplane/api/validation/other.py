"""Namespace, Node, Event and Lease validation: the upstream rules that matter here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobplane.api.errors import FieldError, invalid, not_supported, required
from jobplane.api.validation.metadata import (
    STANDARD_FINALIZERS,
    nonnegative,
    validate_object_meta,
    validate_object_meta_update,
)
from jobplane.api.validation.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_path_segment_name,
    is_qualified_name,
    is_valid_label_value,
)
from jobplane.api.validation.pod import TAINT_EFFECTS, validate_quantity

REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024


# ---------------------------------------------------------------- namespaces


def _namespace_finalizers(ns: Mapping[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    for f in (ns.get("spec") or {}).get("finalizers") or ():
        path = "spec.finalizers"
        errs.extend(invalid(path, f, m) for m in is_qualified_name(f))
        if "/" not in f and f not in STANDARD_FINALIZERS:
            errs.append(invalid(path, f, "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def validate_namespace(ns: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(ns.get("metadata") or {}, False, is_dns1123_label)
    errs.extend(_namespace_finalizers(ns))
    return errs


def validate_namespace_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})


def validate_namespace_status_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    meta = new.get("metadata") or {}
    errs = validate_object_meta_update(meta, old.get("metadata") or {})
    phase = (new.get("status") or {}).get("phase") or ""
    if not meta.get("deletionTimestamp"):
        if phase != "Active":
            errs.append(invalid("status.Phase", phase, "may only be 'Active' if `deletionTimestamp` is empty"))
    elif phase != "Terminating":
        errs.append(invalid("status.Phase", phase, "may only be in terminating phase if `deletionTimestamp` is set"))
    return errs


def validate_namespace_finalize_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    errs.extend(_namespace_finalizers(new))
    return errs


# ---------------------------------------------------------------- nodes


def _resource_list(values: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for name, raw in (values or {}).items():
        p = f"{path}[{name}]"
        errs.extend(invalid(p, name, m) for m in is_qualified_name(name))
        errs.extend(validate_quantity(raw, p)[1])
    return errs


def _validate_node_spec_status(node: Mapping[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate((node.get("spec") or {}).get("taints") or ()):
        p = f"spec.taints[{i}]"
        key = t.get("key") or ""
        errs.extend(invalid(p + ".key", key, m) for m in is_qualified_name(key))
        value = t.get("value") or ""
        errs.extend(invalid(p + ".value", value, m) for m in is_valid_label_value(value))
        effect = t.get("effect") or ""
        if not effect:
            errs.append(required(p + ".effect"))
        elif effect not in TAINT_EFFECTS:
            errs.append(not_supported(p + ".effect", effect, TAINT_EFFECTS))
        if (key, effect) in seen:
            errs.append(FieldError("FieldValueDuplicate", p, f"{key}:{effect}",
                                   "taints must be unique by key and effect pair"))
        seen.add((key, effect))
    status = node.get("status") or {}
    errs.extend(_resource_list(status.get("capacity"), "status.capacity"))
    errs.extend(_resource_list(status.get("allocatable"), "status.allocatable"))
    return errs


def validate_node(node: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(node.get("metadata") or {}, False, is_dns1123_subdomain)
    errs.extend(_validate_node_spec_status(node))
    return errs


def validate_node_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    errs.extend(_validate_node_spec_status(new))
    old_pid = (old.get("spec") or {}).get("providerID") or ""
    new_pid = (new.get("spec") or {}).get("providerID") or ""
    if old_pid and new_pid != old_pid:
        errs.append(FieldError("FieldValueForbidden", "spec.providerID",
                               detail='node updates may not change providerID except from "" to valid'))
    return errs


# ---------------------------------------------------------------- events


def validate_event(ev: Mapping[str, Any]) -> list[FieldError]:
    """``legacyValidateEvent`` for core/v1 (the only checks upstream applies to v1 events)."""
    errs: list[FieldError] = []
    meta = ev.get("metadata") or {}
    ns = meta.get("namespace") or ""
    name = meta.get("name") or ""
    errs.extend(invalid("metadata.name", name, m) for m in is_path_segment_name(name))
    involved_ns = (ev.get("involvedObject") or {}).get("namespace") or ""
    if not ev.get("eventTime"):
        if not involved_ns:
            if ns not in ("", "default"):
                errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        elif ns != involved_ns:
            errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    else:
        if not involved_ns and ns not in ("default", "kube-system"):
            errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        controller = ev.get("reportingComponent") or ""
        if not controller:
            errs.append(required("reportingComponent"))
        errs.extend(invalid("reportingComponent", controller, m) for m in is_qualified_name(controller))
        for key, limit in (("reportingInstance", REPORTING_INSTANCE_LIMIT), ("action", ACTION_LIMIT),
                           ("reason", REASON_LIMIT)):
            value = ev.get(key) or ""
            if not value:
                errs.append(required(key))
            if len(value) > limit:
                errs.append(invalid(key, "", f"can have at most {limit} characters"))
        if len(ev.get("message") or "") > NOTE_LIMIT:
            errs.append(invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    errs.extend(invalid("namespace", ns, m) for m in is_dns1123_subdomain(ns))
    return errs


def validate_event_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_event(new)
    errs.extend(validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {}))
    return errs


# ---------------------------------------------------------------- leases


def _validate_lease_spec(lease: Mapping[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = lease.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    if spec.get("leaseTransitions") is not None:
        errs.extend(nonnegative(spec["leaseTransitions"], "spec.leaseTransitions"))
    return errs


def validate_lease(lease: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(lease.get("metadata") or {}, True, is_dns1123_subdomain)
    errs.extend(_validate_lease_spec(lease))
    return errs


def validate_lease_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    errs.extend(_validate_lease_spec(new))
    return errs
