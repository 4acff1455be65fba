"""Admission: defaulting, the registry strategies (PrepareForCreate/Update) and validation,
in upstream's order. ``apiserver.service.ApiService`` calls exactly these three functions.

Each mutates ``obj`` in place (defaults, generated selector, cleared status...) and raises
``StatusError`` (422 Invalid via ``errors.invalid_object``) when validation fails, so that
nothing invalid is stored. They return a list of warning strings (sent as ``Warning: 299``).

Called by the service *after* it has filled the server-owned metadata (namespace, name
from generateName, uid, creationTimestamp, generation=1 on create) — see service.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobplane.api import certificates, defaults, rbac, strategy
from jobplane.api.errors import FieldError, duplicate, forbidden, invalid_object, required
from jobplane.api.registry import ResourceInfo
from jobplane.api.validation import config as v_config
from jobplane.api.validation import cronjob as v_cronjob
from jobplane.api.validation import job as v_job
from jobplane.api.validation import network as v_net
from jobplane.api.validation import other as v_other
from jobplane.api.validation import pod as v_pod
from jobplane.api.validation import storage as v_storage
from jobplane.api.validation.metadata import validate_object_meta_update

Obj = dict[str, Any]


def _raise_if(info: ResourceInfo, obj: Obj, errs: list[FieldError]) -> None:
    if not errs:
        return
    # The message says a repeated error once (ValidateUpdate re-runs spec checks); the causes
    # keep each, as NewInvalid's do.
    name = (obj.get("metadata") or {}).get("name") or ""
    raise invalid_object(info.kind, info.group, name, errs)


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


# ---------------------------------------------------------------- per kind: create


def _create_job(obj: Obj) -> tuple[list[FieldError], list[str]]:
    defaults.default_job(obj)
    strategy.job_prepare_for_create(obj)
    errs = v_job.validate_job(obj)
    strategy.finish_job_labels(obj)
    warnings = v_job.name_warnings((obj.get("metadata") or {}).get("name") or "")
    warnings.extend(v_job.job_spec_warnings(_spec(obj), "spec"))
    return errs, warnings


def _create_cronjob(obj: Obj) -> tuple[list[FieldError], list[str]]:
    defaults.default_cronjob(obj)
    obj["status"] = {}
    obj.setdefault("metadata", {})["generation"] = 1
    return v_cronjob.validate_cronjob(obj), v_cronjob.cronjob_warnings(obj)


def _create_pod(obj: Obj) -> tuple[list[FieldError], list[str]]:
    defaults.default_pod(obj)
    strategy.pod_prepare_for_create(obj)
    return v_pod.validate_pod(obj), []


def _create_namespace(obj: Obj) -> tuple[list[FieldError], list[str]]:
    defaults.default_namespace(obj)
    strategy.namespace_prepare_for_create(obj)
    return v_other.validate_namespace(obj), []


def _create_node(obj: Obj) -> tuple[list[FieldError], list[str]]:
    defaults.default_node(obj)
    return v_other.validate_node(obj), []


def _create_event(obj: Obj) -> tuple[list[FieldError], list[str]]:
    return v_other.validate_event(obj), []


def _create_lease(obj: Obj) -> tuple[list[FieldError], list[str]]:
    return v_other.validate_lease(obj), []


def _create_configmap(obj: Obj) -> tuple[list[FieldError], list[str]]:
    v_config.check_base64("ConfigMap", obj.get("binaryData"))
    return v_config.validate_configmap(obj), []


def _create_secret(obj: Obj) -> tuple[list[FieldError], list[str]]:
    v_config.check_base64("Secret", obj.get("data"))
    v_config.default_secret(obj)
    return v_config.validate_secret(obj), []


def _create_serviceaccount(obj: Obj) -> tuple[list[FieldError], list[str]]:
    return v_config.validate_serviceaccount(obj), []


def _create_service(obj: Obj) -> tuple[list[FieldError], list[str]]:
    v_net.default_service(obj)
    v_net.service_prepare_for_create(obj)
    return v_net.validate_service(obj), v_net.service_warnings(_spec(obj))


def _create_endpointslice(obj: Obj) -> tuple[list[FieldError], list[str]]:
    v_net.default_endpointslice(obj)
    return v_net.validate_endpointslice(obj), []


def _create_pvc(obj: Obj) -> tuple[list[FieldError], list[str]]:
    v_storage.default_pvc(obj)
    v_storage.pvc_prepare_for_create(obj)
    return v_storage.validate_pvc(obj), []


def _create_pv(obj: Obj) -> tuple[list[FieldError], list[str]]:
    v_storage.default_pv(obj)
    v_storage.pv_prepare_for_create(obj, (obj.get("metadata") or {}).get("creationTimestamp") or "")
    return v_storage.validate_pv(obj), []


def _create_runtimeclass(obj: Obj) -> tuple[list[FieldError], list[str]]:
    return v_storage.validate_runtimeclass(obj), []


def _update_runtimeclass(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    return v_storage.validate_runtimeclass_update(new, old), []


def _create_storageclass(obj: Obj) -> tuple[list[FieldError], list[str]]:
    v_storage.default_storageclass(obj)
    return v_storage.validate_storageclass(obj), []


# ---------------------------------------------------------------- per kind: update


def _update_job(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    defaults.default_job(new)
    strategy.spec_prepare(new, old)
    errs = v_job.validate_job_update(new, old)
    strategy.finish_job_labels(new)
    warnings: list[str] = []
    if (new.get("metadata") or {}).get("generation") != (old.get("metadata") or {}).get("generation"):
        warnings = v_job.job_spec_warnings(_spec(new), "spec")
    return errs, warnings


def _update_cronjob(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    defaults.default_cronjob(new)
    strategy.spec_prepare(new, old)
    errs = v_cronjob.validate_cronjob_update(new, old)
    warnings: list[str] = []
    if (new.get("metadata") or {}).get("generation") != (old.get("metadata") or {}).get("generation"):
        jt_spec = (_spec(new).get("jobTemplate") or {}).get("spec") or {}
        warnings = v_job.job_spec_warnings(jt_spec, "spec.jobTemplate.spec")
    return errs, warnings


def _update_pod(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    defaults.default_pod(new)
    strategy.pod_prepare_for_update(new, old)
    return v_pod.validate_pod_update(new, old), []


def _update_namespace(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    defaults.default_namespace(new)
    strategy.namespace_prepare_for_update(new, old)
    return v_other.validate_namespace_update(new, old), []


def _update_node(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    defaults.default_node(new)
    strategy.node_prepare_for_update(new, old)
    return v_other.validate_node_update(new, old), []


def _update_event(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    return v_other.validate_event_update(new, old), []


def _update_lease(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    return v_other.validate_lease_update(new, old), []


def _update_configmap(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    v_config.check_base64("ConfigMap", new.get("binaryData"))
    return v_config.validate_configmap_update(new, old), []


def _update_secret(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    v_config.check_base64("Secret", new.get("data"))
    v_config.default_secret(new)
    return v_config.validate_secret_update(new, old), []


def _update_serviceaccount(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    return v_config.validate_serviceaccount_update(new, old), []


def _update_service(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    v_net.default_service(new)
    v_net.service_prepare_for_update(new, old)
    return v_net.validate_service_update(new, old), []


def _update_endpointslice(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    v_net.default_endpointslice(new)
    return v_net.validate_endpointslice_update(new, old), []


def _update_pvc(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    v_storage.default_pvc(new)
    strategy.keep_status(new, old)
    return v_storage.validate_pvc_update(new, old), []


def _update_pv(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    v_storage.default_pv(new)
    strategy.keep_status(new, old)
    return v_storage.validate_pv_update(new, old), []


def _update_storageclass(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    v_storage.default_storageclass(new)
    return v_storage.validate_storageclass_update(new, old), []


# ---------------------------------------------------------------- per kind: status


def _status_job(new: Obj, old: Obj) -> list[FieldError]:
    strategy.keep_spec(new, old)
    return v_job.validate_job_status_update(new, old)


def _status_cronjob(new: Obj, old: Obj) -> list[FieldError]:
    strategy.keep_spec(new, old)
    return validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})


def _status_pod(new: Obj, old: Obj) -> list[FieldError]:
    strategy.pod_prepare_for_status_update(new, old)
    return v_pod.validate_pod_status_update(new, old)


def _status_namespace(new: Obj, old: Obj) -> list[FieldError]:
    strategy.keep_spec(new, old)
    return v_other.validate_namespace_status_update(new, old)


def _status_node(new: Obj, old: Obj) -> list[FieldError]:
    strategy.keep_spec(new, old)
    defaults.default_node(new)
    return v_other.validate_node_update(new, old)


def _status_keep_spec(new: Obj, old: Obj) -> list[FieldError]:
    """Services, claims and volumes: a status write changes nothing else."""
    strategy.keep_spec(new, old)
    return validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
def _create_rbac(validate: Callable[[Obj], list[FieldError]]) -> _Create:
    def admit(obj: Obj) -> tuple[list[FieldError], list[str]]:
        rbac.default_subjects(obj)
        return validate(obj), []
    return admit


def _update_rbac(validate: Callable[[Obj], list[FieldError]], binding: bool) -> _Update:
    def admit(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
        rbac.default_subjects(new)
        meta_errs = rbac.validate_binding_update(new, old) if binding else \
            validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
        return meta_errs + validate(new), []
    return admit


def _create_csr(obj: Obj) -> tuple[list[FieldError], list[str]]:
    certificates.prepare_create(obj)
    return certificates.validate(obj), []


def _update_csr(new: Obj, old: Obj) -> tuple[list[FieldError], list[str]]:
    certificates.prepare_update(new, old)
    return validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {}), []


def _status_csr(new: Obj, old: Obj) -> list[FieldError]:
    errs = certificates.prepare_status(new, old)
    return errs + validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})


def admit_csr_approval(info: ResourceInfo, new: Obj, old: Obj) -> list[str]:
    """``certificatesigningrequests/{name}/approval``: only Approved/Denied conditions change."""
    errs = certificates.prepare_approval(new, old)
    _raise_if(info, new, errs + validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {}))
    return []


_Create = Callable[[Obj], tuple[list[FieldError], list[str]]]
_Update = Callable[[Obj, Obj], tuple[list[FieldError], list[str]]]
_Status = Callable[[Obj, Obj], list[FieldError]]

_CREATE: dict[tuple[str, str], _Create] = {
    ("batch", "Job"): _create_job,
    ("batch", "CronJob"): _create_cronjob,
    ("", "Pod"): _create_pod,
    ("", "Namespace"): _create_namespace,
    ("", "Node"): _create_node,
    ("", "Event"): _create_event,
    ("events.k8s.io", "Event"): _create_event,
    ("coordination.k8s.io", "Lease"): _create_lease,
    ("", "ConfigMap"): _create_configmap,
    ("", "Secret"): _create_secret,
    ("", "ServiceAccount"): _create_serviceaccount,
    ("", "Service"): _create_service,
    ("", "PersistentVolumeClaim"): _create_pvc,
    ("", "PersistentVolume"): _create_pv,
    ("discovery.k8s.io", "EndpointSlice"): _create_endpointslice,
    ("storage.k8s.io", "StorageClass"): _create_storageclass,
    ("node.k8s.io", "RuntimeClass"): _create_runtimeclass,
    (rbac.GROUP, "Role"): _create_rbac(rbac.validate_role),
    (rbac.GROUP, "ClusterRole"): _create_rbac(rbac.validate_cluster_role),
    (rbac.GROUP, "RoleBinding"): _create_rbac(rbac.validate_role_binding),
    (rbac.GROUP, "ClusterRoleBinding"): _create_rbac(rbac.validate_cluster_role_binding),
    (certificates.GROUP, "CertificateSigningRequest"): _create_csr,
}
_UPDATE: dict[tuple[str, str], _Update] = {
    ("batch", "Job"): _update_job,
    ("batch", "CronJob"): _update_cronjob,
    ("", "Pod"): _update_pod,
    ("", "Namespace"): _update_namespace,
    ("", "Node"): _update_node,
    ("", "Event"): _update_event,
    ("events.k8s.io", "Event"): _update_event,
    ("coordination.k8s.io", "Lease"): _update_lease,
    ("", "ConfigMap"): _update_configmap,
    ("", "Secret"): _update_secret,
    ("", "ServiceAccount"): _update_serviceaccount,
    ("", "Service"): _update_service,
    ("", "PersistentVolumeClaim"): _update_pvc,
    ("", "PersistentVolume"): _update_pv,
    ("discovery.k8s.io", "EndpointSlice"): _update_endpointslice,
    ("storage.k8s.io", "StorageClass"): _update_storageclass,
    ("node.k8s.io", "RuntimeClass"): _update_runtimeclass,
    (rbac.GROUP, "Role"): _update_rbac(rbac.validate_role, False),
    (rbac.GROUP, "ClusterRole"): _update_rbac(rbac.validate_cluster_role, False),
    (rbac.GROUP, "RoleBinding"): _update_rbac(rbac.validate_role_binding, True),
    (rbac.GROUP, "ClusterRoleBinding"): _update_rbac(rbac.validate_cluster_role_binding, True),
    (certificates.GROUP, "CertificateSigningRequest"): _update_csr,
}
_STATUS: dict[tuple[str, str], _Status] = {
    ("batch", "Job"): _status_job,
    ("batch", "CronJob"): _status_cronjob,
    ("", "Pod"): _status_pod,
    ("", "Namespace"): _status_namespace,
    ("", "Node"): _status_node,
    ("", "Service"): _status_keep_spec,
    ("", "PersistentVolumeClaim"): _status_keep_spec,
    ("", "PersistentVolume"): _status_keep_spec,
    (certificates.GROUP, "CertificateSigningRequest"): _status_csr,
}


def admit_create(info: ResourceInfo, obj: Obj) -> list[str]:
    fn = _CREATE.get((info.group, info.kind))
    if fn is None:
        return []
    errs, warnings = fn(obj)
    _raise_if(info, obj, errs)
    return warnings


def admit_update(info: ResourceInfo, new: Obj, old: Obj) -> list[str]:
    """Spec/metadata update (PUT or PATCH on the main resource). ``new.status`` is reset to
    ``old.status`` by the strategy for kinds with a status subresource; ``generation`` bumps
    when the spec changes."""
    fn = _UPDATE.get((info.group, info.kind))
    if fn is None:
        return []
    errs, warnings = fn(new, old)
    _raise_if(info, new, errs)
    return warnings


def admit_status_update(info: ResourceInfo, new: Obj, old: Obj) -> list[str]:
    """Update through the ``/status`` subresource: everything but status is reset to ``old``."""
    fn = _STATUS.get((info.group, info.kind))
    if fn is None:
        return admit_update(info, new, old)
    _raise_if(info, new, fn(new, old))
    return []


_EPHEMERAL_FORBIDDEN = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resources",
                        "resizePolicy")


def admit_ephemeral_containers(info: ResourceInfo, new: Obj, old: Obj) -> list[str]:
    """``pods/{name}/ephemeralcontainers``: only ``spec.ephemeralContainers`` changes, and only
    by additions (upstream's ephemeral-containers strategy and
    ``ValidatePodEphemeralContainersUpdate``)."""
    wanted = list((new.get("spec") or {}).get("ephemeralContainers") or [])
    before = list((old.get("spec") or {}).get("ephemeralContainers") or [])
    spec = dict(old.get("spec") or {})
    for k in ("metadata", "status"):
        if k in old:
            new[k] = old[k]
    name = (old.get("metadata") or {}).get("name") or ""
    errs: list[FieldError] = []
    by_name = {c.get("name"): c for c in wanted if isinstance(c, dict)}
    for prev in before:
        cur = by_name.get(prev.get("name"))
        if cur is None or {k: v for k, v in cur.items() if k != "terminationMessagePath"} != \
                {k: v for k, v in prev.items() if k != "terminationMessagePath"}:
            errs.append(forbidden("spec.ephemeralContainers", "existing ephemeral containers "
                                  f"\"{prev.get('name')}\" may not be removed or changed"))
    taken = {c.get("name") for c in (*(spec.get("containers") or ()), *(spec.get("initContainers") or ()))}
    seen: set[str] = set()
    for i, c in enumerate(wanted):
        path = f"spec.ephemeralContainers[{i}]"
        cname = c.get("name") if isinstance(c, dict) else None
        if not cname:
            errs.append(required(f"{path}.name", ""))
            continue
        if cname in taken or cname in seen:
            errs.append(duplicate(f"{path}.name", cname))
        seen.add(cname)
        if not c.get("image"):
            errs.append(required(f"{path}.image", ""))
        for field in _EPHEMERAL_FORBIDDEN:
            if c.get(field):
                errs.append(forbidden(f"{path}.{field}", "cannot be set for an Ephemeral Container"))
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("imagePullPolicy", "IfNotPresent")
    spec["ephemeralContainers"] = wanted
    new["spec"] = spec
    _raise_if(info, {"metadata": {"name": name}}, errs)
    return []


def admit_namespace_finalize(info: ResourceInfo, new: Obj, old: Obj) -> list[str]:
    """``namespaces/{name}/finalize``: only ``spec.finalizers`` (and metadata) may change.
    An extension for the namespace controller; not part of the original contract."""
    strategy.namespace_prepare_for_finalize(new, old)
    _raise_if(info, new, v_other.validate_namespace_finalize_update(new, old))
    return []
