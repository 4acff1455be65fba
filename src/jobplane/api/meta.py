"""ObjectMeta helpers: times, uids, generated names, owner references, conditions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobplane.api import randomness

# apiserver's generateName alphabet (no vowels, no confusable characters).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATED_BASE = 58


_last_rfc3339: tuple[int, str] = (-1, "")


def rfc3339(ts: float) -> str:
    """Epoch seconds -> ``2024-01-02T03:04:05Z`` (second precision, as metav1.Time).
    The last second's text is remembered: busy controllers stamp many objects per second."""
    global _last_rfc3339
    sec = int(ts)
    last = _last_rfc3339
    if last[0] == sec:
        return last[1]
    text = datetime.fromtimestamp(sec, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_rfc3339 = (sec, text)
    return text


def rfc3339_micro(ts: float) -> str:
    """Epoch seconds -> ``...T03:04:05.123456Z`` (metav1.MicroTime)."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> float | None:
    """RFC 3339 (with or without fraction) -> epoch seconds; None stays None."""
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def new_uid() -> str:
    """A new ``metadata.uid`` (a random UUID; see ``api.randomness`` for why pooled)."""
    return randomness.uuid4()


def generate_name(base: str) -> str:
    """``generateName`` + 5 random characters, base cut to 58 as upstream does."""
    if len(base) > _MAX_GENERATED_BASE:
        base = base[:_MAX_GENERATED_BASE]
    return base + randomness.choices(_NAME_ALPHABET, 5)


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    refs: list[dict[str, Any]] = obj.get("metadata", {}).get("ownerReferences") or []
    for ref in refs:
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: dict[str, Any], *, controller: bool = True,
                    block_owner_deletion: bool = True) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


def find_condition(status: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    conditions: list[dict[str, Any]] = (status or {}).get("conditions") or []
    for c in conditions:
        if c.get("type") == ctype:
            return c
    return None


def condition_true(status: dict[str, Any] | None, ctype: str) -> bool:
    c = find_condition(status, ctype)
    return bool(c and c.get("status") == "True")


def namespace_of(obj: dict[str, Any]) -> str | None:
    namespace: str | None = obj.get("metadata", {}).get("namespace")
    return namespace


def name_of(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def key_of(obj: dict[str, Any]) -> str:
    """``namespace/name`` (or ``name``), the work-queue key of client-go."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)
