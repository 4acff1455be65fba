"""Pure write planning shared by the batching backends (sqlite, postgres).

A batch of pending writes is checked in order against the current state (plus the
effect of earlier writes in the same batch), each successful write takes the next
revision, and the result is a list of ``Change`` records to persist and apply. No I/O
here, so the backends only differ in where the state comes from and how it commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from jobplane.api.jsonbytes import dumps_exact
from jobplane.storage.base import KeyExists, KeyNotFound, RevisionConflict, WatchEvent

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
TYPE_CODES = {ADDED: 0, MODIFIED: 1, DELETED: 2}
TYPE_NAMES = {v: k for k, v in TYPE_CODES.items()}

# key -> (revision, orjson bytes) of the current object, or None when absent
Lookup = Callable[[str], "tuple[int, bytes] | None"]


class Change:
    """One committed (or about to be committed) revision: the unit of history."""

    __slots__ = ("rev", "key", "type", "data", "prev", "labels", "event", "pending")

    def __init__(self, rev: int, key: str, type: str, data: bytes, prev: bytes | None,
                 labels: dict[str, Any] | None = None) -> None:
        self.rev = rev
        self.key = key
        self.type = type
        self.data = data  # the event object (for DELETED: last state with the delete's revision)
        self.prev = prev  # the object before this change (None for ADDED)
        # metadata.labels of ``data`` when the writer knew them (saves the mirror a decode);
        # None: unknown. Dropped once the mirror has indexed the change.
        self.labels = labels
        # decoded WatchEvent shared by the live watchers that still have to deliver this
        # change (``pending`` of them); dropped when the last one has, so history keeps bytes only
        self.event: WatchEvent | None = None
        self.pending = 0


@dataclass
class WriteOp:
    op: str  # "create" | "update" | "delete"
    key: str
    obj: dict[str, Any] | None
    expected_rv: str | None
    future: asyncio.Future[dict[str, Any]]


def with_revision(obj: dict[str, Any], rev: int) -> dict[str, Any]:
    """A shallow copy of ``obj`` whose metadata.resourceVersion is ``rev`` (the caller's dict is untouched)."""
    new = dict(obj)
    md = dict(new.get("metadata") or {})
    md["resourceVersion"] = str(rev)
    new["metadata"] = md
    return new


def plan(ops: list[WriteOp], lookup: Lookup, rev: int) -> tuple[list[Change], list[Any]]:
    """Check ``ops`` in order starting after revision ``rev``.

    Returns the changes to commit and, per op, either the object to hand back or the
    exception to raise.
    """
    overlay: dict[str, tuple[int, bytes] | None] = {}
    changes: list[Change] = []
    results: list[Any] = []
    for op in ops:
        cur = overlay[op.key] if op.key in overlay else lookup(op.key)
        try:
            if op.op == "create":
                if cur is not None:
                    raise KeyExists(op.key)
                etype, prev = ADDED, None
            else:
                if cur is None:
                    raise KeyNotFound(op.key)
                if op.expected_rv and str(cur[0]) != str(op.expected_rv):
                    raise RevisionConflict(op.key)
                etype, prev = (DELETED if op.op == "delete" else MODIFIED), cur[1]
            source = orjson.loads(prev) if etype == DELETED and prev is not None else op.obj
            if not isinstance(source, dict):
                raise TypeError(f"object for {op.key} must be a dict")
            result = with_revision(source, rev + 1)
            data = dumps_exact(result)  # the store keeps these for a long time
        except Exception as exc:  # noqa: BLE001 - handed to that op's caller
            results.append(exc)
            continue
        rev += 1
        labels = result["metadata"].get("labels")
        changes.append(Change(rev, op.key, etype, data, prev, dict(labels) if isinstance(labels, dict) else {}))
        overlay[op.key] = None if etype == DELETED else (rev, data)
        results.append(result)
    return changes, results


def final_states(changes: list[Change]) -> tuple[list[tuple[str, int, bytes]], list[str]]:
    """Collapse a batch to the last state per key: (upserts, deleted keys), order-free for SQL."""
    last: dict[str, Change] = {}
    for ch in changes:
        last[ch.key] = ch
    upserts = [(c.key, c.rev, c.data) for c in last.values() if c.type != DELETED]
    deletes = [c.key for c in last.values() if c.type == DELETED]
    return upserts, deletes
