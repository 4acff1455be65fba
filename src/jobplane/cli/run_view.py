"""What ``jobplane run`` shows, decided from the Job alone: counts, rate, ETA, outcome, the
Job built from flags, and the prefix of each pod's log lines. Pure; ``run_cmd`` does the I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobplane.api.pods import FAILED, RUNNING, TERMINAL_PHASES, phase

Obj = dict[str, Any]

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True)
class Snapshot:
    """The Job's progress as its status says."""

    completions: int | None
    succeeded: int
    failed: int
    active: int
    outcome: str | None  # "Complete", "Failed" or None while running
    reason: str
    message: str

    @property
    def counts(self) -> tuple[int, int, int]:
        return self.succeeded, self.failed, self.active


def snapshot(job: Obj) -> Snapshot:
    status = job.get("status") or {}
    outcome, reason, message = None, "", ""
    for cond in status.get("conditions") or ():
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            outcome, reason, message = cond["type"], cond.get("reason", ""), cond.get("message", "")
    return Snapshot((job.get("spec") or {}).get("completions"), int(status.get("succeeded") or 0),
                    int(status.get("failed") or 0), int(status.get("active") or 0), outcome, reason, message)


def rate(snap: Snapshot, elapsed: float) -> float:
    """Succeeded pods per second since the Job started."""
    return snap.succeeded / elapsed if elapsed > 0 else 0.0


def eta(snap: Snapshot, elapsed: float) -> float | None:
    """Seconds left at the rate so far; None when unknown (no completions or no success yet)."""
    r = rate(snap, elapsed)
    if snap.completions is None or r <= 0:
        return None
    return max(0.0, (snap.completions - snap.succeeded) / r)


def duration(seconds: float | None) -> str:
    """``4s``, ``2m05s``, ``1h02m`` (``-`` when unknown)."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def status_line(name: str, snap: Snapshot, elapsed: float) -> str:
    """The one line a non-terminal gets per change."""
    total = "" if snap.completions is None else f"/{snap.completions}"
    text = (f"job/{name}: {snap.succeeded}{total} succeeded, {snap.failed} failed, {snap.active} active, "
            f"elapsed {duration(elapsed)}")
    r = rate(snap, elapsed)
    if r > 0:
        text += f", {r:.2f}/s"
        left = eta(snap, elapsed)
        if left is not None and snap.outcome is None:
            text += f", ETA {duration(left)}"
    if snap.outcome is not None:
        text += f" — {snap.outcome}" + (f" ({snap.reason})" if snap.reason else "")
    return text


def log_prefix(pod: Obj) -> str:
    """``[3]`` for an Indexed Job's pod (its completion index), ``[pod-name]`` otherwise."""
    md = pod.get("metadata") or {}
    index = (md.get("annotations") or {}).get(INDEX_ANNOTATION)
    if index is None:
        index = (md.get("labels") or {}).get(INDEX_ANNOTATION)
    return f"[{index}]" if index is not None else f"[{md.get('name', '')}]"


def parse_env(pairs: tuple[str, ...]) -> list[Obj]:
    """``K=V`` flags as container env entries; raises ValueError naming the bad one."""
    env = []
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ValueError(f'invalid env "{pair}": expected KEY=VALUE')
        env.append({"name": key, "value": value})
    return env


def job_from_flags(name: str, image: str, command: list[str], *, completions: int | None,
                   parallelism: int | None, indexed: bool, backoff_limit: int | None,
                   env: list[Obj]) -> Obj:
    """The Job ``jobplane run NAME --image IMG ... -- CMD`` submits (restartPolicy Never, so
    every failure is a pod the Job counts)."""
    container: Obj = {"name": name, "image": image}
    if command:
        container["command"] = command
    if env:
        container["env"] = env
    spec: Obj = {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}
    if completions is not None:
        spec["completions"] = completions
    if parallelism is not None:
        spec["parallelism"] = parallelism
    if indexed:
        spec["completionMode"] = "Indexed"
        spec.setdefault("completions", 1)
    if backoff_limit is not None:
        spec["backoffLimit"] = backoff_limit
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def pod_failed(pod: Obj) -> bool:
    return phase(pod) == FAILED


def pod_started(pod: Obj) -> bool:
    """Whether the pod has a log to read (a container started, or it is over)."""
    status = pod.get("status") or {}
    if status.get("phase") in (RUNNING, *TERMINAL_PHASES):
        return True
    return any("running" in (cs.get("state") or {}) or "terminated" in (cs.get("state") or {})
               for cs in status.get("containerStatuses") or ())
