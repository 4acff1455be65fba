"""``kubectl describe job`` (describe.go JobDescriber)."""

from __future__ import annotations

from typing import Any

from jobplane.api.printers import human_duration, parse_ts
from jobplane.cli.describe.common import (
    PrefixWriter,
    annotations_multiline,
    controlled_by,
    describe_events,
    go_bool,
    labels_multiline,
    rfc1123z,
    selector_text,
)
from jobplane.cli.describe.containers import describe_pod_template

Obj = dict[str, Any]


def describe_job(job: Obj, events: list[Obj] | None, now: float) -> str:
    w = PrefixWriter()
    meta = job.get("metadata") or {}
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    w.write(0, f"Selector:\t{selector_text(spec.get('selector'))}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    if ctl := controlled_by(job):
        w.write(0, f"Controlled By:\t{ctl}\n")
    if spec.get("parallelism") is not None:
        w.write(0, f"Parallelism:\t{spec['parallelism']}\n")
    if spec.get("completions") is not None:
        w.write(0, f"Completions:\t{spec['completions']}\n")
    else:
        w.write(0, "Completions:\t<unset>\n")
    if spec.get("completionMode"):
        w.write(0, f"Completion Mode:\t{spec['completionMode']}\n")
    if spec.get("suspend") is not None:
        w.write(0, f"Suspend:\t{go_bool(spec['suspend'])}\n")
    if spec.get("backoffLimit") is not None:
        w.write(0, f"Backoff Limit:\t{spec['backoffLimit']}\n")
    if spec.get("ttlSecondsAfterFinished") is not None:
        w.write(0, f"TTL Seconds After Finished:\t{spec['ttlSecondsAfterFinished']}\n")
    if status.get("startTime"):
        w.write(0, f"Start Time:\t{rfc1123z(status['startTime'])}\n")
    if status.get("completionTime"):
        w.write(0, f"Completed At:\t{rfc1123z(status['completionTime'])}\n")
    if status.get("startTime") and status.get("completionTime"):
        start, end = parse_ts(status["startTime"]), parse_ts(status["completionTime"])
        if start is not None and end is not None:
            w.write(0, f"Duration:\t{human_duration(end - start)}\n")
    if spec.get("activeDeadlineSeconds") is not None:
        w.write(0, f"Active Deadline Seconds:\t{spec['activeDeadlineSeconds']}s\n")
    active, succeeded, failed = status.get("active") or 0, status.get("succeeded") or 0, status.get("failed") or 0
    if status.get("ready") is None:
        w.write(0, f"Pods Statuses:\t{active} Active / {succeeded} Succeeded / {failed} Failed\n")
    else:
        w.write(0, f"Pods Statuses:\t{active} Active ({status['ready']} Ready) / {succeeded} Succeeded / "
                   f"{failed} Failed\n")
    if spec.get("completionMode") == "Indexed":
        w.write(0, f"Completed Indexes:\t{cap_indexes_list_or_none(status.get('completedIndexes') or '', 50)}\n")
    describe_pod_template(w, spec.get("template"))
    if events is not None:
        describe_events(w, events, now)
    return w.render()


def cap_indexes_list_or_none(indexes: str, soft_limit: int) -> str:
    """describe.go ``capIndexesListOrNone``: the list up to the first comma at or after
    ``soft_limit`` (that comma kept), then ``...``; ``<none>`` when empty."""
    if not indexes:
        return "<none>"
    cut = indexes.find(",", soft_limit)
    if cut < 0:
        return indexes
    return indexes[:cut + 1] + "..."
