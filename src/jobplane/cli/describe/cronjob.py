"""``kubectl describe cronjob`` (describe.go CronJobDescriber)."""

from __future__ import annotations

from typing import Any

from jobplane.cli.describe.common import (
    PrefixWriter,
    annotations_multiline,
    bool_ptr,
    describe_events,
    labels_multiline,
    rfc1123z,
    selector_text,
)
from jobplane.cli.describe.containers import describe_pod_template

Obj = dict[str, Any]


def describe_cronjob(cj: Obj, events: list[Obj] | None, now: float) -> str:
    w = PrefixWriter()
    meta = cj.get("metadata") or {}
    spec = cj.get("spec") or {}
    status = cj.get("status") or {}
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Schedule:\t{spec.get('schedule', '')}\n")
    w.write(0, f"Concurrency Policy:\t{spec.get('concurrencyPolicy', '')}\n")
    w.write(0, f"Suspend:\t{bool_ptr(spec.get('suspend'))}\n")
    if spec.get("timeZone") is not None:
        w.write(0, f"Time Zone:\t{spec['timeZone']}\n")
    for key, title in (("successfulJobsHistoryLimit", "Successful Job History Limit"),
                       ("failedJobsHistoryLimit", "Failed Job History Limit")):
        value = spec.get(key)
        w.write(0, f"{title}:\t{value if value is not None else '<unset>'}\n")
    if spec.get("startingDeadlineSeconds") is not None:
        w.write(0, f"Starting Deadline Seconds:\t{spec['startingDeadlineSeconds']}s\n")
    else:
        w.write(0, "Starting Deadline Seconds:\t<unset>\n")
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if job_spec.get("selector") is not None:
        w.write(0, f"Selector:\t{selector_text(job_spec['selector'])}\n")
    else:
        w.write(0, "Selector:\t<unset>\n")
    for key, title in (("parallelism", "Parallelism"), ("completions", "Completions")):
        value = job_spec.get(key)
        w.write(0, f"{title}:\t{value if value is not None else '<unset>'}\n")
    if job_spec.get("activeDeadlineSeconds") is not None:
        w.write(0, f"Active Deadline Seconds:\t{job_spec['activeDeadlineSeconds']}s\n")
    describe_pod_template(w, job_spec.get("template"))
    if status.get("lastScheduleTime"):
        w.write(0, f"Last Schedule Time:\t{rfc1123z(status['lastScheduleTime'])}\n")
    else:
        w.write(0, "Last Schedule Time:\t<unset>\n")
    active = status.get("active") or []
    w.write(0, "Active Jobs:\t" + (", ".join(a.get("name", "") for a in active) if active else "<none>") + "\n")
    if events is not None:
        describe_events(w, events, now)
    return w.render()
