"""Pod and pod template validation (``pkg/apis/core/validation``): the parts a local runtime
can honour, with upstream's paths and messages, in upstream's order."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jobplane.api.errors import (
    NOT_FOUND,
    FieldError,
    RawValue,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
)
from jobplane.api.quantity import QUANTITY_ERR, QuantityError, parse_quantity
from jobplane.api.validation.metadata import (
    validate_annotations,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from jobplane.api.validation.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_env_var_name,
    is_qualified_name,
    is_valid_label_value,
    is_valid_port_name,
)

Obj = dict[str, Any]
MAX_INT32 = 2147483647

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
_ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")
_ENV_FIELD_PATHS = sorted(["metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                           "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
                           "status.podIPs"])
_ENV_SUBSCRIPT_RE = re.compile(r"metadata\.(labels|annotations)\['([^']*)'\]")
_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
UPDATABLE_POD_SPEC_FIELDS = ",".join([
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
])


def _range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def _label_errors(value: str, path: str, fn: Any) -> list[FieldError]:
    return [invalid(path, value, m) for m in fn(value)]


# ---------------------------------------------------------------- volumes


def validate_volumes(volumes: list[Any] | None, path: str) -> tuple[set[str], list[FieldError]]:
    """Returns the names of valid volumes (mounts may only use those) and the errors."""
    names: set[str] = set()
    errs: list[FieldError] = []
    for i, vol in enumerate(volumes or ()):
        p = f"{path}[{i}]"
        if not isinstance(vol, Mapping):
            errs.append(invalid(p, str(vol), "must be an object"))
            continue
        verrs: list[FieldError] = []
        sources = [k for k in vol if k != "name"]
        if len(sources) > 1:
            verrs.append(forbidden(f"{p}.{sources[1]}", "may not specify more than 1 volume type"))
        elif not sources:
            verrs.append(required(p, "must specify a volume type"))
        name = vol.get("name") or ""
        if not name:
            verrs.append(required(p + ".name"))
        else:
            verrs.extend(_label_errors(name, p + ".name", is_dns1123_label))
        if name in names:
            verrs.append(duplicate(p + ".name", name))
        if verrs:
            errs.extend(verrs)
        else:
            names.add(name)
    return names, errs


# ---------------------------------------------------------------- containers


def _validate_ports(ports: list[Any] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports or ()):
        p = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                errs.extend(invalid(p + ".name", name, m) for m in msgs)
            elif name in names:
                errs.append(duplicate(p + ".name", name))
            else:
                names.add(name)
        cp = port.get("containerPort") or 0
        if not cp:
            errs.append(required(p + ".containerPort"))
        elif not isinstance(cp, int) or not 1 <= cp <= 65535:
            errs.append(invalid(p + ".containerPort", cp, _range_error(1, 65535)))
        hp = port.get("hostPort") or 0
        if hp and (not isinstance(hp, int) or not 1 <= hp <= 65535):
            errs.append(invalid(p + ".hostPort", hp, _range_error(1, 65535)))
        proto = port.get("protocol") or ""
        if not proto:
            errs.append(required(p + ".protocol"))
        elif proto not in PROTOCOLS:
            errs.append(not_supported(p + ".protocol", proto, PROTOCOLS))
    return errs


def _validate_field_ref(ref: Mapping[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    fp = ref.get("fieldPath") or ""
    if not ref.get("apiVersion"):
        errs.append(required(path + ".apiVersion"))
    if not fp:
        errs.append(required(path + ".fieldPath"))
        return errs
    m = _ENV_SUBSCRIPT_RE.fullmatch(fp)
    if m:
        key = m.group(2)
        msgs = is_qualified_name(key.lower() if m.group(1) == "annotations" else key)
        errs.extend(invalid(path + ".fieldPath", key, msg) for msg in msgs)
    elif fp not in _ENV_FIELD_PATHS:
        errs.append(not_supported(path + ".fieldPath", fp, _ENV_FIELD_PATHS))
    return errs


def validate_env(env: list[Any] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ev in enumerate(env or ()):
        p = f"{path}[{i}]"
        name = ev.get("name") or ""
        if not name:
            errs.append(required(p + ".name"))
        else:
            errs.extend(invalid(p + ".name", name, m) for m in is_env_var_name(name))
        value_from = ev.get("valueFrom")
        if value_from is None:
            continue
        vp = p + ".valueFrom"
        sources = [k for k in _ENV_SOURCES if value_from.get(k) is not None]
        if not sources:
            errs.append(invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                        "`configMapKeyRef` or `secretKeyRef`"))
        elif len(sources) > 1:
            errs.append(invalid(vp, "", "may not have more than one field specified at a time"))
        elif sources[0] == "fieldRef":
            errs.extend(_validate_field_ref(value_from["fieldRef"], vp + ".fieldRef"))
        if ev.get("value") and sources:
            errs.append(invalid(vp, "", "may not be specified when `value` is not empty"))
    return errs


def _validate_mounts(mounts: list[Any] | None, volumes: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, m in enumerate(mounts or ()):
        p = f"{path}[{i}]"
        name = m.get("name") or ""
        if not name:
            errs.append(required(p + ".name"))
        if name not in volumes:
            errs.append(FieldError(NOT_FOUND, p + ".name", name))
        mp = m.get("mountPath") or ""
        if not mp:
            errs.append(required(p + ".mountPath"))
        if mp in seen:
            errs.append(invalid(p + ".mountPath", mp, "must be unique"))
        seen.add(mp)
        sub = m.get("subPath") or ""
        if sub and (sub.startswith("/") or ".." in sub.split("/")):
            detail = "must be a relative path" if sub.startswith("/") else "must not contain '..'"
            errs.append(invalid(p + ".subPath", sub, detail))
    return errs


def _validate_resource_name(name: str, path: str) -> list[FieldError]:
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if "/" not in name:
        if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    return errs


def validate_quantity(raw: Any, path: str) -> tuple[Any | None, list[FieldError]]:
    """A non-negative resource quantity: (parsed value or None when unparsable, errors)."""
    try:
        q = parse_quantity(raw)
    except (QuantityError, TypeError):
        return None, [invalid(path, str(raw), QUANTITY_ERR)]
    if q < 0:
        return q, [invalid(path, str(raw), "must be greater than or equal to 0")]
    return q, []


def validate_resources(resources: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not resources:
        return errs
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    parsed_limits: dict[str, Any] = {}
    for section, values in (("limits", limits), ("requests", requests)):
        for name, raw in values.items():
            p = f"{path}.{section}[{name}]"
            errs.extend(_validate_resource_name(name, p))
            q, q_errs = validate_quantity(raw, p)
            errs.extend(q_errs)
            if q is None:
                continue
            if section == "limits":
                parsed_limits[name] = q
            elif name in parsed_limits:
                limit = parsed_limits[name]
                overcommit = name in ("cpu", "memory", "ephemeral-storage") or "/" not in name
                if not overcommit and q != limit:
                    errs.append(invalid(path + ".requests", str(raw),
                                        f"must be equal to {name} limit of {limits[name]}"))
                elif q > limit:
                    errs.append(invalid(path + ".requests", str(raw),
                                        f"must be less than or equal to {name} limit of {limits[name]}"))
    return errs


def _validate_container(c: Mapping[str, Any], volumes: set[str], path: str, is_pod: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    name = c.get("name") or ""
    if not name:
        errs.append(required(path + ".name"))
    else:
        errs.extend(_label_errors(name, path + ".name", is_dns1123_label))
    image = c.get("image") or ""
    if not image:
        errs.append(required(path + ".image"))
    elif is_pod and image != image.strip():
        errs.append(invalid(path + ".image", image, "must not have leading or trailing whitespace"))
    tmp = c.get("terminationMessagePolicy") or ""
    if not tmp:
        errs.append(required(path + ".terminationMessagePolicy", "must be 'File' or 'FallbackToLogsOnError'"))
    elif tmp not in TERMINATION_MESSAGE_POLICIES:
        errs.append(not_supported(path + ".terminationMessagePolicy", tmp, TERMINATION_MESSAGE_POLICIES))
    errs.extend(_validate_ports(c.get("ports"), path + ".ports"))
    errs.extend(validate_env(c.get("env"), path + ".env"))
    errs.extend(_validate_mounts(c.get("volumeMounts"), volumes, path + ".volumeMounts"))
    policy = c.get("imagePullPolicy") or ""
    if not policy:
        errs.append(required(path + ".imagePullPolicy"))
    elif policy not in PULL_POLICIES:
        errs.append(not_supported(path + ".imagePullPolicy", policy, PULL_POLICIES))
    errs.extend(validate_resources(c.get("resources"), path + ".resources"))
    return errs


def _validate_containers(containers: list[Any] | None, volumes: set[str], path: str, is_pod: bool,
                         taken: set[str] | None = None) -> tuple[set[str], list[FieldError]]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, c in enumerate(containers or ()):
        p = f"{path}[{i}]"
        if not isinstance(c, Mapping):
            errs.append(invalid(p, str(c), "must be an object"))
            continue
        errs.extend(_validate_container(c, volumes, p, is_pod))
        name = c.get("name") or ""
        if name in names or (taken is not None and name in taken):
            errs.append(duplicate(p + ".name", name))
        else:
            names.add(name)
    return names, errs


# ---------------------------------------------------------------- pod spec


def validate_tolerations(tolerations: list[Any] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, t in enumerate(tolerations or ()):
        p = f"{path}[{i}]"
        key = t.get("key") or ""
        op = t.get("operator") or ""
        effect = t.get("effect") or ""
        if key:
            errs.extend(invalid(p + ".key", key, m) for m in is_qualified_name(key))
        if not key and op != "Exists":
            errs.append(invalid(p + ".operator", op,
                                'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(p + ".effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            errs.extend(invalid(p + ".operator", t.get("value") or "", m)
                        for m in is_valid_label_value(t.get("value") or ""))
        elif op == "Exists":
            if t.get("value"):
                errs.append(invalid(p + ".operator", RawValue("core.Toleration{...}"),
                                    "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(p + ".operator", op, ["Equal", "Exists"]))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(p + ".effect", effect, TAINT_EFFECTS))
    return errs


def validate_pod_spec(spec: Mapping[str, Any], path: str, is_pod: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    volumes, verrs = validate_volumes(spec.get("volumes"), path + ".volumes")
    errs.extend(verrs)
    containers = spec.get("containers")
    if not containers:
        errs.append(required(path + ".containers"))
    names, cerrs = _validate_containers(containers, volumes, path + ".containers", is_pod)
    errs.extend(cerrs)
    _, ierrs = _validate_containers(spec.get("initContainers"), volumes, path + ".initContainers", is_pod, names)
    errs.extend(ierrs)
    rp = spec.get("restartPolicy") or ""
    if not rp:
        errs.append(required(path + ".restartPolicy"))
    elif rp not in RESTART_POLICIES:
        errs.append(not_supported(path + ".restartPolicy", rp, RESTART_POLICIES))
    dp = spec.get("dnsPolicy") or ""
    if not dp:
        errs.append(required(path + ".dnsPolicy"))
    elif dp not in DNS_POLICIES:
        errs.append(not_supported(path + ".dnsPolicy", dp, DNS_POLICIES))
    errs.extend(validate_labels(spec.get("nodeSelector"), path + ".nodeSelector"))
    sa = spec.get("serviceAccountName") or ""
    if sa:
        errs.extend(_label_errors(sa, path + ".serviceAccountName", is_dns1123_subdomain))
    node = spec.get("nodeName") or ""
    if node:
        errs.extend(_label_errors(node, path + ".nodeName", is_dns1123_subdomain))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not isinstance(ads, int) or not 1 <= ads <= MAX_INT32):
        errs.append(invalid(path + ".activeDeadlineSeconds", ads, _range_error(1, MAX_INT32)))
    for key in ("hostname", "subdomain"):
        value = spec.get(key) or ""
        if value:
            errs.extend(_label_errors(value, f"{path}.{key}", is_dns1123_label))
    errs.extend(validate_tolerations(spec.get("tolerations"), path + ".tolerations"))
    return errs


def validate_pod_template(template: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    """``ValidatePodTemplateSpec``: template labels/annotations (at ``<path>.labels``), then the spec."""
    if not isinstance(template, Mapping):
        return [required(path)]
    meta = template.get("metadata") or {}
    errs = validate_labels(meta.get("labels"), path + ".labels")
    errs.extend(validate_annotations(meta.get("annotations"), path + ".annotations"))
    errs.extend(validate_pod_spec(template.get("spec") or {}, path + ".spec", is_pod=False))
    return errs


# ---------------------------------------------------------------- pods


def validate_pod(pod: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(pod.get("metadata") or {}, True, is_dns1123_subdomain)
    spec = pod.get("spec") or {}
    errs.extend(validate_pod_spec(spec, "spec", is_pod=True))
    if spec.get("ephemeralContainers"):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    return errs


def _munge(new_spec: Mapping[str, Any], old_spec: Mapping[str, Any]) -> dict[str, Any]:
    """New spec with the updatable fields replaced by the old values (shallow copies only)."""
    munged = dict(new_spec)
    for key in ("containers", "initContainers"):
        new_list, old_list = new_spec.get(key), old_spec.get(key)
        if new_list and old_list and len(new_list) == len(old_list):
            munged[key] = [{**n, "image": o.get("image")} for n, o in zip(new_list, old_list, strict=True)]
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        if key in old_spec:
            munged[key] = old_spec[key]
        else:
            munged.pop(key, None)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and new_spec.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    # An update may still set nodeName on an unbound pod (the scheduler uses pods/binding).
    if not old_spec.get("nodeName"):
        if "nodeName" in old_spec:
            munged["nodeName"] = old_spec["nodeName"]
        else:
            munged.pop("nodeName", None)
    return munged


def validate_pod_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    errs.extend(validate_pod_spec(new_spec, "spec", is_pod=True))
    for key in ("containers", "initContainers"):
        new_list, old_list = new_spec.get(key) or [], old_spec.get(key) or []
        if len(new_list) != len(old_list):
            errs.append(forbidden(f"spec.{key}", "pod updates may not add or remove containers"))
            return errs
    ads, old_ads = new_spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if ads is not None:
        if not isinstance(ads, int) or not 0 <= ads <= MAX_INT32:
            errs.append(invalid("spec.activeDeadlineSeconds", ads, _range_error(0, MAX_INT32)))
            return errs
        if old_ads is not None and old_ads < ads:
            errs.append(invalid("spec.activeDeadlineSeconds", ads, "must be less than or equal to previous value"))
            return errs
    elif old_ads is not None:
        errs.append(invalid("spec.activeDeadlineSeconds", RawValue("null"),
                            "must not update from a positive integer to nil value"))
    old_tols = old_spec.get("tolerations") or []
    new_tols = new_spec.get("tolerations") or []
    for i, t in enumerate(old_tols):
        if t not in new_tols:
            errs.append(forbidden(f"spec.tolerations[{i}]", "existing toleration can not be modified except its tolerationSeconds"))
    if new_spec != old_spec and _munge(new_spec, old_spec) != old_spec:
        errs.append(forbidden("spec", f"pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}"))
    return errs


def validate_pod_status_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    status, old_status = new.get("status") or {}, old.get("status") or {}
    nominated = status.get("nominatedNodeName") or ""
    if nominated and nominated != (old_status.get("nominatedNodeName") or ""):
        errs.extend(_label_errors(nominated, "status.nominatedNodeName", is_dns1123_subdomain))
    restart = (old.get("spec") or {}).get("restartPolicy")
    for key in ("containerStatuses", "initContainerStatuses"):
        errs.extend(_state_transitions(status.get(key) or [], old_status.get(key) or [], f"status.{key}",
                                       restart))
    return errs


def _state_transitions(new: list[Any], old: list[Any], path: str, restart: str | None) -> list[FieldError]:
    """Containers of a pod that never restarts may not leave the terminated state."""
    errs: list[FieldError] = []
    if restart == "Always":
        return errs
    for i, o in enumerate(old):
        term = (o.get("state") or {}).get("terminated")
        if term is None:
            continue
        if term.get("exitCode", 0) != 0 and restart == "OnFailure":
            continue
        for n in new:
            if n.get("name") == o.get("name") and (n.get("state") or {}).get("terminated") is None:
                errs.append(forbidden(f"{path}[{i}].state", "may not be transitioned to non-terminated state"))
    return errs
