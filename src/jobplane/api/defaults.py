"""Defaulting (``pkg/apis/core/v1/defaults.go``, ``pkg/apis/batch/v1/defaults.go``), applied
in place to the decoded body before the strategy and validation, as the apiserver does.

Only fields that are absent (None / "" / missing) are filled; nothing is deep-copied.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

MAX_INT32 = 2147483647
DEFAULT_SCHEDULER = "default-scheduler"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
_DEFAULT_MODE = 420  # 0644
_MODE_SOURCES = ("secret", "configMap", "downwardAPI", "projected")
_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"


def image_tag(image: str) -> str:
    """The tag docker's reference parser would report: ``latest`` when neither tag nor digest."""
    if not image or image != image.strip():
        return ""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


def default_container(c: Obj) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = "Always" if image_tag(c.get("image") or "") == "latest" else "IfNotPresent"
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = TERMINATION_MESSAGE_PATH
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    for port in c.get("ports") or ():
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"
    for env in c.get("env") or ():
        field_ref = ((env or {}).get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict) and not field_ref.get("apiVersion"):
            field_ref["apiVersion"] = "v1"
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(probe_key)
        if isinstance(probe, dict):
            _default_probe(probe)


def _default_probe(p: Obj) -> None:
    if not p.get("periodSeconds"):
        p["periodSeconds"] = 10
    if not p.get("successThreshold"):
        p["successThreshold"] = 1
    if not p.get("failureThreshold"):
        p["failureThreshold"] = 3
    if not p.get("timeoutSeconds"):
        p["timeoutSeconds"] = 1
    grpc = p.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""  # +default="" (kubectl describe dereferences it)
    http = p.get("httpGet")
    if isinstance(http, dict):
        if not http.get("path"):
            http["path"] = "/"
        if not http.get("scheme"):
            http["scheme"] = "HTTP"


def default_volume(v: Obj) -> None:
    if len(v) == 1 and "name" in v:
        v["emptyDir"] = {}
        return
    for key in _MODE_SOURCES:
        src = v.get(key)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = _DEFAULT_MODE
    host = v.get("hostPath")
    if isinstance(host, dict) and host.get("type") is None:
        host["type"] = ""


def default_pod_spec(spec: Obj) -> None:
    """``SetDefaults_PodSpec`` plus container and volume defaults (pods and templates)."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = DEFAULT_SCHEDULER
    # Conversion keeps the deprecated serviceAccount in step with serviceAccountName.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    elif spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or ():
            if isinstance(c, dict):
                default_container(c)
    for v in spec.get("volumes") or ():
        if isinstance(v, dict):
            default_volume(v)


def default_pod_template(template: Obj | None) -> None:
    if not isinstance(template, dict):
        return
    spec = template.get("spec")
    if spec is None:
        spec = template["spec"] = {}
    if isinstance(spec, dict):
        default_pod_spec(spec)


def _requests_from_limits(c: Obj) -> None:
    resources = c.get("resources")
    if not isinstance(resources, dict):
        return
    limits = resources.get("limits")
    if not limits:
        return
    requests = resources.get("requests")
    if requests is None:
        requests = resources["requests"] = {}
    for k, v in limits.items():
        requests.setdefault(k, v)


def _tolerates(tolerations: list[Any], key: str) -> bool:
    for t in tolerations:
        if not isinstance(t, dict):
            continue
        effect = t.get("effect") or ""
        if effect not in ("", "NoExecute"):
            continue
        if t.get("operator") == "Exists" and not t.get("key"):
            return True
        if t.get("key") == key:
            return True
    return False


def default_pod(pod: Obj) -> None:
    """``SetDefaults_Pod`` (requests from limits, enableServiceLinks) plus what the default
    admission plugins add to every pod: service account, priority, toleration seconds."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        spec = pod["spec"] = {}
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or ():
            if isinstance(c, dict):
                _requests_from_limits(c)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    default_pod_spec(spec)
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = "default"
        spec["serviceAccount"] = "default"
    if spec.get("priority") is None and not spec.get("priorityClassName"):
        spec["priority"] = 0
    if not spec.get("preemptionPolicy"):
        spec["preemptionPolicy"] = "PreemptLowerPriority"
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    added = False
    for key in (_NOT_READY, _UNREACHABLE):
        if not _tolerates(tolerations, key):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 300})
            added = True
    if added or "tolerations" in spec:
        spec["tolerations"] = tolerations


def default_job_spec_types(spec: Obj) -> None:
    """Type-level defaults that apply wherever a JobSpec appears (also CronJob templates)."""
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        for rule in pfp.get("rules") or ():
            for pattern in (rule or {}).get("onPodConditions") or ():
                if isinstance(pattern, dict) and not pattern.get("status"):
                    pattern["status"] = "True"
    default_pod_template(spec.get("template"))


def default_job(job: Obj) -> None:
    """``SetDefaults_Job``. Job labels default to the template's label map *itself*, as Go
    shares the map; admission copies it once the selector labels have been generated."""
    spec = job.get("spec")
    if not isinstance(spec, dict):
        spec = job["spec"] = {}
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    template = spec.get("template")
    tmpl_labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    meta = job.setdefault("metadata", {})
    if tmpl_labels is not None and not meta.get("labels"):
        meta["labels"] = tmpl_labels
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    default_job_spec_types(spec)
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False


def default_cronjob(cj: Obj) -> None:
    spec = cj.get("spec")
    if not isinstance(spec, dict):
        spec = cj["spec"] = {}
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    jt = spec.get("jobTemplate")
    if jt is None:
        jt = spec["jobTemplate"] = {}
    if isinstance(jt, dict):
        jspec = jt.get("spec")
        if jspec is None:
            jspec = jt["spec"] = {}
        if isinstance(jspec, dict):
            default_job_spec_types(jspec)


def default_namespace(ns: Obj) -> None:
    meta = ns.setdefault("metadata", {})
    name = meta.get("name")
    if name:
        labels = meta.get("labels")
        if labels is None:
            labels = meta["labels"] = {}
        labels["kubernetes.io/metadata.name"] = name
    status = ns.get("status")
    if not isinstance(status, dict):
        status = ns["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Active"


def default_node(node: Obj) -> None:
    status = node.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None and status.get("capacity") is not None:
        status["allocatable"] = dict(status["capacity"])
