"""Job validation (``pkg/apis/batch/validation/validation.go``) with the options the Job
registry strategy passes (``pkg/registry/batch/job/strategy.go``), JobManagedBy GA."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobplane.api import intervals
from jobplane.api.errors import (
    INVALID,
    FieldError,
    RawValue,
    StatusError,
    duplicate,
    invalid,
    not_supported,
    required,
    too_long,
    too_many,
)
from jobplane.api.selectors import from_label_selector_dict
from jobplane.api.validation import gofmt
from jobplane.api.validation.metadata import (
    IMMUTABLE,
    immutable,
    nonnegative,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from jobplane.api.validation.names import (
    domain_prefixed_path_errors,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
)
from jobplane.api.validation.pod import validate_pod_template

Obj = dict[str, Any]

MAX_PARALLELISM_INDEXED = 100_000
MAX_FAILED_INDEXES = 100_000
COMPLETIONS_SOFT_LIMIT = 100_000
PARALLELISM_LIMIT_HIGH_COMPLETIONS = 10_000
MAX_FAILED_INDEXES_HIGH_COMPLETIONS = 10_000
MAX_POD_FAILURE_POLICY_RULES = 20
MAX_EXIT_CODE_VALUES = 255
MAX_POD_CONDITION_PATTERNS = 20
MAX_MANAGED_BY_LENGTH = 63
MAX_SUCCEEDED_INDEXES_LENGTH = 64 * 1024
MAX_SUCCESS_POLICY_RULES = 20

PFP_ACTIONS = ["Count", "FailIndex", "FailJob", "Ignore"]
PFP_OPERATORS = ["In", "NotIn"]
PFP_CONDITION_STATUSES = ["False", "True", "Unknown"]
POD_REPLACEMENT_POLICIES = ["Failed", "TerminatingOrFailed"]

LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"


def _go_list(items: list[str]) -> str:
    """Go ``%q`` of a []string: ``["Count" "FailIndex"]``."""
    return "[" + " ".join(f'"{s}"' for s in items) + "]"


def _omit(path: str, detail: str) -> FieldError:
    """``field.Invalid(path, field.OmitValueType{}, detail)``."""
    return FieldError(INVALID, path, detail=detail)


def _tmpl_labels(spec: Mapping[str, Any]) -> dict[str, Any]:
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def _success_policy_value(policy: Mapping[str, Any]) -> RawValue:
    rules = policy.get("rules")
    if rules is None:
        inner = "[]batch.SuccessPolicyRule(nil)"
    else:
        parts = []
        for r in rules:
            idx = r.get("succeededIndexes")
            cnt = r.get("succeededCount")
            parts.append("batch.SuccessPolicyRule{SucceededIndexes:"
                         + ("(*string)(nil)" if idx is None else gofmt._q(idx))
                         + ", SucceededCount:" + ("(*int32)(nil)" if cnt is None else str(cnt)) + "}")
        inner = "[]batch.SuccessPolicyRule{" + ", ".join(parts) + "}"
    return RawValue(f"batch.SuccessPolicy{{Rules:{inner}}}")


# ---------------------------------------------------------------- podFailurePolicy


def _validate_on_exit_codes(req: Mapping[str, Any], path: str, containers: set[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    op = req.get("operator") or ""
    if not op:
        errs.append(required(path + ".operator", f"valid values: {_go_list(PFP_OPERATORS)}"))
    elif op not in PFP_OPERATORS:
        errs.append(not_supported(path + ".operator", op, PFP_OPERATORS))
    cname = req.get("containerName")
    if cname is not None and cname not in containers:
        errs.append(invalid(path + ".containerName", cname,
                            "must be one of the container or initContainer names in the pod template"))
    values = req.get("values") or []
    vpath = path + ".values"
    if not values:
        errs.append(invalid(vpath, RawValue("[]int32{}" if req.get("values") is not None else "[]int32(nil)"),
                            "at least one value is required"))
    elif len(values) > MAX_EXIT_CODE_VALUES:
        errs.append(too_many(vpath, len(values), MAX_EXIT_CODE_VALUES))
    ordered = True
    seen: set[int] = set()
    for j, v in enumerate(values):
        if op == "In" and v == 0:
            errs.append(invalid(f"{vpath}[{j}]", v, "must not be 0 for the In operator"))
        if v in seen:
            errs.append(duplicate(f"{vpath}[{j}]", v))
        else:
            seen.add(v)
        if j > 0 and values[j - 1] > v:
            ordered = False
    if not ordered:
        errs.append(invalid(vpath, gofmt.int32_slice(values), "must be ordered"))
    return errs


def _validate_on_pod_conditions(patterns: list[Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if len(patterns) > MAX_POD_CONDITION_PATTERNS:
        errs.append(too_many(path, len(patterns), MAX_POD_CONDITION_PATTERNS))
    for j, pattern in enumerate(patterns):
        p = f"{path}[{j}]"
        ctype = pattern.get("type") or ""
        errs.extend(invalid(p + ".type", ctype, m) for m in is_qualified_name(ctype))
        status = pattern.get("status") or ""
        if not status:
            errs.append(required(p + ".status", f"valid values: {_go_list(PFP_CONDITION_STATUSES)}"))
        elif status not in PFP_CONDITION_STATUSES:
            errs.append(not_supported(p + ".status", status, PFP_CONDITION_STATUSES))
    return errs


def _validate_pod_failure_policy(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    rules = spec["podFailurePolicy"].get("rules") or []
    rpath = path + ".rules"
    if len(rules) > MAX_POD_FAILURE_POLICY_RULES:
        errs.append(too_many(rpath, len(rules), MAX_POD_FAILURE_POLICY_RULES))
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    containers = {c.get("name") for key in ("containers", "initContainers") for c in pod_spec.get(key) or ()}
    for i, rule in enumerate(rules):
        p = f"{rpath}[{i}]"
        action = rule.get("action") or ""
        if not action:
            errs.append(required(p + ".action", f"valid values: {_go_list(PFP_ACTIONS)}"))
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                errs.append(invalid(p + ".action", action, "requires the backoffLimitPerIndex to be set"))
        elif action not in PFP_ACTIONS:
            errs.append(not_supported(p + ".action", action, PFP_ACTIONS))
        on_exit = rule.get("onExitCodes")
        on_cond = rule.get("onPodConditions") or []
        if on_exit is not None:
            errs.extend(_validate_on_exit_codes(on_exit, p + ".onExitCodes", containers))
        if on_cond:
            errs.extend(_validate_on_pod_conditions(on_cond, p + ".onPodConditions"))
        if on_exit is not None and on_cond:
            errs.append(_omit(p, "specifying both OnExitCodes and OnPodConditions is not supported"))
        if on_exit is None and not on_cond:
            errs.append(_omit(p, "specifying one of OnExitCodes and OnPodConditions is required"))
    return errs


# ---------------------------------------------------------------- successPolicy


def _validate_success_policy(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    rules = spec["successPolicy"].get("rules") or []
    rpath = path + ".rules"
    if not rules:
        errs.append(required(rpath, "at least one rules must be specified when the successPolicy is specified"))
    if len(rules) > MAX_SUCCESS_POLICY_RULES:
        errs.append(too_many(rpath, len(rules), MAX_SUCCESS_POLICY_RULES))
    completions = spec.get("completions")
    for i, rule in enumerate(rules):
        p = f"{rpath}[{i}]"
        indexes, count = rule.get("succeededIndexes"), rule.get("succeededCount")
        if indexes is None and count is None:
            errs.append(required(p, "at least one of succeededCount or succeededIndexes must be specified"))
        total = 0
        if indexes is not None:
            ipath = p + ".succeededIndexes"
            if len(indexes) > MAX_SUCCEEDED_INDEXES_LENGTH:
                errs.append(FieldError("FieldValueTooLong", ipath,
                                       detail=f"must have at most {MAX_SUCCEEDED_INDEXES_LENGTH} bytes"))
            if completions is not None:
                try:
                    total = intervals.validate_format(indexes, completions)
                except intervals.IntervalError as e:
                    errs.append(invalid(ipath, indexes, f"error parsing succeededIndexes: {e}"))
        if count is not None:
            cpath = p + ".succeededCount"
            errs.extend(nonnegative(count, cpath))
            if completions is not None and count > completions:
                errs.append(invalid(cpath, count, f"must be less than or equal to {completions} "
                                                  "(the number of specified completions)"))
            if indexes is not None and count > total:
                errs.append(invalid(cpath, count, f"must be less than or equal to {total} "
                                                  "(the number of indexes in the specified succeededIndexes field)"))
    return errs


# ---------------------------------------------------------------- JobSpec


def validate_job_spec_body(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    """``validateJobSpec``: everything but the selector (shared with CronJob templates)."""
    errs: list[FieldError] = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                "ttlSecondsAfterFinished", "backoffLimitPerIndex"):
        if spec.get(key) is not None:
            errs.extend(nonnegative(spec[key], f"{path}.{key}"))
    parallelism, completions = spec.get("parallelism"), spec.get("completions")
    per_index, max_failed = spec.get("backoffLimitPerIndex"), spec.get("maxFailedIndexes")
    if max_failed is not None:
        errs.extend(nonnegative(max_failed, path + ".maxFailedIndexes"))
        if per_index is None:
            errs.append(required(path + ".backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    managed_by = spec.get("managedBy")
    if managed_by is not None:
        for value, msg in domain_prefixed_path_errors(managed_by):
            errs.append(required(path + ".managedBy") if not msg else invalid(path + ".managedBy", value, msg))
        if len(managed_by) > MAX_MANAGED_BY_LENGTH:
            errs.append(too_long(path + ".managedBy", MAX_MANAGED_BY_LENGTH))
    mode = spec.get("completionMode")
    indexed = mode == "Indexed"
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            errs.append(not_supported(path + ".completionMode", mode, ["NonIndexed", "Indexed"]))
        if indexed:
            if completions is None:
                errs.append(required(path + ".completions", "when completion mode is Indexed"))
            if parallelism is not None and parallelism > MAX_PARALLELISM_INDEXED:
                errs.append(invalid(path + ".parallelism", parallelism,
                                    f"must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed"))
            if completions is not None and max_failed is not None and max_failed > completions:
                errs.append(invalid(path + ".maxFailedIndexes", max_failed, "must be less than or equal to completions"))
            if max_failed is not None and max_failed > MAX_FAILED_INDEXES:
                errs.append(invalid(path + ".maxFailedIndexes", max_failed,
                                    f"must be less than or equal to {MAX_FAILED_INDEXES}"))
            if completions is not None and completions > COMPLETIONS_SOFT_LIMIT and per_index is not None:
                suffix = (f"when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index")
                if max_failed is None:
                    errs.append(required(path + ".maxFailedIndexes",
                                         f"must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"))
                if parallelism is not None and parallelism > PARALLELISM_LIMIT_HIGH_COMPLETIONS:
                    errs.append(invalid(path + ".parallelism", parallelism,
                                        f"must be less than or equal to {PARALLELISM_LIMIT_HIGH_COMPLETIONS} {suffix}"))
                if max_failed is not None and max_failed > MAX_FAILED_INDEXES_HIGH_COMPLETIONS:
                    errs.append(invalid(path + ".maxFailedIndexes", max_failed,
                                        f"must be less than or equal to {MAX_FAILED_INDEXES_HIGH_COMPLETIONS} {suffix}"))
    if mode is None or mode == "NonIndexed":
        if per_index is not None:
            errs.append(invalid(path + ".backoffLimitPerIndex", per_index, "requires indexed completion mode"))
        if max_failed is not None:
            errs.append(invalid(path + ".maxFailedIndexes", max_failed, "requires indexed completion mode"))
    pfp = spec.get("podFailurePolicy")
    if pfp is not None:
        errs.extend(_validate_pod_failure_policy(spec, path + ".podFailurePolicy"))
    sp = spec.get("successPolicy")
    if sp is not None:
        if not indexed:
            errs.append(invalid(path + ".successPolicy", _success_policy_value(sp), "requires indexed completion mode"))
        else:
            errs.extend(_validate_success_policy(spec, path + ".successPolicy"))
    prp = spec.get("podReplacementPolicy")
    if prp is not None:
        if pfp is not None:
            if prp != "Failed":
                errs.append(not_supported(path + ".podReplacementPolicy", prp, ["Failed"]))
        elif prp not in POD_REPLACEMENT_POLICIES:
            errs.append(not_supported(path + ".podReplacementPolicy", prp, POD_REPLACEMENT_POLICIES))
    template = spec.get("template")
    errs.extend(validate_pod_template(template, path + ".template"))
    rp = ((template or {}).get("spec") or {}).get("restartPolicy") or ""
    rp_path = path + ".template.spec.restartPolicy"
    if rp in ("Always", ""):
        errs.append(required(rp_path, 'valid values: "OnFailure", "Never"'))
    elif rp not in ("OnFailure", "Never"):
        errs.append(not_supported(rp_path, rp, ["OnFailure", "Never"]))
    elif pfp is not None and rp != "Never":
        errs.append(invalid(rp_path, rp, 'only "Never" is supported when podFailurePolicy is specified'))
    return errs


def _selector_matches(sel: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool | None:
    """None when the selector cannot be converted (upstream then skips the check)."""
    if sel is None:
        return None
    for expr in sel.get("matchExpressions") or ():
        op, values = expr.get("operator"), expr.get("values") or []
        if (op in ("In", "NotIn") and not values) or (op in ("Exists", "DoesNotExist") and values):
            return None
    try:
        return from_label_selector_dict(sel).matches(labels)
    except StatusError:
        return None


def validate_job_spec(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    """``ValidateJobSpec``: body rules, selector required and valid, selector matches template."""
    errs = validate_job_spec_body(spec, path)
    sel = spec.get("selector")
    if sel is None:
        errs.append(required(path + ".selector"))
    else:
        errs.extend(validate_label_selector(sel, path + ".selector"))
    raw_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if _selector_matches(sel, raw_labels or {}) is False:
        errs.append(invalid(path + ".template.metadata.labels", gofmt.string_map(raw_labels),
                            "`selector` does not match template `labels`"))
    return errs


def _has_label(labels: Mapping[str, Any], key: str, expected: str) -> list[FieldError]:
    path = f"spec.template.metadata.labels[{key}]"
    if key not in labels:
        return [required(path, expected)]
    if labels[key] != expected:
        return [invalid(path, gofmt.string_map(labels), f"must be '{expected}'")]
    return []


def validate_generated_selector(job: Mapping[str, Any], require_prefixed: bool) -> list[FieldError]:
    spec = job.get("spec") or {}
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    meta = job.get("metadata") or {}
    uid, name = meta.get("uid") or "", meta.get("name") or ""
    errs: list[FieldError] = []
    if not uid:
        errs.append(required("metadata.uid"))
    labels = _tmpl_labels(spec)
    errs.extend(_has_label(labels, LEGACY_CONTROLLER_UID, uid))
    errs.extend(_has_label(labels, LEGACY_JOB_NAME, name))
    expected = {}
    if require_prefixed:
        errs.extend(_has_label(labels, CONTROLLER_UID, uid))
        errs.extend(_has_label(labels, JOB_NAME, name))
        expected = {CONTROLLER_UID: uid, JOB_NAME: name}
    expected[LEGACY_CONTROLLER_UID] = uid
    expected[LEGACY_JOB_NAME] = name
    if _selector_matches(spec["selector"], expected) is False:
        errs.append(invalid("spec.selector", gofmt.label_selector(spec["selector"]), "`selector` not auto-generated"))
    return errs


def validate_job(job: Mapping[str, Any], require_prefixed: bool = True) -> list[FieldError]:
    """``ValidateJob`` (create, and the first half of update)."""
    meta = job.get("metadata") or {}
    spec = job.get("spec") or {}
    errs = validate_object_meta(meta, True, is_dns1123_subdomain)
    errs.extend(validate_generated_selector(job, require_prefixed))
    errs.extend(validate_job_spec(spec, "spec"))
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions > 0:
        hostname = f"{meta.get('name') or ''}-{completions - 1}"
        if is_dns1123_label(hostname):
            errs.append(invalid("metadata.name", meta.get("name") or "",
                                f"will not able to create pod with invalid DNS label: {hostname}"))
    return errs


# ---------------------------------------------------------------- updates


@dataclass(frozen=True)
class JobUpdateOptions:
    allow_mutable_scheduling_directives: bool
    require_prefixed_labels: bool


def update_options(old: Mapping[str, Any]) -> JobUpdateOptions:
    old_spec = old.get("spec") or {}
    suspended = old_spec.get("suspend") is True
    not_started = not (old.get("status") or {}).get("startTime")
    labels = _tmpl_labels(old_spec)
    return JobUpdateOptions(suspended and not_started, JOB_NAME in labels and CONTROLLER_UID in labels)


def _relaxed_old_template(new_t: Mapping[str, Any], old_t: Mapping[str, Any]) -> dict[str, Any]:
    """The old template with the scheduling directives taken from the new one."""
    new_meta, old_meta = new_t.get("metadata") or {}, dict(old_t.get("metadata") or {})
    new_spec, old_spec = new_t.get("spec") or {}, dict(old_t.get("spec") or {})
    for key in ("labels", "annotations"):
        if key in new_meta:
            old_meta[key] = new_meta[key]
        else:
            old_meta.pop(key, None)
    for key in ("nodeSelector", "tolerations", "schedulingGates"):
        if key in new_spec:
            old_spec[key] = new_spec[key]
        else:
            old_spec.pop(key, None)
    new_aff, old_aff = new_spec.get("affinity"), old_spec.get("affinity")
    if new_aff is None and old_aff is not None:
        rest = {k: v for k, v in old_aff.items() if k != "nodeAffinity" and v is not None}
        if rest:
            old_spec["affinity"] = rest
        else:
            old_spec.pop("affinity", None)
    elif new_aff is not None and old_aff is None:
        old_spec["affinity"] = {"nodeAffinity": new_aff["nodeAffinity"]} if new_aff.get("nodeAffinity") else {}
    elif new_aff is not None and old_aff is not None:
        merged = {k: v for k, v in old_aff.items() if k != "nodeAffinity"}
        if new_aff.get("nodeAffinity") is not None:
            merged["nodeAffinity"] = new_aff["nodeAffinity"]
        old_spec["affinity"] = merged
    out = dict(old_t)
    out["metadata"] = old_meta
    out["spec"] = old_spec
    return out


def _normalize_template(t: Mapping[str, Any] | None) -> Any:
    """Drop empty metadata/affinity maps so ``{}`` and missing compare equal, as Go's
    semantic equality does for nil vs empty."""
    if not isinstance(t, Mapping):
        return t
    out = dict(t)
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if v not in (None, {}, [])}
    out["metadata"] = meta
    spec = {k: v for k, v in (out.get("spec") or {}).items() if v not in (None, [])}
    if spec.get("affinity") == {}:
        spec.pop("affinity")
    out["spec"] = spec
    return out


def validate_job_spec_update(spec: Mapping[str, Any], old: Mapping[str, Any], opts: JobUpdateOptions) -> list[FieldError]:
    errs = validate_job_spec(spec, "spec")
    completions, old_completions = spec.get("completions"), old.get("completions")
    if spec.get("completionMode") != "Indexed":
        errs.extend(immutable(completions, old_completions, "spec.completions"))
    elif completions != old_completions and completions is not None and completions != spec.get("parallelism"):
        errs.append(invalid("spec.completions", completions, "can only be modified in tandem with spec.parallelism"))
    errs.extend(immutable(spec.get("selector"), old.get("selector"), "spec.selector", gofmt.label_selector))
    new_t, old_t = spec.get("template") or {}, old.get("template") or {}
    if opts.allow_mutable_scheduling_directives:
        old_t = _relaxed_old_template(new_t, old_t)
    if _normalize_template(new_t) != _normalize_template(old_t):
        errs.append(invalid("spec.template", gofmt.struct("core.PodTemplateSpec", new_t), IMMUTABLE))
    errs.extend(immutable(spec.get("completionMode"), old.get("completionMode"), "spec.completionMode"))
    errs.extend(immutable(spec.get("podFailurePolicy"), old.get("podFailurePolicy"), "spec.podFailurePolicy",
                          lambda v: gofmt.struct("batch.PodFailurePolicy", v) if v is not None else RawValue("null")))
    errs.extend(immutable(spec.get("backoffLimitPerIndex"), old.get("backoffLimitPerIndex"), "spec.backoffLimitPerIndex",
                          lambda v: v if v is not None else RawValue("null")))
    errs.extend(immutable(spec.get("managedBy"), old.get("managedBy"), "spec.managedBy",
                          lambda v: v if v is not None else RawValue("null")))
    errs.extend(immutable(spec.get("successPolicy"), old.get("successPolicy"), "spec.successPolicy",
                          lambda v: _success_policy_value(v) if v is not None else RawValue("null")))
    return errs


def validate_job_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    """``jobStrategy.ValidateUpdate``: ValidateJob(new) + ValidateJobUpdate(new, old)."""
    opts = update_options(old)
    errs = validate_job(new, opts.require_prefixed_labels)
    errs.extend(validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {}))
    errs.extend(validate_job_spec_update(new.get("spec") or {}, old.get("spec") or {}, opts))
    return errs


# ---------------------------------------------------------------- status


def _cond_true(status: Mapping[str, Any], ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in status.get("conditions") or ())


def _finished(status: Mapping[str, Any]) -> bool:
    return _cond_true(status, "Complete") or _cond_true(status, "Failed")


def _parse_time(value: Any) -> Any:
    from jobplane.api.meta import parse_time
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        return None


def _uncounted_empty(u: Mapping[str, Any] | None) -> bool:
    return not u or (not u.get("succeeded") and not u.get("failed"))


def validate_job_status(job: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    """``ValidateJobStatusUpdate`` with the JobManagedBy options: most rules only fire when
    the fields they look at change, so a controller can repair an inconsistent status."""
    spec = job.get("spec") or {}
    st, ost = job.get("status") or {}, old.get("status") or {}
    errs: list[FieldError] = []
    indexed = spec.get("completionMode") == "Indexed"
    completions = spec.get("completions")

    finished, ofinished = _finished(st), _finished(ost)
    complete, ocomplete = _cond_true(st, "Complete"), _cond_true(ost, "Complete")
    failed, ofailed = _cond_true(st, "Failed"), _cond_true(ost, "Failed")
    ftarget, oftarget = _cond_true(st, "FailureTarget"), _cond_true(ost, "FailureTarget")
    scm, oscm = _cond_true(st, "SuccessCriteriaMet"), _cond_true(ost, "SuccessCriteriaMet")
    finished_changed = finished != ofinished
    complete_changed = complete != ocomplete
    ci_changed = (st.get("completedIndexes") or "") != (ost.get("completedIndexes") or "")
    fi_changed = st.get("failedIndexes") != ost.get("failedIndexes")
    active_changed = (st.get("active") or 0) != (ost.get("active") or 0)
    start_changed = st.get("startTime") != ost.get("startTime")
    ctime_changed = st.get("completionTime") != ost.get("completionTime")
    uncounted_changed = (st.get("uncountedTerminatedPods") or {}) != (ost.get("uncountedTerminatedPods") or {})
    ready_changed = st.get("ready") != ost.get("ready")
    terminating_changed = st.get("terminating") != ost.get("terminating")

    active, succeeded, failed_n = st.get("active") or 0, st.get("succeeded") or 0, st.get("failed") or 0
    for key, value in (("active", active), ("succeeded", succeeded), ("failed", failed_n)):
        errs.extend(nonnegative(value, f"status.{key}"))
    for key in ("ready", "terminating"):
        if st.get(key) is not None:
            errs.extend(nonnegative(st[key], f"status.{key}"))
    uncounted = st.get("uncountedTerminatedPods")
    if uncounted is not None:
        seen: set[str] = set()
        for part in ("succeeded", "failed"):
            for i, uid in enumerate(uncounted.get(part) or ()):
                p = f"status.uncountedTerminatedPods.{part}[{i}]"
                if not uid:
                    errs.append(invalid(p, uid, "must not be empty"))
                elif uid in seen:
                    errs.append(duplicate(p, uid))
                else:
                    seen.add(uid)
    if (complete_changed or failed != ofailed) and complete and failed:
        errs.append(_omit("status.conditions", "cannot set Complete=True and Failed=true conditions"))
    if (complete_changed or ftarget != oftarget) and complete and ftarget:
        errs.append(_omit("status.conditions", "cannot set Complete=True and FailureTarget=true conditions"))
    ctime, start = st.get("completionTime"), st.get("startTime")
    if (complete_changed or ctime_changed) and ctime and not complete:
        errs.append(invalid("status.completionTime", ctime, "cannot set completionTime when there is no Complete=True condition"))
    if (complete_changed or ctime_changed) and not ctime and complete:
        errs.append(required("status.completionTime", "completionTime is required for Complete jobs"))
    if (start_changed or ctime_changed) and start and ctime:
        s, c = _parse_time(start), _parse_time(ctime)
        if s is not None and c is not None and c < s:
            errs.append(invalid("status.completionTime", ctime, "completionTime cannot be set before startTime"))
    if (failed != ofailed or ftarget != oftarget) and failed and not ftarget:
        errs.append(_omit("status.conditions", "cannot set Failed=True condition without the FailureTarget=true condition"))
    if (complete_changed or scm != oscm) and complete and not scm:
        errs.append(_omit("status.conditions", "cannot set Complete=True condition without the SuccessCriteriaMet=true condition"))
    if (finished_changed or active_changed) and active > 0 and finished:
        errs.append(invalid("status.active", active, "active>0 is invalid for finished job"))
    if (finished_changed or start_changed) and not start and finished:
        errs.append(required("status.startTime", "startTime is required for finished job"))
    if (finished_changed or uncounted_changed) and finished and not _uncounted_empty(uncounted):
        errs.append(invalid("status.uncountedTerminatedPods", gofmt.struct("batch.UncountedTerminatedPods", uncounted),
                            "uncountedTerminatedPods needs to be empty for finished job"))
    ci = st.get("completedIndexes") or ""
    fi = st.get("failedIndexes")
    if ci_changed and completions is not None:
        try:
            intervals.validate_format(ci, completions)
        except intervals.IntervalError as e:
            errs.append(invalid("status.completedIndexes", ci, f"error parsing completedIndexes: {e}"))
    if fi_changed and completions is not None and spec.get("backoffLimitPerIndex") is not None and fi is not None:
        try:
            intervals.validate_format(fi, completions)
        except intervals.IntervalError as e:
            errs.append(invalid("status.failedIndexes", fi, f"error parsing failedIndexes: {e}"))
    if ci_changed and ci and not indexed:
        errs.append(invalid("status.completedIndexes", ci, "cannot set non-empty completedIndexes when non-indexed completion mode"))
    if fi_changed and spec.get("backoffLimitPerIndex") is None and fi is not None:
        errs.append(invalid("status.failedIndexes", fi, "cannot set non-null failedIndexes when backoffLimitPerIndex is null"))
    if (fi_changed or ci_changed) and completions is not None and fi is not None:
        msg = intervals.overlap_error(ci, fi, completions)
        if msg:
            errs.append(invalid("status.failedIndexes", fi, msg))
    terminating = st.get("terminating")
    if (finished_changed or terminating_changed) and terminating and finished:
        errs.append(invalid("status.terminating", terminating, "terminating>0 is invalid for finished job"))
    ready = st.get("ready")
    if (ready_changed or active_changed) and ready is not None and ready > active:
        errs.append(invalid("status.ready", ready, "cannot set more ready pods than active"))
    if scm and failed:
        errs.append(_omit("status.conditions", "cannot set SuccessCriteriaMet=True and Failed=true conditions"))
    if scm and ftarget:
        errs.append(_omit("status.conditions", "cannot set SuccessCriteriaMet=True and FailureTarget=true conditions"))
    if spec.get("successPolicy") is not None and not scm and complete:
        errs.append(_omit("status.conditions", "cannot set Complete=True for Job with SuccessPolicy unless SuccessCriteriaMet=True"))
    # Transitions.
    for ctype, was, now in (("Failed", ofailed, failed), ("Complete", ocomplete, complete),
                            ("FailureTarget", oftarget, ftarget)):
        if was and not now:
            errs.append(_omit("status.conditions", f"cannot disable the terminal {ctype}=True condition"))
    if failed_n < (ost.get("failed") or 0):
        errs.append(invalid("status.failed", failed_n, "cannot decrease the failed counter"))
    reject_succeeded_decrease = not indexed or completions != spec.get("parallelism")
    if reject_succeeded_decrease and succeeded < (ost.get("succeeded") or 0):
        errs.append(invalid("status.succeeded", succeeded, "cannot decrease the succeeded counter"))
    octime = ost.get("completionTime")
    if ctime and octime and ctime != octime:
        errs.append(invalid("status.completionTime", ctime, "completionTime cannot be mutated"))
    if start_changed and ost.get("startTime") and spec.get("suspend") is not True:
        errs.append(required("status.startTime", "startTime cannot be removed for unsuspended job"))
    if oscm and not scm:
        errs.append(_omit("status.conditions", "cannot disable the SuccessCriteriaMet=True condition"))
    if ocomplete and not oscm and scm:
        errs.append(_omit("status.conditions", "cannot set SuccessCriteriaMet=True for Job already has Complete=true conditions"))
    return errs


def validate_job_status_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    errs.extend(validate_job_status(new, old))
    return errs


# ---------------------------------------------------------------- warnings


def job_spec_warnings(spec: Mapping[str, Any], path: str) -> list[str]:
    """``WarningsForJobSpec``: the large Indexed job warning."""
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    if (spec.get("completionMode") == "Indexed" and isinstance(completions, int) and isinstance(parallelism, int)
            and completions > COMPLETIONS_SOFT_LIMIT and parallelism > PARALLELISM_LIMIT_HIGH_COMPLETIONS):
        return [f"{path}: In Indexed Jobs with a number of completions higher than 10^5 and a parallelism "
                "higher than 10^4, Kubernetes might not be able to track completedIndexes when a big number "
                "of indexes fail"]
    return []


def name_warnings(name: str) -> list[str]:
    msgs = is_dns1123_label(name)
    if msgs:
        return ["metadata.name: this is used in Pod names and hostnames, which can result in surprising "
                "behavior; a DNS label is recommended: [" + " ".join(msgs) + "]"]
    return []
