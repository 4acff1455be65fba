"""Ordered index intervals as the Job controller needs them (upstream ``orderedIntervals``
in indexed_job_utils.go): union, membership by binary search, totals. Parsing and the
string form come from ``jobplane.api.intervals``."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

from jobplane.api.intervals import format_intervals, parse_lenient


class Intervals:
    """Sorted, non-overlapping, non-adjacent closed intervals ``[(first, last), ...]``."""

    __slots__ = ("items", "_lasts")

    def __init__(self, items: list[tuple[int, int]] | None = None) -> None:
        self.items: list[tuple[int, int]] = items or []
        self._lasts: list[int] | None = None

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Intervals) and self.items == other.items

    def __repr__(self) -> str:
        return f"Intervals({self})"

    def total(self) -> int:
        return sum(last - first + 1 for first, last in self.items)

    def has(self, ix: int) -> bool:
        if self._lasts is None:
            self._lasts = [last for _, last in self.items]
        pos = bisect.bisect_left(self._lasts, ix)
        return pos < len(self.items) and self.items[pos][0] <= ix

    def indexes(self) -> Iterable[int]:
        for first, last in self.items:
            yield from range(first, last + 1)

    def merge(self, other: Intervals) -> Intervals:
        """Union of two ordered interval lists."""
        result: list[list[int]] = []

        def push(first: int, last: int) -> None:
            if not result or first > result[-1][1] + 1:
                result.append([first, last])
            elif result[-1][1] < last:
                result[-1][1] = last

        a, b = self.items, other.items
        i = j = 0
        while i < len(a) and j < len(b):
            if a[i][0] < b[j][0]:
                push(*a[i])
                i += 1
            else:
                push(*b[j])
                j += 1
        for first, last in a[i:]:
            push(first, last)
        for first, last in b[j:]:
            push(first, last)
        return Intervals([(f, la) for f, la in result])

    def with_indexes(self, new_indexes: Iterable[int]) -> Intervals:
        """Union with individual indexes (any order, duplicates allowed)."""
        ordered = sorted(set(new_indexes))
        if not ordered:
            return self
        return self.merge(Intervals([(ix, ix) for ix in ordered]))

    def __str__(self) -> str:
        return format_intervals(self.items)


def parse(text: str | None, completions: int) -> Intervals:
    """Parse a status index string, ignoring corrupt fragments and clipping to
    ``completions`` (upstream ``parseIndexesFromString``)."""
    return Intervals().merge(Intervals(sorted(parse_lenient(text, completions))))
