"""Cold objects of the mirror kept compressed against a preset dictionary.

A finished pod is about 5 KB of JSON, and PodGC keeps 12,500 of them: ~63 MB, the largest
holder of a 100,000-completion run's plateau. Pods of one Job differ in a few names, uids,
indexes and timestamps, so each compresses to a fraction of that when zlib is primed with a
sibling (``zdict``): 5.0 KB -> ~0.2 KB, against 1.7 KB alone; inflating one costs ~15-25 us,
a tenth of decoding it.

The dictionary is per key prefix and follows the workload: an object that compresses badly
against the current one (``POOR``: a new kind of object, another Job) becomes the next
dictionary. Each packed object keeps a reference to the dictionary it was made with (shared
bytes), so a dictionary lives exactly as long as an object needs it.
"""

from __future__ import annotations

import zlib

PACK_LEVEL = 6  # with a dictionary most of the cost is the dictionary's setup, not the level
ZDICT_MAX = 32 * 1024  # deflate's window: a longer dictionary's start is never referenced
POOR = 4  # an object that packs to more than 1/POOR of its size is unlike the dictionary


def deflate(data: bytes, zdict: bytes | None) -> bytes:
    """``data`` compressed (against ``zdict`` when given)."""
    if not zdict:
        return zlib.compress(data, PACK_LEVEL)
    c = zlib.compressobj(PACK_LEVEL, zdict=zdict)
    return c.compress(data) + c.flush()


def inflate(packed: bytes, zdict: bytes | None) -> bytes:
    """The bytes ``deflate(data, zdict)`` was given."""
    if not zdict:
        return zlib.decompress(packed)
    d = zlib.decompressobj(zdict=zdict)
    return d.decompress(packed) + d.flush()


class Packer:
    """Compresses objects of each key prefix against that prefix's current dictionary."""

    def __init__(self) -> None:
        self._dicts: dict[str, bytes] = {}

    def pack(self, prefix: str, data: bytes) -> tuple[bytes, bytes | None]:
        """(compressed ``data``, the dictionary to inflate it with)."""
        zdict = self._dicts.get(prefix)
        packed = deflate(data, zdict)
        if zdict is None or len(packed) * POOR > len(data):
            # unlike the dictionary (or none yet): this object primes the next ones
            self._dicts[prefix] = data[-ZDICT_MAX:]
        return packed, zdict
