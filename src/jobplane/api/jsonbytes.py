"""JSON bytes that are kept a while: orjson (3.x) returns bytes whose allocation is several
times their length (a 2.7 KB pod sits in a 32 KB block, a pod's 1.3 KB metadata in 4 KB),
so whatever holds them beyond the moment pays for the block, not the text."""

from __future__ import annotations

from typing import Any

import orjson


def exact_bytes(data: bytes) -> bytes:
    """A right-sized copy of ``data``."""
    return bytes(memoryview(data))


def dumps_exact(obj: Any) -> bytes:
    """``orjson.dumps`` in a right-sized block."""
    return exact_bytes(orjson.dumps(obj))
