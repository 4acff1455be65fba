"""Compact index interval strings (``1,3-5,7``) of ``status.completedIndexes``,
``status.failedIndexes`` and ``successPolicy.rules[].succeededIndexes``.

Strict parsing raises ``IntervalError`` with upstream's messages (validation); lenient
parsing skips bad fragments and clips to completions as the job controller does.
Formatting: ascending, runs of three or more as ``a-b``, a run of two as ``a,b``.
``Intervals`` is the ordered form the Job controller computes with.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator

Interval = tuple[int, int]

_INT_RE = re.compile(r"[+-]?[0-9]+")


class IntervalError(ValueError):
    """A malformed interval string; ``str()`` is upstream's reason."""


def _atoi(text: str) -> int:
    if not _INT_RE.fullmatch(text):
        raise IntervalError(f'cannot convert string to integer for index: "{text}"')
    return int(text)


def parse_interval(fragment: str, completions: int) -> Interval:
    """One ``x`` or ``x-y`` fragment, both ends below ``completions`` (``parseIndexInterval``)."""
    limits = fragment.split("-")
    if len(limits) > 2:
        raise IntervalError(
            f'the fragment "{fragment}" violates the requirement that an index interval can have '
            "at most two parts separated by '-'")
    x = _atoi(limits[0])
    if x >= completions:
        raise IntervalError(f'too large index: "{limits[0]}"')
    if len(limits) == 1:
        return x, x
    y = _atoi(limits[1])
    if y >= completions:
        raise IntervalError(f'too large index: "{limits[1]}"')
    if x >= y:
        raise IntervalError(f"non-increasing order, previous: {x}, current: {y}")
    return x, y


def parse_strict(text: str, completions: int) -> list[Interval]:
    """Validate and parse (``validateIndexesFormat``); raises ``IntervalError``."""
    if not text:
        return []
    out: list[Interval] = []
    last: int | None = None
    for fragment in text.split(","):
        x, y = parse_interval(fragment, completions)
        if last is not None and last >= x:
            raise IntervalError(f"non-increasing order, previous: {last}, current: {x}")
        out.append((x, y))
        last = y
    return out


def validate_format(text: str, completions: int) -> int:
    """Number of indexes in a well-formed string; raises ``IntervalError`` otherwise."""
    return sum(y - x + 1 for x, y in parse_strict(text, completions))


def parse_lenient(text: str | None, completions: int | None = None) -> list[Interval]:
    """The controller's ``parseIndexesFromString``: skip bad fragments, clip to completions."""
    if not text:
        return []
    out: list[Interval] = []
    for fragment in text.split(","):
        limits = fragment.split("-")
        if not _INT_RE.fullmatch(limits[0]):
            continue
        x = int(limits[0])
        if completions is not None and x >= completions:
            continue
        y = x
        if len(limits) > 1:
            if not _INT_RE.fullmatch(limits[1]):
                continue
            y = int(limits[1])
            if completions is not None and y >= completions:
                y = completions - 1
        out.append((x, y))
    return out


def format_intervals(intervals: Iterable[Interval]) -> str:
    parts: list[str] = []
    for first, last in intervals:
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
    return ",".join(parts)


def to_intervals(indexes: Iterable[int]) -> list[Interval]:
    """Merge any collection of indexes into ordered, maximal intervals."""
    out: list[Interval] = []
    for i in sorted(set(indexes)):
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    return format_intervals(to_intervals(indexes))


def index_set(text: str | None, completions: int | None = None) -> set[int]:
    result: set[int] = set()
    for x, y in parse_lenient(text, completions):
        result.update(range(x, y + 1))
    return result


def count(text: str | None, completions: int | None = None) -> int:
    """Number of indexes the string names (overlaps counted once)."""
    return sum(y - x + 1 for x, y in _merge(parse_lenient(text, completions)))


def contains(text: str | None, index: int) -> bool:
    return any(x <= index <= y for x, y in parse_lenient(text))


def _merge(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for x, y in sorted(intervals):
        if out and x <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], y))
        else:
            out.append((x, y))
    return out


def add_index(text: str | None, index: int) -> str:
    """The string with ``index`` added, re-formatted canonically."""
    return format_intervals(_merge(parse_lenient(text) + [(index, index)]))


def add_indexes(text: str | None, indexes: Iterable[int]) -> str:
    return format_intervals(_merge(parse_lenient(text) + [(i, i) for i in indexes]))


def overlap_error(completed: str, failed: str, completions: int) -> str | None:
    """``validateFailedIndexesNotOverlapCompleted``: the message, or None."""
    if not completed or not failed:
        return None

    def good(text: str) -> list[Interval]:
        out = []
        for fragment in text.split(","):
            try:
                out.append(parse_interval(fragment, completions))
            except IntervalError:
                continue
        return out

    cs, fs = good(completed), good(failed)
    i = j = 0
    while i < len(cs) and j < len(fs):
        cx, cy = cs[i]
        fx, fy = fs[j]
        if cx <= fy and fx <= cy:
            return f"failedIndexes and completedIndexes overlap at index: {max(cx, fx)}"
        if cx <= fx:
            i += 1
        else:
            j += 1
    return None


# -- ordered intervals as the Job controller needs them (upstream ``orderedIntervals`` in
# indexed_job_utils.go): union, membership by binary search, totals.

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
