"""Label index of the mirror: ``(label key, value) -> sorted storage keys``.

A label-selected LIST (``?labelSelector=app=x``) then visits only the keys carrying the
selector's ``k=v`` pairs instead of decoding every object under the prefix. Each indexed
pair is one ``Posting`` object; an object's entry keeps the tuple of its postings, so an
update whose labels did not change costs one tuple comparison and nothing else.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Mapping
from typing import Any

import orjson

Postings = tuple["Posting", ...]
NO_POSTINGS: Postings = ()


class Posting:
    """One ``k=v`` pair and the sorted storage keys of the objects that carry it."""

    __slots__ = ("pair", "keys")

    def __init__(self, pair: tuple[str, str]) -> None:
        self.pair = pair
        self.keys: list[str] = []


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    md = obj.get("metadata")
    return md.get("labels") if isinstance(md, Mapping) else None


def labels_of_bytes(data: bytes) -> Mapping[str, Any] | None:
    obj = orjson.loads(data)
    return labels_of(obj) if isinstance(obj, Mapping) else None


class LabelIndex:
    def __init__(self) -> None:
        self._postings: dict[tuple[str, str], Posting] = {}

    def __len__(self) -> int:
        return len(self._postings)

    def postings_for(self, labels: Mapping[str, Any] | None) -> Postings:
        """The postings of ``labels``, created empty when new: pass them to ``replace`` at once."""
        if not labels:
            return NO_POSTINGS
        out = []
        for k, v in labels.items():
            if not isinstance(v, str):
                continue
            pair = (k, v)
            p = self._postings.get(pair)
            if p is None:
                p = self._postings[pair] = Posting((sys.intern(k), sys.intern(v)))
            out.append(p)
        return tuple(out)

    def replace(self, key: str, old: Postings, new: Postings) -> None:
        """Move ``key`` from the postings ``old`` to ``new`` (either may be empty)."""
        if old is new or old == new:
            return
        for p in old:
            if p not in new:
                keys = p.keys
                i = bisect.bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    del keys[i]
                if not keys:
                    self._postings.pop(p.pair, None)
        for p in new:
            if p not in old:
                bisect.insort(p.keys, key)

    def smallest(self, hint: Mapping[str, str]) -> tuple[list[str], Postings] | None:
        """Sorted keys of the rarest hinted pair plus the postings an object must carry for the
        whole hint; None when some pair is on no object (nothing can match)."""
        chosen: list[Posting] = []
        for k, v in hint.items():
            p = self._postings.get((k, v))
            if p is None or not p.keys:
                return None
            chosen.append(p)
        chosen.sort(key=lambda p: len(p.keys))
        return chosen[0].keys, tuple(chosen[1:])
