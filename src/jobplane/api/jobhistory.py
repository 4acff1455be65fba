"""Job records: what is kept of a finished Job after it and its pods are deleted.

A record is an object-shaped dict (``kind: JobRecord``) with the Job's final spec and
status and one row per pod: index, node, start, finish, exit code, reason, restarts. Peak
memory and CPU time are fields too, null with ``missing`` saying why, since no runtime
reports them yet. Pure functions: building records, summarising them as ``sacct`` does,
and choosing which to prune.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jobplane.api.meta import parse_time

Obj = dict[str, Any]

API_VERSION = "jobplane.io/v1alpha1"
KIND = "JobRecord"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
NOT_REPORTED = ["peakMemoryBytes", "cpuSeconds"]  # no runtime measures these yet


def outcome(job: Obj) -> str:
    """``Complete``, ``Failed``, or ``Deleted`` (removed before it finished)."""
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return "Deleted"


def is_finished(job: Obj) -> bool:
    return outcome(job) != "Deleted"


def _main_status(pod: Obj) -> Obj:
    """The first container's status (a Job's pods usually have one)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return statuses[0] if statuses else {}


def pod_row(pod: Obj, log_file: str | None, log_bytes: int) -> Obj:
    md = pod.get("metadata") or {}
    status = pod.get("status") or {}
    cs = _main_status(pod)
    state = cs.get("state") or {}
    term = state.get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
    started = term.get("startedAt") or (state.get("running") or {}).get("startedAt") or status.get("startTime")
    index = (md.get("annotations") or {}).get(INDEX_ANNOTATION)
    return {
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "index": int(index) if index is not None and str(index).isdigit() else None,
        "node": (pod.get("spec") or {}).get("nodeName"),
        "phase": status.get("phase", ""),
        "startedAt": started,
        "finishedAt": term.get("finishedAt"),
        "exitCode": term.get("exitCode"),
        "reason": term.get("reason") or status.get("reason"),
        "message": term.get("message") or status.get("message"),
        "restarts": int(cs.get("restartCount") or 0),
        "peakMemoryBytes": None,
        "cpuSeconds": None,
        "log": log_file,
        "logBytes": log_bytes,
    }


def build_record(job: Obj, pods: list[Obj], logs: dict[str, tuple[str | None, int]], archived_at: str) -> Obj:
    """The record of ``job``; ``logs`` maps pod uid -> (log file name, size)."""
    rows = [pod_row(p, *logs.get((p.get("metadata") or {}).get("uid", ""), (None, 0))) for p in pods]
    return record_of(job, rows, archived_at)


def record_of(job: Obj, rows: list[Obj], archived_at: str) -> Obj:
    """The record of ``job`` from its pods' rows (``pod_row``), which it sorts in place: the
    archiver builds each row as it reads the pod, so a Job's pods are never all decoded at once."""
    md = job.get("metadata") or {}
    rows.sort(key=lambda r: (r["index"] if r["index"] is not None else -1, r["startedAt"] or "", r["name"]))
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": f"{md.get('name', '')}.{md.get('uid', '')}", "namespace": md.get("namespace"),
                     "uid": md.get("uid"), "labels": dict(md.get("labels") or {}),
                     "creationTimestamp": archived_at},
        "job": {"metadata": {k: md.get(k) for k in ("name", "namespace", "uid", "labels", "annotations",
                                                    "ownerReferences", "creationTimestamp")
                             if md.get(k) is not None},
                "spec": job.get("spec") or {}, "status": job.get("status") or {}},
        "outcome": outcome(job),
        "pods": rows,
        "missing": {"peakMemoryBytes": "not reported by the node agent",
                    "cpuSeconds": "not reported by the node agent"},
        "archivedAt": archived_at,
    }


def record_size(record: Obj) -> int:
    """Bytes a record costs the retention budget: its pods' log files (the record itself is
    small beside them, and counted as 200 bytes a pod)."""
    return sum(int(r.get("logBytes") or 0) + 200 for r in record.get("pods") or ()) + 1000


@dataclass(frozen=True)
class Summary:
    """One ``jobplane history`` line."""

    namespace: str
    name: str
    uid: str
    outcome: str
    reason: str
    completions: int | None
    succeeded: int
    failed: int
    pods: int
    start: float | None
    end: float | None
    exit_code: int | None  # the first failed pod's, 0 when every pod succeeded
    cronjob: str | None = None  # the CronJob that created it

    @property
    def elapsed(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return max(0.0, self.end - self.start)


def summarize(record: Obj) -> Summary:
    job = record.get("job") or {}
    md, spec, status = job.get("metadata") or {}, job.get("spec") or {}, job.get("status") or {}
    reason = ""
    for cond in status.get("conditions") or ():
        if cond.get("type") == record.get("outcome") and cond.get("status") == "True":
            reason = cond.get("reason", "")
    rows = record.get("pods") or []
    codes = [r["exitCode"] for r in rows if r.get("exitCode") not in (None, 0)]
    exit_code = codes[0] if codes else (0 if rows else None)
    end = parse_time(status.get("completionTime"))
    if end is None:
        ends = [t for t in (parse_time(r.get("finishedAt")) for r in rows) if t is not None]
        end = max(ends) if ends else parse_time(record.get("archivedAt"))
    owner = next((r.get("name") for r in md.get("ownerReferences") or () if r.get("kind") == "CronJob"), None)
    return Summary(md.get("namespace", ""), md.get("name", ""), md.get("uid", ""), record.get("outcome", ""),
                   reason, spec.get("completions"), int(status.get("succeeded") or 0),
                   int(status.get("failed") or 0), len(rows), parse_time(status.get("startTime")), end, exit_code,
                   owner)


def to_prune(records: Iterable[tuple[str, float, int]], now: float, retention: float,
             max_bytes: int) -> list[str]:
    """Keys to delete from (key, archived at, size): everything past ``retention``, then the
    oldest until the rest fit in ``max_bytes``."""
    ordered = sorted(records, key=lambda r: r[1])
    doomed = [key for key, at, _ in ordered if now - at > retention]
    kept = [(key, size) for key, at, size in ordered if now - at <= retention]
    total = sum(size for _, size in kept)
    for key, size in kept:
        if total <= max_bytes:
            break
        doomed.append(key)
        total -= size
    return doomed
