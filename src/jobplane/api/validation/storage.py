"""PersistentVolumeClaim, PersistentVolume and StorageClass: upstream's defaults, status
reset on create and the validation messages that matter (``ValidatePersistentVolumeClaim``,
``ValidatePersistentVolume``, ``ValidateStorageClass`` and their updates)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobplane.api.errors import FieldError, forbidden, invalid, not_supported, required
from jobplane.api.quantity import QuantityError, parse_quantity
from jobplane.api.validation.metadata import validate_object_meta, validate_object_meta_update
from jobplane.api.validation.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
)

Obj = dict[str, Any]

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
VOLUME_MODES = ["Block", "Filesystem"]
PV_RECLAIM = ["Delete", "Recycle", "Retain"]
SC_RECLAIM = ["Delete", "Retain"]
BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
# Volume sources a PersistentVolume may name (one of them); jobplane provisions hostPath ones.
PV_SOURCES = ("hostPath", "local", "nfs", "csi", "iscsi", "fc", "rbd", "cephfs", "cinder", "flexVolume",
              "azureFile", "azureDisk", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flocker",
              "vsphereVolume", "quobyte", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos")


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def is_default_class(sc: Mapping[str, Any]) -> bool:
    annotations = (sc.get("metadata") or {}).get("annotations") or {}
    return annotations.get(DEFAULT_CLASS_ANNOTATION) == "true" or \
        annotations.get("storageclass.beta.kubernetes.io/is-default-class") == "true"


def _access_modes(modes: Any, path: str) -> list[FieldError]:
    if not modes:
        return [required(path, "at least 1 access mode is required")]
    errs = [not_supported(path, m, ACCESS_MODES) for m in modes if m not in ACCESS_MODES]
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _storage_quantity(values: Any, path: str) -> list[FieldError]:
    values = values if isinstance(values, dict) else {}
    if "storage" not in values:
        return [required(f"{path}[storage]")]
    try:
        if parse_quantity(values["storage"]) <= 0:
            return [invalid(f"{path}[storage]", str(values["storage"]), "must be greater than zero")]
    except (QuantityError, TypeError):
        return [invalid(f"{path}[storage]", str(values["storage"]),
                        "quantities must match the regular expression "
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    return []


# ---------------------------------------------------------------- PersistentVolumeClaim


def default_pvc(pvc: Obj) -> None:
    spec = _spec(pvc)
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"


def pvc_prepare_for_create(pvc: Obj) -> None:
    pvc["status"] = {"phase": "Pending"}


def validate_pvc(pvc: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(pvc.get("metadata") or {}, True, is_dns1123_subdomain)
    spec = pvc.get("spec") or {}
    errs.extend(_access_modes(spec.get("accessModes"), "spec.accessModes"))
    errs.extend(_storage_quantity((spec.get("resources") or {}).get("requests"), "spec.resources"))
    if spec.get("volumeMode") not in VOLUME_MODES:
        errs.append(not_supported("spec.volumeMode", spec.get("volumeMode"), VOLUME_MODES))
    sc = spec.get("storageClassName")
    if sc:
        errs.extend(invalid("spec.storageClassName", sc, m) for m in is_dns1123_subdomain(sc))
    return errs


def validate_pvc_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    """The spec is frozen once created, except requests (expansion), a volumeName set once by
    the binder, and a storageClassName set once where it was unset."""
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    spec, old_spec = dict(new.get("spec") or {}), dict(old.get("spec") or {})
    for key in ("resources",):
        spec.pop(key, None)
        old_spec.pop(key, None)
    if not old_spec.get("volumeName"):
        spec.pop("volumeName", None)
        old_spec.pop("volumeName", None)
    if old_spec.get("storageClassName") is None:
        spec.pop("storageClassName", None)
        old_spec.pop("storageClassName", None)
    if spec != old_spec:
        errs.append(forbidden("spec", "spec is immutable after creation except resources.requests and "
                                      "volumeAttributesClassName for bound claims"))
    errs.extend(validate_pvc(new))
    return errs


# ---------------------------------------------------------------- PersistentVolume


def default_pv(pv: Obj) -> None:
    spec = _spec(pv)
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"


def pv_prepare_for_create(pv: Obj, now: str) -> None:
    pv["status"] = {"phase": "Pending", "lastPhaseTransitionTime": now}


def validate_pv(pv: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(pv.get("metadata") or {}, False, is_dns1123_subdomain)
    spec = pv.get("spec") or {}
    errs.extend(_access_modes(spec.get("accessModes"), "spec.accessModes"))
    if not spec.get("capacity"):
        errs.append(required("spec.capacity"))
    else:
        errs.extend(_storage_quantity(spec.get("capacity"), "spec.capacity"))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy not in PV_RECLAIM:
        errs.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, PV_RECLAIM))
    sources = [s for s in PV_SOURCES if spec.get(s)]
    if not sources:
        errs.append(required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        errs.append(forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type"))
    for source in ("hostPath", "local"):
        if spec.get(source) is not None and not (spec.get(source) or {}).get("path"):
            errs.append(required(f"spec.{source}.path"))
    if spec.get("local") and not spec.get("nodeAffinity"):
        errs.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
    sc = spec.get("storageClassName")
    if sc:
        errs.extend(invalid("spec.storageClassName", sc, m) for m in is_dns1123_subdomain(sc))
    return errs


def validate_pv_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    for source in PV_SOURCES:
        if spec.get(source) != old_spec.get(source):
            errs.append(forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is forbidden."))
            break
    if old_spec.get("nodeAffinity") and spec.get("nodeAffinity") != old_spec.get("nodeAffinity"):
        errs.append(invalid("nodeAffinity", "<object>", "field is immutable"))
    errs.extend(validate_pv(new))
    return errs


# ---------------------------------------------------------------- StorageClass


def default_storageclass(sc: Obj) -> None:
    if not sc.get("reclaimPolicy"):
        sc["reclaimPolicy"] = "Delete"
    if not sc.get("volumeBindingMode"):
        sc["volumeBindingMode"] = "Immediate"


def validate_storageclass(sc: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(sc.get("metadata") or {}, False, is_dns1123_subdomain)
    provisioner = sc.get("provisioner") or ""
    if not provisioner:
        errs.append(required("provisioner"))
    else:
        errs.extend(invalid("provisioner", provisioner, m) for m in is_qualified_name(provisioner.lower()))
    if sc.get("reclaimPolicy") not in SC_RECLAIM:
        errs.append(not_supported("reclaimPolicy", sc.get("reclaimPolicy"), SC_RECLAIM))
    if sc.get("volumeBindingMode") not in BINDING_MODES:
        errs.append(not_supported("volumeBindingMode", sc.get("volumeBindingMode"), BINDING_MODES))
    return errs


def validate_storageclass_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    if (new.get("parameters") or {}) != (old.get("parameters") or {}):
        errs.append(forbidden("parameters", "updates to parameters are forbidden."))
    if new.get("provisioner") != old.get("provisioner"):
        errs.append(forbidden("provisioner", "updates to provisioner are forbidden."))
    if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
        errs.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
        errs.append(invalid("volumeBindingMode", new.get("volumeBindingMode"), "field is immutable"))
    errs.extend(validate_storageclass(new))
    return errs


def validate_runtimeclass(rc: Mapping[str, Any]) -> list[FieldError]:
    """node.k8s.io RuntimeClass (``ValidateRuntimeClass``): a DNS-label handler, non-negative
    overhead, valid scheduling labels."""
    errs = validate_object_meta(rc.get("metadata") or {}, False, is_dns1123_subdomain)
    handler = rc.get("handler") or ""
    errs.extend(invalid("handler", handler, m) for m in is_dns1123_label(handler))
    for name, value in ((rc.get("overhead") or {}).get("podFixed") or {}).items():
        if str(value).startswith("-"):
            errs.append(invalid(f"overhead.podFixed[{name}]", value, "must be greater than or equal to 0"))
    for key, value in ((rc.get("scheduling") or {}).get("nodeSelector") or {}).items():
        errs.extend(invalid(f"scheduling.nodeSelector[{key}]", key, m) for m in is_qualified_name(key))
        errs.extend(invalid(f"scheduling.nodeSelector[{key}]", value, m) for m in is_valid_label_value(str(value)))
    return errs


def validate_runtimeclass_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    if new.get("handler") != old.get("handler"):
        errs.append(invalid("handler", new.get("handler"), "field is immutable"))
    return errs + validate_runtimeclass(new)
