"""Pod status as kubelet reports it, computed from the agent's container records.

Pure. Upstream: ``pkg/kubelet/kubelet_pods.go`` (getPhase, generateAPIPodStatus),
``pkg/kubelet/status/generate.go`` (conditions), ``pkg/kubelet/container`` (reasons).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobplane.api.pods import FAILED, PENDING, RUNNING, SUCCEEDED, TERMINAL_PHASES

Obj = dict[str, Any]

HOST_IP = "127.0.0.1"
DEADLINE_REASON = "DeadlineExceeded"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
# A container kubelet can no longer locate (kubecontainer.ContainerReasonStatusUnknown), exit
# code 137: in ``lastState`` when it is started again (kubelet_pods.go
# convertToAPIContainerStatuses; two spaces, as upstream), in ``state`` when its pod ends
# without it (status manager's TerminatePod).
UNKNOWN_REASON = "ContainerStatusUnknown"
UNKNOWN_EXIT_CODE = 137
LOST_RESTARTED_MESSAGE = "The container could not be located when the pod was deleted.  The container used to be Running"
LOST_TERMINATED_MESSAGE = "The container could not be located when the pod was terminated"


@dataclass
class ContainerRecord:
    """What the agent knows about one container; persisted in state.json for recovery."""

    name: str
    image: str = ""
    init: bool = False
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    restart_count: int = 0
    pid: int | None = None
    pid_start: str | None = None  # /proc/<pid>/stat starttime, guards against pid reuse
    container_id: str = ""
    image_id: str = ""  # the image runtime's id of the image it ran ("" on the host runtime)
    sidecar: bool = False  # an init container with restartPolicy: Always (KEP-753)
    # The running container's probe results (kubelet's startup and readiness managers): its
    # startup probe passed (or it has none), its readiness probe's result is Success (or it
    # has none). Not persisted: after an agent restart the probes start again, as kubelet's.
    startup_passed: bool = True
    readiness_passed: bool = True

    @property
    def started_once(self) -> bool:
        """A sidecar counts as initialized once it has started (running past its startup
        probe, or restarting)."""
        return (self.running and self.startup_passed) or bool(self.last_state) or self.terminated is not None

    @property
    def started(self) -> bool:
        """``containerStatus.started``: running, and past its startup probe."""
        return self.running and self.startup_passed

    @property
    def ready(self) -> bool:
        """``containerStatus.ready`` (prober_manager UpdatePodStatus): a regular init container
        once it succeeded; any other while started and its readiness probe succeeds."""
        if self.init and not self.sidecar:
            return self.succeeded
        return self.started and self.readiness_passed

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> Obj | None:
        return self.state.get("terminated")

    @property
    def succeeded(self) -> bool:
        t = self.terminated
        return bool(t and t.get("exitCode") == 0)

    def to_dict(self) -> Obj:
        return {"name": self.name, "image": self.image, "init": self.init, "state": self.state,
                "lastState": self.last_state, "restartCount": self.restart_count, "pid": self.pid,
                "pidStart": self.pid_start, "containerID": self.container_id, "sidecar": self.sidecar,
                "imageID": self.image_id}

    @classmethod
    def from_dict(cls, d: Obj) -> ContainerRecord:
        return cls(name=d["name"], image=d.get("image", ""), init=bool(d.get("init")),
                   state=d.get("state") or {}, last_state=d.get("lastState") or {},
                   restart_count=int(d.get("restartCount") or 0), pid=d.get("pid"),
                   pid_start=d.get("pidStart"), container_id=d.get("containerID") or "",
                   sidecar=bool(d.get("sidecar")), image_id=d.get("imageID") or "")


def terminated_state(exit_code: int, started_at: str | None, finished_at: str | None, *, reason: str | None = None,
                     message: str | None = None, container_id: str = "", signal: int | None = None) -> Obj:
    """``state.terminated``: reason Completed for exit 0, else Error (unless given, e.g. OOMKilled).
    No ``finishedAt`` only for a container that could not be located (kubelet knows no times)."""
    t: Obj = {"exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0 else "Error")}
    if finished_at:
        t["finishedAt"] = finished_at
    if started_at:
        t["startedAt"] = started_at
    if message:
        t["message"] = message
    if signal:
        t["signal"] = signal
    if container_id:
        t["containerID"] = container_id
    return t


def unknown_terminated_state() -> Obj:
    """The ``state`` of a container that cannot be located when its pod ends (status manager's
    TerminatePod): exit code, reason and message only; no times, no container id, as upstream."""
    return {"terminated": terminated_state(UNKNOWN_EXIT_CODE, None, None, reason=UNKNOWN_REASON,
                                           message=LOST_TERMINATED_MESSAGE)}


def container_status(rec: ContainerRecord) -> Obj:
    status: Obj = {
        "name": rec.name,
        "state": rec.state,
        "lastState": rec.last_state,
        "ready": rec.ready,
        "restartCount": rec.restart_count,
        "image": rec.image,
        "imageID": rec.image_id,
        "started": rec.started,
    }
    if rec.container_id:
        status["containerID"] = rec.container_id
    return status


def pod_phase(restart_policy: str, init: list[ContainerRecord], app: list[ContainerRecord]) -> str:
    """kubelet's getPhase (sidecars only have to have started; they never decide the phase)."""
    for rec in init:
        t = rec.terminated
        if not rec.sidecar and t is not None and t.get("exitCode") != 0 and restart_policy == "Never":
            return FAILED
    if any(not _initialized(rec) for rec in init):
        return PENDING
    running = waiting = stopped = succeeded = 0
    for rec in app:
        if rec.running:
            running += 1
        elif rec.terminated is not None:
            stopped += 1
            succeeded += rec.succeeded
        elif rec.last_state.get("terminated") is not None:
            stopped += 1  # waiting to restart after a failure
        else:
            waiting += 1
    if waiting > 0:
        return PENDING
    if running > 0:
        return RUNNING
    if stopped > 0:
        if restart_policy == "Always":
            return RUNNING
        if stopped == succeeded:
            return SUCCEEDED
        if restart_policy == "Never":
            return FAILED
        return RUNNING
    return PENDING


def _initialized(rec: ContainerRecord) -> bool:
    return rec.started_once if rec.sidecar else rec.succeeded


def _cond(ctype: str, status: bool, now: str, previous: dict[Any, Obj], reason: str | None = None,
          message: str | None = None) -> Obj:
    text = "True" if status else "False"
    prev = previous.get(ctype)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == text else now
    c: Obj = {"type": ctype, "status": text, "lastProbeTime": None, "lastTransitionTime": since}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


# Condition types the kubelet owns (pkg/kubelet/types PodConditionByKubelet); any other
# condition on the pod (DisruptionTarget, readiness gates) was written by someone else.
KUBELET_CONDITIONS = frozenset({"PodScheduled", "Ready", "Initialized", "ContainersReady",
                                "PodReadyToStartContainers"})


def pod_conditions(phase: str, init: list[ContainerRecord], app: list[ContainerRecord], now: str,
                   previous: list[Obj] | None = None, sandbox_ready: bool = True) -> list[Obj]:
    """Conditions not owned by the kubelet kept from ``previous`` (status manager's
    ``mergePodStatus``: a whole-list write must not drop e.g. DisruptionTarget), then
    PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled (kubelet's order)."""
    prev = {c.get("type"): c for c in previous or ()}
    foreign = [c for c in previous or () if c.get("type") not in KUBELET_CONDITIONS]
    terminal = phase in TERMINAL_PHASES
    terminal_reason = "PodCompleted" if phase == SUCCEEDED else "PodFailed"

    conds = [*foreign, _cond("PodReadyToStartContainers", sandbox_ready and not terminal, now, prev)]

    pending_init = [r.name for r in init if not _initialized(r)]
    if not init:
        conds.append(_cond("Initialized", True, now, prev))
    elif phase == SUCCEEDED and not pending_init:
        conds.append(_cond("Initialized", True, now, prev, "PodCompleted"))
    elif pending_init:
        conds.append(_cond("Initialized", False, now, prev, "ContainersNotInitialized",
                           f"containers with incomplete status: [{' '.join(pending_init)}]"))
    else:
        conds.append(_cond("Initialized", True, now, prev))

    unready = [r.name for r in [*(r for r in init if r.sidecar), *app] if not r.ready]
    if terminal:
        ready = [_cond(t, False, now, prev, terminal_reason) for t in ("Ready", "ContainersReady")]
    elif pending_init:
        msg = f"containers with incomplete status: [{' '.join(pending_init)}]"
        ready = [_cond(t, False, now, prev, "ContainersNotInitialized", msg) for t in ("Ready", "ContainersReady")]
    elif unready:
        msg = f"containers with unready status: [{' '.join(unready)}]"
        ready = [_cond(t, False, now, prev, "ContainersNotReady", msg) for t in ("Ready", "ContainersReady")]
    else:
        ready = [_cond(t, True, now, prev) for t in ("Ready", "ContainersReady")]
    conds.extend(ready)

    scheduled = prev.get("PodScheduled")
    if scheduled and scheduled.get("status") == "True":
        conds.append(scheduled)
    else:
        conds.append(_cond("PodScheduled", True, now, prev))
    return conds


def pod_status(pod: Obj, init: list[ContainerRecord], app: list[ContainerRecord], now: str, *,
               start_time: str, qos: str, phase_override: str | None = None,
               reason: str | None = None, message: str | None = None, pod_ip: str = HOST_IP) -> Obj:
    """The whole ``status`` the agent writes (through the status subresource). Pods use their
    node's network: ``pod_ip`` is the node's address, for hostIP and podIP alike."""
    spec = pod.get("spec") or {}
    previous = (pod.get("status") or {}).get("conditions")
    phase = phase_override or pod_phase(spec.get("restartPolicy") or "Always", init, app)
    status: Obj = {
        "phase": phase,
        "conditions": pod_conditions(phase, init, app, now, previous),
        "hostIP": pod_ip,
        "hostIPs": [{"ip": pod_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
        "containerStatuses": [container_status(r) for r in app],
        "qosClass": qos,
        "reason": reason,
        "message": message,
    }
    if init:
        status["initContainerStatuses"] = [container_status(r) for r in init]
    return status


def hold_terminal_phase(status: Obj, previous: Obj) -> None:
    """kubelet's status manager (``mergePodStatus``) never reports a pod terminal while its
    containers could still run (sidecars being stopped after the main containers, containers
    being killed): ``status`` keeps the ``previous`` phase, reason and message until they have
    all stopped; its conditions stay those of the terminal phase. Whoever acts on the
    terminal phase (the Job controller, ``kubectl logs`` of a finished pod) then finds every
    container ended and its log complete."""
    phase = previous.get("phase") or PENDING
    if phase in TERMINAL_PHASES:
        return
    status["phase"] = phase
    status["reason"] = previous.get("reason")
    status["message"] = previous.get("message")
