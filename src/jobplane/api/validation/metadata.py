"""ObjectMeta validation (apimachinery ``ValidateObjectMeta``/``ValidateObjectMetaUpdate``) and
the small shared helpers every kind uses: non-negative ints, immutable fields, label maps,
label selectors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jobplane.api.errors import (
    TOO_LONG,
    FieldError,
    RawValue,
    forbidden,
    invalid,
    required,
)
from jobplane.api.validation import gofmt
from jobplane.api.validation.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
)

Obj = dict[str, Any]
NameFn = Callable[[str], "tuple[str, ...] | list[str]"]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
_BANNED_OWNERS = {("", "v1", "Event"), ("events.k8s.io", "v1", "Event")}
IMMUTABLE = "field is immutable"


def nonnegative(value: Any, path: str) -> list[FieldError]:
    """``ValidateNonnegativeField``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


def immutable(new: Any, old: Any, path: str, render: Callable[[Any], Any] | None = None) -> list[FieldError]:
    """``ValidateImmutableField``: ``<path>: Invalid value: <new>: field is immutable``."""
    if new == old:
        return []
    value = render(new) if render else new
    return [invalid(path, value, IMMUTABLE)]


def validate_labels(labels: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for k, v in (labels or {}).items():
        errs.extend(invalid(path, k, m) for m in is_qualified_name(k))
        if not isinstance(v, str):
            errs.append(invalid(path, v, "must be a string"))
            continue
        errs.extend(invalid(path, v, m) for m in is_valid_label_value(v))
    return errs


def validate_annotations(annotations: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not annotations:
        return errs
    size = 0
    for k, v in annotations.items():
        errs.extend(invalid(path, k, m) for m in is_qualified_name(k.lower()))
        size += len(k) + len(v if isinstance(v, str) else str(v))
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(FieldError(TOO_LONG, path, detail=f"must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"))
    return errs


def validate_finalizers(finalizers: list[Any] | None, path: str, kube: bool = True) -> list[FieldError]:
    errs: list[FieldError] = []
    if not finalizers:
        return errs
    for f in finalizers:
        f = str(f)
        errs.extend(invalid(path, f, m) for m in is_qualified_name(f))
        if kube and "/" not in f and f not in STANDARD_FINALIZERS:
            errs.append(invalid(path, f, "name is neither a standard finalizer name nor is it fully qualified"))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errs.append(invalid(path, gofmt.string_slice(finalizers),
                            "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def _split_api_version(api_version: str) -> tuple[str, str]:
    if not api_version:
        return "", ""
    parts = api_version.split("/")
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return "", ""


def validate_owner_references(refs: list[Any] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    for ref in refs or ():
        if not isinstance(ref, Mapping):
            errs.append(invalid(path, str(ref), "must be an object"))
            continue
        api_version = ref.get("apiVersion") or ""
        group, version = _split_api_version(api_version)
        kind = ref.get("kind") or ""
        if not version:
            errs.append(invalid(path + ".apiVersion", api_version, "version must not be empty"))
        if not kind:
            errs.append(invalid(path + ".kind", kind, "kind must not be empty"))
        if not ref.get("name"):
            errs.append(invalid(path + ".name", ref.get("name") or "", "name must not be empty"))
        if not ref.get("uid"):
            errs.append(invalid(path + ".uid", ref.get("uid") or "", "uid must not be empty"))
        if (group, version, kind) in _BANNED_OWNERS:
            gvk = f"{group}/{version}, Kind={kind}"
            errs.append(invalid(path, RawValue(gofmt.struct("v1.OwnerReference", ref)),
                                f"{gvk} is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name') or ''}"
            if first_controller:
                errs.append(invalid(path, RawValue("[]v1.OwnerReference{...}"),
                                    'Only one reference can have Controller set to true. Found "true" in '
                                    f"references for {first_controller} and {current}"))
            else:
                first_controller = current
    return errs


def validate_object_meta(meta: Mapping[str, Any], namespaced: bool, name_fn: NameFn,
                         path: str = "metadata") -> list[FieldError]:
    """``ValidateObjectMeta``; the service already required a name or generateName."""
    errs: list[FieldError] = []
    name = meta.get("name") or ""
    if name:
        errs.extend(invalid(path + ".name", name, m) for m in name_fn(name))
    elif not meta.get("generateName"):
        errs.append(required(path + ".name", "name or generateName is required"))
    ns = meta.get("namespace") or ""
    if namespaced:
        if not ns:
            errs.append(required(path + ".namespace"))
        else:
            errs.extend(invalid(path + ".namespace", ns, m) for m in is_dns1123_label(ns))
    elif ns:
        errs.append(forbidden(path + ".namespace", "not allowed on this type"))
    errs.extend(nonnegative(meta.get("generation", 0), path + ".generation"))
    errs.extend(validate_labels(meta.get("labels"), path + ".labels"))
    errs.extend(validate_annotations(meta.get("annotations"), path + ".annotations"))
    errs.extend(validate_owner_references(meta.get("ownerReferences"), path + ".ownerReferences"))
    errs.extend(validate_finalizers(meta.get("finalizers"), path + ".finalizers"))
    return errs


def validate_object_meta_update(new: Mapping[str, Any], old: Mapping[str, Any],
                                path: str = "metadata") -> list[FieldError]:
    """``ValidateObjectMetaUpdate``: immutable identity, no new finalizers while deleting."""
    errs: list[FieldError] = []
    if old.get("deletionTimestamp"):
        old_f = set(old.get("finalizers") or ())
        extra = sorted({f for f in new.get("finalizers") or () if f not in old_f})
        if extra:
            errs.append(forbidden(path + ".finalizers",
                                  "no new finalizers can be added if the object is being deleted, "
                                  f"found new finalizers {gofmt.string_slice(extra)}"))
    if (new.get("generation") or 0) < (old.get("generation") or 0):
        errs.append(invalid(path + ".generation", new.get("generation") or 0, "must not be decremented"))
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                "deletionGracePeriodSeconds"):
        nv, ov = new.get(key), old.get(key)
        if nv != ov and (nv or ov):
            errs.append(invalid(f"{path}.{key}", nv if nv is not None else RawValue("null"), IMMUTABLE))
    errs.extend(validate_labels(new.get("labels"), path + ".labels"))
    errs.extend(validate_annotations(new.get("annotations"), path + ".annotations"))
    errs.extend(validate_owner_references(new.get("ownerReferences"), path + ".ownerReferences"))
    errs.extend(validate_finalizers(new.get("finalizers"), path + ".finalizers"))
    return errs


def validate_label_selector(sel: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    """metav1 ``ValidateLabelSelector``."""
    errs: list[FieldError] = []
    if sel is None:
        return errs
    errs.extend(validate_labels(sel.get("matchLabels"), path + ".matchLabels"))
    for i, expr in enumerate(sel.get("matchExpressions") or ()):
        p = f"{path}.matchExpressions[{i}]"
        op = expr.get("operator") or ""
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(p + ".values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(p + ".values",
                                      "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(p + ".operator", op, "not a valid selector operator"))
        key = expr.get("key") or ""
        errs.extend(invalid(p + ".key", key, m) for m in is_qualified_name(key))
        for j, v in enumerate(values):
            errs.extend(invalid(f"{p}.values[{j}]", v, m) for m in is_valid_label_value(str(v)))
    return errs


def dns_subdomain(name: str) -> tuple[str, ...]:
    return is_dns1123_subdomain(name)


def dns_label(name: str) -> tuple[str, ...]:
    return is_dns1123_label(name)
