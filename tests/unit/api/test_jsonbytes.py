"""Right-sized JSON bytes: the text of orjson.dumps in a block of its own length."""

import sys

import orjson

from jobplane.api.jsonbytes import dumps_exact, exact_bytes


def test_dumps_exact_is_orjsons_text_in_a_right_sized_block():
    obj = {"metadata": {"name": "p", "labels": {f"k{i}": "v" * 20 for i in range(40)}}}
    loose = orjson.dumps(obj)
    tight = dumps_exact(obj)
    assert tight == loose and exact_bytes(loose) == loose
    assert sys.getsizeof(tight) == sys.getsizeof(b"") + len(tight)
    assert tracemalloc_size(lambda: orjson.dumps(obj)) > 2 * tracemalloc_size(lambda: dumps_exact(obj))


def tracemalloc_size(make) -> int:
    """Bytes allocated for what ``make`` returns (orjson's block, not the object's length)."""
    import tracemalloc

    tracemalloc.start()
    try:
        kept = make()
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return size
