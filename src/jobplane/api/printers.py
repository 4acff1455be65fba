"""Server-side Table printing with upstream's columns (pkg/printers/internalversion).

Like kube-apiserver, every row always carries the wide (priority 1) cells; kubectl
hides them unless ``-o wide``. Pure functions over plain dicts, written to stay
cheap: ``kubectl get`` on 10,000 pods runs this for every object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from jobplane.api import pods, printers_objects
from jobplane.api.jsonbytes import dumps_exact
from jobplane.api.registry import ResourceInfo
from jobplane.api.selectors import label_selector_string

Obj = dict[str, Any]
Row = list[Any]

# --------------------------------------------------------------------------- durations


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration``: 0s, 45s, 3m20s, 2h, 3d4h, ..."""
    secs = int(seconds)  # Go truncates toward zero
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


@lru_cache(maxsize=65536)
def parse_ts(value: str) -> float | None:
    """RFC 3339 -> epoch seconds, cached: a list shares few distinct timestamps."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def since(value: str | None, now: float) -> str:
    """``translateTimestampSince``: ``<unknown>`` for a missing time."""
    ts = parse_ts(value) if value else None
    if ts is None:
        return "<unknown>"
    return human_duration(now - ts)


# --------------------------------------------------------------------------- column definitions

_NAME_DOC = ("Name must be unique within a namespace. Is required when creating resources, although some "
             "resources may allow a client to request the generation of an appropriate name automatically. "
             "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
             "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
_AGE_DOC = ("CreationTimestamp is a timestamp representing the server time when this object was created. It "
            "is not guaranteed to be set in happens-before order across separate operations. Clients may not "
            "set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. "
            "Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/"
            "sig-architecture/api-conventions.md#metadata")
_CONTAINERS_DOC = "Names of each container in the template."
_IMAGES_DOC = "Images referenced by each container in the template."
_SELECTOR_DOC = ("A label query over pods that should match the pod count. Normally, the system sets this "
                 "field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/"
                 "labels/#label-selectors")
_ADDRESSES_DOC = ("List of addresses reachable to the node. Queried from cloud provider, if available. More "
                  "info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is "
                  "declared as mergeable, but the merge key is not sufficiently unique, which can cause data "
                  "corruption when it is merged. Callers should instead use a full-replacement patch. See "
                  "https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change "
                  "during the lifetime of a Node. However, there are some exceptions where this may not be "
                  "possible, such as Pods that inherit a Node's address in its own status or consumers of the "
                  "downward API (status.hostIP).")


def _col(name: str, description: str, *, type_: str = "string", fmt: str = "", priority: int = 0) -> Obj:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


_NAME_COL = _col("Name", _NAME_DOC, fmt="name")
_AGE_COL = _col("Age", _AGE_DOC)
# The -o wide columns Jobs and CronJobs share (their pod template's containers, images, selector).
_WORKLOAD_WIDE_COLS = [
    _col("Containers", _CONTAINERS_DOC, priority=1),
    _col("Images", _IMAGES_DOC, priority=1),
    _col("Selector", _SELECTOR_DOC, priority=1),
]

JOB_COLUMNS = [
    _NAME_COL,
    _col("Status", "Status of the job."),
    _col("Completions", "The number of pods which reached phase Succeeded. The value increases monotonically "
                        "for a given spec. However, it may decrease in reaction to scale down of elastic "
                        "indexed jobs."),
    _col("Duration", "Time required to complete the job."),
    _AGE_COL,
    *_WORKLOAD_WIDE_COLS,
]

CRONJOB_COLUMNS = [
    _NAME_COL,
    _col("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    _col("Timezone", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/"
                     "List_of_tz_database_time_zones. If not specified, this will default to the time zone "
                     "of the kube-controller-manager process."),
    _col("Suspend", "This flag tells the controller to suspend subsequent executions, it does not apply to "
                    "already started executions.  Defaults to false.", type_="boolean"),
    _col("Active", "A list of pointers to currently running jobs.", type_="integer"),
    _col("Last Schedule", "Information when was the last time the job was successfully scheduled."),
    _AGE_COL,
    *_WORKLOAD_WIDE_COLS,
]

POD_COLUMNS = [
    _NAME_COL,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col("Restarts", "The number of times the containers in this pod have been restarted and when the last "
                     "container in this pod has restarted."),
    _AGE_COL,
    _col("IP", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
               "allocated.", priority=1),
    _col("Node", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate "
                 "for scheduling by the scheduler defined in schedulerName. Once this field is set, the "
                 "kubelet for this node becomes responsible for the lifecycle of this pod. This field should "
                 "not be used to express a desire for the pod to be scheduled on a specific node. "
                 "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
         priority=1),
    _col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node, but "
                           "it cannot be scheduled right away as preemption victims receive their graceful "
                           "termination periods. This field does not guarantee that the pod will be "
                           "scheduled on this node.", priority=1),
    _col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness. A pod is "
                            "ready when all its containers are ready AND all conditions specified in the "
                            "readiness gates have status equal to \"True\" More info: https://git.k8s.io/"
                            "enhancements/keps/sig-network/580-pod-readiness-gates", priority=1),
]

NAMESPACE_COLUMNS = [_NAME_COL, _col("Status", "The status of the namespace"), _AGE_COL]

NODE_COLUMNS = [
    _NAME_COL,
    _col("Status", "The status of the node"),
    _col("Roles", "The roles of the node"),
    _AGE_COL,
    _col("Version", "Kubelet Version reported by the node."),
    _col("Internal-IP", _ADDRESSES_DOC, priority=1),
    _col("External-IP", _ADDRESSES_DOC, priority=1),
    _col("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
         priority=1),
    _col("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
         priority=1),
    _col("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API "
                              "(e.g. containerd://1.4.2).", priority=1),
]

EVENT_COLUMNS = [
    _col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    _col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    _col("Reason", "This should be a short, machine understandable string that gives the reason for the "
                   "transition into the object's current status."),
    _col("Object", "The object that this event is about."),
    _col("Subobject", "If referring to a piece of an object instead of an entire object, this string should "
                      "contain a valid JSON/Go field access statement, such as "
                      "desiredState.manifest.containers[2].", priority=1),
    _col("Source", "The component reporting this event. Should be a short machine understandable string.",
         priority=1),
    _col("Message", "A human-readable description of the status of this operation."),
    _col("First Seen", "The time at which the event was first recorded. (Time of server receipt is in "
                       "TypeMeta.)", priority=1),
    _col("Count", "The number of times this event has occurred.", priority=1),
    _col("Name", _NAME_DOC, fmt="name", priority=1),
]

LEASE_COLUMNS = [
    _NAME_COL,
    _col("Holder", "holderIdentity contains the identity of the holder of a current lease. If Coordinated "
                   "Leader Election is used, the holder identity must be equal to the elected "
                   "LeaseCandidate.metadata.name field."),
    _AGE_COL,
]

# The default TableConvertor of kube-apiserver, for kinds without a printer.
DEFAULT_COLUMNS = [_NAME_COL, _col("Created At", _AGE_DOC, type_="date")]

# --------------------------------------------------------------------------- helpers


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _conditions_true(status: Obj) -> set[str]:
    return {c.get("type") for c in status.get("conditions") or () if c.get("status") == "True"}


def _container_cells(containers: list[Obj] | None) -> tuple[str, str]:
    """``layoutContainerCells``: comma-joined names and images."""
    containers = containers or []
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def _selector(sel: Obj | None) -> str:
    """``metav1.FormatLabelSelector``."""
    try:
        return label_selector_string(sel)
    except Exception:  # noqa: BLE001 - upstream prints <error> for a bad selector
        return "<error>"


def _bool_ptr(value: Any) -> str:
    if value is None:
        return "<unset>"
    return "True" if value else "False"


# --------------------------------------------------------------------------- row printers


def job_row(obj: Obj, now: float) -> Row:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    succeeded = status.get("succeeded") or 0
    completions = spec.get("completions")
    if completions is not None:
        comp = f"{succeeded}/{completions}"
    elif (spec.get("parallelism") or 0) > 1:
        comp = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        comp = f"{succeeded}/1"
    start = parse_ts(status["startTime"]) if status.get("startTime") else None
    end = parse_ts(status["completionTime"]) if status.get("completionTime") else None
    if start is None:
        duration = ""
    elif end is None:
        duration = human_duration(now - start)
    else:
        duration = human_duration(end - start)
    conds = _conditions_true(status)
    if "Complete" in conds:
        state = "Complete"
    elif "Failed" in conds:
        state = "Failed"
    elif _meta(obj).get("deletionTimestamp"):
        state = "Terminating"
    elif "Suspended" in conds:
        state = "Suspended"
    elif "FailureTarget" in conds:
        state = "FailureTarget"
    else:
        state = "Running"
    meta = _meta(obj)
    names, images = _container_cells(((spec.get("template") or {}).get("spec") or {}).get("containers"))
    return [meta.get("name", ""), state, comp, duration, since(meta.get("creationTimestamp"), now),
            names, images, _selector(spec.get("selector"))]


def cronjob_row(obj: Obj, now: float) -> Row:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    meta = _meta(obj)
    last = since(status["lastScheduleTime"], now) if status.get("lastScheduleTime") else "<none>"
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = _container_cells(((job_spec.get("template") or {}).get("spec") or {}).get("containers"))
    return [meta.get("name", ""), spec.get("schedule", ""),
            spec["timeZone"] if spec.get("timeZone") is not None else "<none>",
            _bool_ptr(spec.get("suspend")), len(status.get("active") or ()), last,
            since(meta.get("creationTimestamp"), now), names, images, _selector(job_spec.get("selector"))]


def _restartable(container: Obj | None) -> bool:
    return container is not None and bool(container) and container.get("restartPolicy") == "Always"


def _later(a: str, b: str | None) -> str:
    """Keep the latest of two RFC 3339 times (``lastRestartDate.Before``)."""
    if not b:
        return a
    tb = parse_ts(b)
    if tb is None:
        return a
    if not a:
        return b
    ta = parse_ts(a)
    return b if ta is None or ta < tb else a


def pod_status_cells(obj: Obj, now: float) -> tuple[str, str, str]:
    """READY, STATUS and RESTARTS exactly as upstream's ``printPod`` computes them."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    meta = _meta(obj)
    restarts = 0
    restartable_restarts = 0
    containers = spec.get("containers") or []
    init_specs = spec.get("initContainers") or []
    total = len(containers)
    ready = 0
    last_restart = ""
    last_restartable_restart = ""
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_by_name = {c.get("name"): c for c in init_specs}
    total += sum(1 for c in init_specs if _restartable(c))

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or ()):
        restarts += cs.get("restartCount") or 0
        last_term = (cs.get("lastState") or {}).get("terminated")
        if last_term:
            last_restart = _later(last_restart, last_term.get("finishedAt"))
        restartable = _restartable(init_by_name.get(cs.get("name")))
        if restartable:
            restartable_restarts += cs.get("restartCount") or 0
            if last_term:
                last_restartable_restart = _later(last_restartable_restart, last_term.get("finishedAt"))
        state = cs.get("state") or {}
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and (term.get("exitCode") or 0) == 0:
            continue
        if restartable and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if term.get("signal"):
                    reason = f"Init:Signal:{term['signal']}"
                else:
                    reason = f"Init:ExitCode:{term.get('exitCode') or 0}"
            else:
                reason = "Init:" + term["reason"]
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True"
                      for c in status.get("conditions") or ())
    if not initializing or initialized:
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += cs.get("restartCount") or 0
            last_term = (cs.get("lastState") or {}).get("terminated")
            if last_term:
                last_restart = _later(last_restart, last_term.get("finishedAt"))
            state = cs.get("state") or {}
            waiting = state.get("waiting")
            term = state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                if term.get("signal"):
                    reason = f"Signal:{term['signal']}"
                else:
                    reason = f"ExitCode:{term.get('exitCode') or 0}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in status.get("conditions") or ())
            reason = "Running" if pod_ready else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in pods.TERMINAL_PHASES:
        reason = "Terminating"

    restarts_str = str(restarts)
    if restarts and last_restart:
        restarts_str = f"{restarts} ({since(last_restart, now)} ago)"
    return f"{ready}/{total}", reason, restarts_str


def pod_row(obj: Obj, now: float) -> Row:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    meta = _meta(obj)
    ready, reason, restarts = pod_status_cells(obj, now)
    ips = status.get("podIPs") or ()
    pod_ip = (ips[0].get("ip") if ips else "") or "<none>"
    gates = spec.get("readinessGates") or ()
    gates_cell = "<none>"
    if gates:
        conds: dict[str, str] = {}
        for c in status.get("conditions") or ():
            conds.setdefault(c.get("type"), c.get("status"))
        true_count = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        gates_cell = f"{true_count}/{len(gates)}"
    return [meta.get("name", ""), ready, reason, restarts, since(meta.get("creationTimestamp"), now),
            pod_ip, spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", gates_cell]


def namespace_row(obj: Obj, now: float) -> Row:
    meta = _meta(obj)
    return [meta.get("name", ""), (obj.get("status") or {}).get("phase", ""),
            since(meta.get("creationTimestamp"), now)]


def node_roles(labels: dict[str, str] | None) -> list[str]:
    """``findNodeRoles``: sorted roles from ``node-role.kubernetes.io/<role>`` and ``kubernetes.io/role``."""
    roles: set[str] = set()
    for k, v in (labels or {}).items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return sorted(roles)


def _node_address(status: Obj, kind: str) -> str:
    for a in status.get("addresses") or ():
        if a.get("type") == kind:
            return str(a.get("address", ""))
    return "<none>"


def node_status_text(obj: Obj) -> str:
    status = obj.get("status") or {}
    parts = []
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready":
            parts = ["Ready" if c.get("status") == "True" else "NotReady"]
    if not parts:
        parts = ["Unknown"]
    if (obj.get("spec") or {}).get("unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_row(obj: Obj, now: float) -> Row:
    meta = _meta(obj)
    status = obj.get("status") or {}
    info = status.get("nodeInfo") or {}
    return [meta.get("name", ""), node_status_text(obj), ",".join(node_roles(meta.get("labels"))) or "<none>",
            since(meta.get("creationTimestamp"), now), info.get("kubeletVersion", ""),
            _node_address(status, "InternalIP"), _node_address(status, "ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def event_source(event: Obj) -> str:
    """``formatEventSource``: ``component, host`` falling back to reporting controller/instance."""
    src = event.get("source") or {}
    component = src.get("component") or event.get("reportingController") or ""
    instance = src.get("host") or event.get("reportingInstance") or ""
    if not component and not instance:
        return ""
    return f"{component}, {instance}" if instance else component


def _events_v1_to_core(obj: Obj) -> Obj:
    """An events.k8s.io/v1 Event seen through core/v1 field names."""
    if "regarding" not in obj and "note" not in obj and "deprecatedSource" not in obj:
        return obj
    series = obj.get("series")
    return {
        "metadata": obj.get("metadata") or {},
        "involvedObject": obj.get("regarding") or {},
        "reason": obj.get("reason", ""),
        "message": obj.get("note", ""),
        "type": obj.get("type", ""),
        "source": obj.get("deprecatedSource") or {},
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount") or 0,
        "eventTime": obj.get("eventTime"),
        "reportingController": obj.get("reportingController", ""),
        "reportingInstance": obj.get("reportingInstance", ""),
        "series": {"count": series.get("count"), "lastObservedTime": series.get("lastObservedTime")}
        if series else None,
    }


def event_row(obj: Obj, now: float) -> Row:
    ev = _events_v1_to_core(obj)
    first = since(ev.get("firstTimestamp"), now) if ev.get("firstTimestamp") else since(ev.get("eventTime"), now)
    last = since(ev.get("lastTimestamp"), now) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 0
    series = ev.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    inv = ev.get("involvedObject") or {}
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    return [last, ev.get("type", ""), ev.get("reason", ""), target, inv.get("fieldPath", ""),
            event_source(ev), (ev.get("message") or "").strip(), first, count, _meta(ev).get("name", "")]


def lease_row(obj: Obj, now: float) -> Row:
    meta = _meta(obj)
    return [meta.get("name", ""), (obj.get("spec") or {}).get("holderIdentity") or "",
            since(meta.get("creationTimestamp"), now)]


BINDING_COLUMNS = [
    _col("Name", "Name must be unique within a namespace.", fmt="name"),
    _col("Role", "Role references the Role or ClusterRole the binding grants."),
    _col("Age", "CreationTimestamp is a timestamp representing the server time when this object was created."),
    _col("Users", "Users in the binding.", priority=1),
    _col("Groups", "Groups in the binding.", priority=1),
    _col("ServiceAccounts", "ServiceAccounts in the binding.", priority=1),
]


def binding_row(obj: Obj, now: float) -> Row:
    """Upstream's ``printRoleBinding`` / ``printClusterRoleBinding``."""
    meta = _meta(obj)
    ref = obj.get("roleRef") or {}
    users, groups, sas = [], [], []
    for s in obj.get("subjects") or ():
        if s.get("kind") == "User":
            users.append(s.get("name", ""))
        elif s.get("kind") == "Group":
            groups.append(s.get("name", ""))
        elif s.get("kind") == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
    return [meta.get("name", ""), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            since(meta.get("creationTimestamp"), now), ", ".join(users), ", ".join(groups), ", ".join(sas)]


CSR_COLUMNS = [
    _NAME_COL,
    _AGE_COL,
    _col("SignerName", "Name of the signer that should sign the certificate."),
    _col("Requestor", "Name of the user that created the request."),
    _col("RequestedDuration", "Duration the signer is asked to issue the certificate for."),
    _col("Condition", "The state of the request (Approved, Denied, Pending; Issued once signed)."),
]


def csr_row(obj: Obj, now: float) -> Row:
    """Upstream's ``printCertificateSigningRequest`` (``extractCSRStatus``)."""
    meta = _meta(obj)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    kinds = {c.get("type") for c in status.get("conditions") or () if isinstance(c, dict)}
    state = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    if "Failed" in kinds:
        state += ",Failed"
    if status.get("certificate"):
        state += ",Issued"
    seconds = spec.get("expirationSeconds")
    return [meta.get("name", ""), since(meta.get("creationTimestamp"), now), spec.get("signerName", ""),
            spec.get("username", ""), "<none>" if seconds is None else human_duration(float(seconds)), state]


def default_row(obj: Obj, now: float) -> Row:
    meta = _meta(obj)
    return [meta.get("name", ""), meta.get("creationTimestamp")]


_PRINTERS: dict[str, tuple[list[Obj], Callable[[Obj, float], Row]]] = {
    "Job": (JOB_COLUMNS, job_row),
    "CronJob": (CRONJOB_COLUMNS, cronjob_row),
    "Pod": (POD_COLUMNS, pod_row),
    "Namespace": (NAMESPACE_COLUMNS, namespace_row),
    "Node": (NODE_COLUMNS, node_row),
    "Event": (EVENT_COLUMNS, event_row),
    "Lease": (LEASE_COLUMNS, lease_row),
    "RoleBinding": (BINDING_COLUMNS, binding_row),
    "ClusterRoleBinding": (BINDING_COLUMNS, binding_row),
    "CertificateSigningRequest": (CSR_COLUMNS, csr_row),
}

# Conditions upstream attaches to rows of finished pods.
_POD_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "",
                   "message": "The pod has completed successfully."}]
_POD_FAILED = [{"type": "Completed", "status": "True", "reason": "", "message": "The pod failed."}]


def _object_printer(kind: str) -> tuple[list[Obj], Callable[[Obj, float], Row]] | None:
    """The kinds around a Job (``printers_objects``): columns built on first use."""
    row = printers_objects.ROWS.get(kind)
    if row is None:
        return None
    return printers_objects.columns(kind), lambda obj, now: row(obj, lambda ts: since(ts, now))


def _printer(kind: str) -> tuple[list[Obj], Callable[[Obj, float], Row]]:
    found = _PRINTERS.get(kind) or _object_printer(kind)
    return found or (DEFAULT_COLUMNS, default_row)


def columns_for(info: ResourceInfo) -> list[Obj]:
    return _printer(info.kind)[0]


def to_table(info: ResourceInfo, objects: Iterable[dict[str, Any]], *, now: float,
             list_metadata: dict[str, Any] | None = None, include_object: str = "Metadata",
             with_definitions: bool = True, encode_objects: bool = False) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table: ``table_head`` with the ``table_rows`` of ``objects``."""
    table = table_head(info, list_metadata, with_definitions)
    table["rows"] = list(table_rows(info, objects, now=now, include_object=include_object,
                                    encode_objects=encode_objects))
    return table


def table_head(info: ResourceInfo, list_metadata: dict[str, Any] | None = None,
               with_definitions: bool = True) -> dict[str, Any]:
    """A Table without its rows (the HTTP layer streams those after it)."""
    meta: Obj = {}
    for key in ("resourceVersion", "continue", "remainingItemCount", "selfLink"):
        if list_metadata and list_metadata.get(key) not in (None, ""):
            meta[key] = list_metadata[key]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns_for(info) if with_definitions else [],
    }


def table_rows(info: ResourceInfo, objects: Iterable[dict[str, Any]], *, now: float,
               include_object: str = "Metadata", encode_objects: bool = False) -> Iterator[Obj]:
    """A Table's rows, one per object as it is iterated. Each has ``cells`` and ``object`` (a
    PartialObjectMetadata when include_object == "Metadata", the full object for
    "Object", none for "None"). ``encode_objects``: each row's object is serialised at once
    (an ``orjson.Fragment``, for ``orjson.dumps`` of a whole Table), so with ``objects`` decoded
    lazily only one object is held decoded at a time (and each encoding in a right-sized block:
    10,000 pods' rows took 39 MiB in orjson's blocks, against 14 MiB of text)."""
    encode = dumps_exact if encode_objects else None  # each row's is kept until the Table is dumped
    printer = _printer(info.kind)[1]
    is_pod = info.kind == "Pod"
    for obj in objects:
        row: Obj = {"cells": printer(obj, now)}
        if is_pod:
            phase = pods.phase(obj)
            if phase == pods.SUCCEEDED:
                row["conditions"] = _POD_SUCCEEDED
            elif phase == pods.FAILED:
                row["conditions"] = _POD_FAILED
        if include_object == "Metadata":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj.get("metadata") or {}}
        elif include_object == "Object":
            row["object"] = obj
        if encode is not None and "object" in row:
            row["object"] = orjson.Fragment(encode(row["object"]))
        yield row
