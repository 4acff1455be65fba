"""``kubectl describe`` output (k8s.io/kubectl/pkg/describe/describe.go).

Each describer writes tab-separated lines with upstream's indentation levels
(2 spaces per level) into a Go-style tabwriter (minwidth 0, padding 2), so the
alignment comes out as kubectl's. Pure: objects and events in, text out.

One module per kind (job, cronjob, pod, node, other) over the shared sections in
``common`` (writer, labels, events) and ``containers`` (containers, volumes, pod template);
this package exposes the dispatcher ``describe`` and what callers import by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobplane.cli.describe.common import PrefixWriter, describe_events, rfc1123z
from jobplane.cli.describe.containers import describe_containers, describe_pod_template, describe_volumes
from jobplane.cli.describe.cronjob import describe_cronjob
from jobplane.cli.describe.job import cap_indexes_list_or_none, describe_job
from jobplane.cli.describe.node import describe_node, format_quantity, parse_quantity
from jobplane.cli.describe.other import describe_generic, describe_namespace, smart_label
from jobplane.cli.describe.pod import describe_pod

Obj = dict[str, Any]

__all__ = [
    "DESCRIBERS", "PrefixWriter", "cap_indexes_list_or_none", "describe", "describe_containers",
    "describe_cronjob", "describe_events", "describe_generic", "describe_job", "describe_namespace",
    "describe_node", "describe_pod", "describe_pod_template", "describe_volumes", "format_quantity",
    "parse_quantity", "rfc1123z", "smart_label",
]

DESCRIBERS: dict[str, Callable[[Obj, list[Obj] | None, float], str]] = {
    "Job": describe_job,
    "CronJob": describe_cronjob,
    "Pod": describe_pod,
    "Namespace": describe_namespace,
    "Node": describe_node,
}


def describe(kind: str, obj: Obj, events: list[Obj] | None, now: float) -> str:
    return DESCRIBERS.get(kind, describe_generic)(obj, events, now)
