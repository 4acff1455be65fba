"""Read-only view of core/v1 Events as events.k8s.io/v1 Events (field renames only)."""

from __future__ import annotations

from typing import Any


def to_events_v1(event: dict[str, Any]) -> dict[str, Any]:
    source = event.get("source") or {}
    out: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": event.get("metadata", {}),
        "eventTime": event.get("eventTime"),
        "reportingController": event.get("reportingComponent") or source.get("component", ""),
        "reportingInstance": event.get("reportingInstance") or source.get("host", ""),
        "action": event.get("action", ""),
        "reason": event.get("reason", ""),
        "regarding": event.get("involvedObject", {}),
        "note": event.get("message", ""),
        "type": event.get("type", ""),
        "deprecatedSource": source,
        "deprecatedFirstTimestamp": event.get("firstTimestamp"),
        "deprecatedLastTimestamp": event.get("lastTimestamp"),
        "deprecatedCount": event.get("count", 0),
    }
    if event.get("related"):
        out["related"] = event["related"]
    if event.get("series"):
        out["series"] = event["series"]
    return {k: v for k, v in out.items() if v is not None}
