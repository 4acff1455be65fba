"""``bodyparse.too_deep``: the nesting limit on bodies and free-form parts, recursive below
the limit and iterative beyond it, with one answer."""

from __future__ import annotations

import random

from jobplane.api.bodyparse import MAX_DEPTH, too_deep


def reference(value, limit):
    """Depth of the deepest container (scalars do not count) compared with ``limit``."""
    def depth(v):
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        return 0
    return depth(value) > limit


def nest(n, rng):
    v = rng.choice([{}, [], {"s": "x"}, [1, "y"]])
    for _ in range(n - 1):
        v = rng.choice([{"a": v, "b": 1}, [v, {}], {"k": [v]}]) if rng.random() < 0.2 else {"a": v}
    return v


def test_matches_the_reference_at_and_around_the_limit():
    rng = random.Random(7)
    for n in (1, 2, 50, 98, 99, 100, 101, 102, 150, 230):
        for _ in range(5):
            v = nest(n, rng)
            for limit in (5, MAX_DEPTH, 250):
                assert too_deep(v, limit) == reference(v, limit), (n, limit)
    assert not too_deep("scalar") and not too_deep([]) and too_deep({}, 0)


def test_a_very_deep_body_needs_no_recursion():
    v: object = {}
    for _ in range(100_000):
        v = [v]
    assert too_deep(v)
    assert too_deep(v, 50_000)
